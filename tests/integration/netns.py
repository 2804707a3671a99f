"""A small network of Linux network namespaces for hellod's integration
tests: a client and a few backend hosts, each in its own namespace, joined
to this host by veth pairs on one bridge.  Load balancers (HAProxy, nginx)
run on this host, on the bridge address; hellod or a stand-in backend runs
inside the host namespaces.  Standard library only; needs root and `ip`
from iproute2.

    bridge hd-PREFIX-br on this host: 198.18.N.1/24
      hd-PREFIX-client   198.18.N.2    (more clients: client2 .3, client3 .4)
      hd-PREFIX-h1       198.18.N.11   (h2 .12, h3 .13, ...)

Every address is in 198.18.0.0/15, the range RFC 2544 sets aside for
benchmarking, clear of the private networks container tools create
(podman's default bridge among them), and sits only on interfaces made
here.
The namespaces have no default route, so nothing sent from inside them can
leave this small network.  IPv6 is disabled on every interface made here.

    import netns
    netns.skip_unless_possible()            # exit 77 unless root + netns
    with netns.Topology("demo", hosts=2) as topo:
        for h in topo.hosts:
            h.echo_server(8080)              # stand-in backend
        lb = topo.haproxy(netns.haproxy_config(
            [(h.addr, 8080) for h in topo.hosts], topo.addr, 8000,
            forwardfor=True))
        r = topo.client.http_get(topo.addr, 8000)
        assert r.json()["headers"]["x-forwarded-for"] == topo.client.addr
        print(netns.ab("http://%s:8000/" % topo.addr, ns=topo.client))

hellod itself runs in a namespace through hellodtest's wrapper:

    h = topo.hosts[0]
    d = hellodtest.Hellod(conf, host=h.addr, port=8080, wrapper=h.wrapper)

Everything named with the prefix (namespaces, links, processes started
here, the state directory) is removed by close(), and also when a
Topology with the same prefix is made again after a run that was killed.
Processes started here also get SIGKILL when the thread that started them
dies (PR_SET_PDEATHSIG): start them from the main thread.

Test files that may run at the same time need different prefixes and
different `net` numbers."""

import base64
import contextlib
import csv
import ctypes
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

from hellodtest import SKIP, wait_for

IP = shutil.which("ip") or "/usr/sbin/ip"
PREFIX_RE = re.compile(r"^[a-z0-9]{1,8}$")    # IFNAMSIZ: 15 characters
NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
MAX_CLIENTS = 9             # .2 .. .10
MAX_HOSTS = 20              # .11 .. .30


class Skip(unittest.SkipTest):
    """Something this module needs is missing.  A skip inside a unittest
    case; hellodtest.main() exits 77 when every case skipped."""


# --- Small helpers ---

def _run(argv, check=True, timeout=30.0):
    """Runs argv; CompletedProcess with text output.  Raises
    RuntimeError naming the command when check and it fails."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError("%s failed (%d): %s"
                           % (" ".join(argv), p.returncode,
                              p.stderr.strip()))
    return p


def _ip(*args, check=True):
    return _run([IP] + list(args), check=check)


_libc = None


def _libc_fn(name):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return getattr(_libc, name)


def _setns(fd):
    """Moves the calling thread into the network namespace open at fd."""
    if hasattr(os, "setns"):
        os.setns(fd, CLONE_NEWNET)
        return
    if _libc_fn("setns")(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, "setns(): %s" % os.strerror(e))


def _die_with_parent_fn():
    """A preexec_fn for Popen: the child gets SIGKILL when the thread that
    started it dies.  Everything it calls is looked up before the fork."""
    prctl = _libc_fn("prctl")
    parent = os.getpid()

    def preexec():
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:      # the parent died before prctl()
            os._exit(1)
    return preexec


def need(binary, package):
    """The path of binary; raises Skip naming the Debian package that
    brings it when it is not installed."""
    path = shutil.which(binary)
    if path is None:
        for d in ("/usr/sbin", "/sbin"):
            if os.access(os.path.join(d, binary), os.X_OK):
                return os.path.join(d, binary)
        raise Skip("%s is not installed (Debian package %s)"
                   % (binary, package))
    return path


def _proc_stat(pid):
    """(pgrp, start time in clock ticks) of pid, or None when gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text[text.rindex(")") + 2:].split()
    return int(fields[2]), int(fields[19])


def _exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def _group_members(pgid, exe, since):
    """Pids in process group pgid that run exe and started no earlier than
    since (clock ticks after boot): the processes of a group this module
    recorded, and never an unrelated process that reused the number."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        pid = int(name)
        st = _proc_stat(pid)
        if st and st[0] == pgid and st[1] >= since and _exe(pid) == exe:
            out.append(pid)
    return out


def _kill_group(pgid, exe, since, timeout=5.0):
    """SIGKILL to the recorded group's processes; waits until they are
    gone."""
    def gone():
        pids = _group_members(pgid, exe, since)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not pids
    wait_for(gone, timeout, interval=0.02,
             what="process group %d (%s) to exit" % (pgid, exe))


def _listening(pid, addr, port):
    """True when the network namespace of pid has a TCP listener on
    addr:port (or on the wildcard address with that port).  Reads
    /proc/PID/net/tcp*, so no connection is made: a listener that wants a
    PROXY header first sees nothing."""
    want = {addr, "0.0.0.0", "::", "::ffff:" + addr}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        try:
            with open("/proc/%d/net/%s" % (pid, table)) as f:
                lines = f.read().splitlines()[1:]
        except (FileNotFoundError, ProcessLookupError):
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A":               # TCP_LISTEN
                continue
            hexaddr, hexport = fields[1].split(":")
            if int(hexport, 16) != port:
                continue
            raw = bytes.fromhex(hexaddr)
            # The kernel prints each 32-bit word in host order.
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            if socket.inet_ntop(family, raw) in want:
                return True
    return False


def wait_listening(proc, addr, port, timeout=10.0, ns=None, log=None):
    """Until addr:port listens in the network namespace of proc (a Popen,
    e.g. Hellod.proc), checked without connecting; with ns, only once proc
    runs inside it.  Fails, with log() when given, if proc exits first."""
    def up():
        if proc.poll() is not None:
            raise AssertionError("process %d exited with %s before listening "
                                 "on %s:%d%s" % (proc.pid, proc.returncode,
                                                 addr, port,
                                                 ":\n" + log() if log else ""))
        if ns is not None and not ns.holds(proc.pid):
            return False        # `ip netns exec` has not switched yet
        return _listening(proc.pid, addr, port)
    wait_for(up, timeout, interval=0.02,
             what="%s:%d to listen (pid %d)" % (addr, port, proc.pid))


# --- Processes ---

class Process:
    """A process started by this module, its output in a log file, in its
    own process group."""

    def __init__(self, argv, log_path, name, ns=None, env=None, cwd=None,
                 state_dir=None):
        self.name = name
        self.ns = ns
        self.log_path = log_path
        self.argv = list(argv)
        self._record = None
        self._reaped = False
        full = (ns.wrapper if ns else []) + self.argv
        with open(log_path, "ab") as logf:
            self.proc = subprocess.Popen(
                full, stdin=subprocess.DEVNULL, stdout=logf,
                stderr=subprocess.STDOUT, env=env, cwd=cwd,
                start_new_session=True, preexec_fn=_die_with_parent_fn())
        self.pid = self.proc.pid
        if state_dir is not None and ns is None:
            # Host processes are found again by this record after a killed
            # run; those inside a namespace by `ip netns pids`.
            st = _proc_stat(self.pid)
            exe = _exe(self.pid)
            if st and exe:
                self._record = os.path.join(state_dir, "pgid-%d" % self.pid)
                with open(self._record, "w") as f:
                    json.dump({"pgid": self.pid, "exe": exe,
                               "since": st[1]}, f)

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def alive(self):
        return self.proc.poll() is None

    def wait_listening(self, addr, port, timeout=10.0):
        """Until addr:port listens in this process's network namespace;
        fails with the log when the process exits first."""
        wait_listening(self.proc, addr, port, timeout, self.ns, self.log)

    def stop(self, sig=signal.SIGTERM, timeout=10.0):
        """Signals the process, waits for it (SIGKILL after timeout), then
        kills whatever is left of its process group.  Returns its exit
        status (negative: killed by that signal)."""
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5.0)
        self._kill_rest()
        return self.proc.returncode

    def _kill_rest(self):
        # Children that outlived the leader (nginx workers, hellod
        # workers) stay in the group.  Once only: later the number may
        # belong to another process group.
        if self._reaped:
            return
        self._reaped = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        if self._record:
            try:
                os.unlink(self._record)
            except FileNotFoundError:
                pass
            self._record = None


class Balancer(Process):
    """HAProxy or nginx on this host."""

    def __init__(self, argv, dir, name, state_dir, extra_logs=()):
        self.dir = dir
        self.extra_logs = list(extra_logs)
        super().__init__(argv, os.path.join(dir, "output.log"), name,
                         cwd=dir, state_dir=state_dir)

    def log(self):
        text = super().log()
        for path in self.extra_logs:
            try:
                with open(path, "rb") as f:
                    text += "\n--- %s ---\n" % os.path.basename(path)
                    text += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text


# --- Namespaces ---

class Reply:
    """One HTTP response read inside a namespace."""

    def __init__(self, d):
        self.status = d["status"]
        self.headers = d["headers"]     # list of (name, value)
        self.body = base64.b64decode(d["body"])

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "Reply(%d, %r)" % (self.status, self.body[:200])


# Runs inside a namespace: requests over http.client, one connection each.
HTTP_CLIENT = r"""
import base64, http.client, json, sys
a = json.loads(sys.argv[1])
out = []
for _ in range(a["count"]):
    c = http.client.HTTPConnection(a["host"], a["port"], timeout=a["timeout"])
    try:
        c.request(a["method"], a["path"], headers=a["headers"])
        r = c.getresponse()
        body = r.read()
    finally:
        c.close()
    out.append({"status": r.status, "headers": r.getheaders(),
                "body": base64.b64encode(body).decode()})
print(json.dumps(out))
"""

# Runs inside a namespace: sends bytes, reads until EOF, reset or timeout.
RAW_CLIENT = r"""
import base64, json, socket, sys, time
a = json.loads(sys.argv[1])
s = socket.create_connection((a["host"], a["port"]), timeout=a["timeout"])
s.sendall(base64.b64decode(a["data"]))
if a["shutdown"]:
    s.shutdown(socket.SHUT_WR)
data, end = b"", "eof"
deadline = time.monotonic() + a["timeout"]
try:
    while True:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
except socket.timeout:
    end = "timeout"
except ConnectionResetError:
    end = "reset"
print(json.dumps({"data": base64.b64encode(data).decode(), "end": end}))
"""

# The stand-in backend, a script of its own.
ECHO_BACKEND = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "echo_backend.py")


class Namespace:
    """One network namespace of a Topology: name, addr, veth (the host
    end)."""

    def __init__(self, topo, role, name, addr, veth):
        self.topo = topo
        self.role = role
        self.name = name
        self.addr = addr
        self.veth = veth

    def __repr__(self):
        return "Namespace(%s, %s)" % (self.name, self.addr)

    @property
    def wrapper(self):
        """The command prefix that runs a program in this namespace, e.g.
        hellodtest.Hellod(conf, host=ns.addr, wrapper=ns.wrapper)."""
        return [IP, "netns", "exec", self.name]

    def popen(self, argv, **kw):
        """subprocess.Popen of argv inside this namespace (the caller
        waits for it or kills it)."""
        kw.setdefault("preexec_fn", _die_with_parent_fn())
        return subprocess.Popen(self.wrapper + list(argv), **kw)

    def run(self, argv, timeout=30.0, check=False, input=None):
        """Runs argv inside this namespace to completion (killed after
        timeout); CompletedProcess with text stdout and stderr."""
        p = self.popen(argv, stdin=subprocess.PIPE if input else
                       subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       start_new_session=True)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
            raise AssertionError("%s in %s did not finish within %.0fs:\n"
                                 "%s%s" % (" ".join(argv), self.name,
                                           timeout, out, err))
        cp = subprocess.CompletedProcess(argv, p.returncode, out, err)
        if check and p.returncode != 0:
            raise AssertionError("%s in %s exited %d:\n%s%s"
                                 % (" ".join(argv), self.name, p.returncode,
                                    out, err))
        return cp

    def python(self, code, *args, timeout=30.0, check=True):
        """Runs Python code (python3 -c) inside this namespace."""
        return self.run([sys.executable, "-c", code] + [str(a) for a in args],
                        timeout=timeout, check=check)

    def start(self, argv, name=None, env=None):
        """A long-running Process inside this namespace, stopped by the
        topology's close() unless stopped before."""
        return self.topo._start(argv, name or os.path.basename(argv[0]),
                                ns=self, env=env)

    def echo_server(self, port=8080, proxy_port=None, check_port=None,
                    timeout=10.0):
        """Starts the stand-in backend on this namespace's address and
        waits until it listens: plain HTTP on port, HTTP after a required
        PROXY v1 or v2 header on proxy_port (like hellod's proxy_listen),
        plain HTTP on check_port (like hellod's status listener).  Any of
        them may be None."""
        specs = ["%d:%s" % (p, mode) for p, mode in
                 ((port, "plain"), (proxy_port, "proxy"),
                  (check_port, "plain")) if p]
        if not specs:
            raise ValueError("no port")
        p = self.start([sys.executable, ECHO_BACKEND, self.addr,
                        self.role] + specs, name="echo-%s" % self.role)
        for spec in specs:
            p.wait_listening(self.addr, int(spec.split(":")[0]), timeout)
        return p

    # Python 3.11 has no os.setns(): a subprocess is the plain way to talk
    # from inside a namespace; socket() below is the in-process one.

    def http_get_all(self, host, port, path="/", headers=None, count=1,
                     timeout=5.0, method="GET"):
        """count requests from inside this namespace, each on a new
        connection; a list of Reply."""
        arg = json.dumps({"host": host, "port": port, "path": path,
                          "headers": headers or {}, "count": count,
                          "timeout": timeout, "method": method})
        p = self.python(HTTP_CLIENT, arg, timeout=timeout * count + 10.0,
                        check=False)
        if p.returncode != 0:
            raise AssertionError("GET http://%s:%d%s from %s failed:\n%s"
                                 % (host, port, path, self.name, p.stderr))
        return [Reply(d) for d in json.loads(p.stdout)]

    def http_get(self, host, port, path="/", headers=None, timeout=5.0):
        """One GET from inside this namespace; a Reply."""
        return self.http_get_all(host, port, path, headers, 1, timeout)[0]

    def exchange(self, host, port, data, timeout=5.0, shutdown=False):
        """Sends raw bytes from inside this namespace and reads until the
        peer closes or timeout passes; (bytes, "eof"|"reset"|"timeout")."""
        arg = json.dumps({"host": host, "port": port, "timeout": timeout,
                          "shutdown": shutdown,
                          "data": base64.b64encode(data).decode()})
        p = self.python(RAW_CLIENT, arg, timeout=timeout + 10.0, check=False)
        if p.returncode != 0:
            raise AssertionError("exchange with %s:%d from %s failed:\n%s"
                                 % (host, port, self.name, p.stderr))
        d = json.loads(p.stdout)
        return base64.b64decode(d["data"]), d["end"]

    @contextlib.contextmanager
    def entered(self):
        """Runs the body with the calling thread inside this namespace
        (setns); sockets made there stay in it afterwards."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(os.path.join(NETNS_DIR, self.name), os.O_RDONLY)
            try:
                _setns(target)
            finally:
                os.close(target)
            try:
                yield self
            finally:
                try:
                    _setns(own)
                except OSError as e:
                    # Carrying on in the wrong namespace would send the
                    # rest of the run's traffic from here.
                    sys.stderr.write("cannot return from %s: %s\n"
                                     % (self.name, e))
                    os._exit(1)
        finally:
            os.close(own)

    def socket(self, family=socket.AF_INET, type=socket.SOCK_STREAM):
        """A socket of this namespace, made in this process."""
        with self.entered():
            return socket.socket(family, type)

    def connect(self, host, port, timeout=5.0):
        """A TCP connection from this namespace (for hellodtest.Reader)."""
        s = self.socket()
        s.settimeout(timeout)
        try:
            s.connect((host, port))
        except BaseException:
            s.close()
            raise
        return s

    def holds(self, pid):
        """True when pid runs inside this namespace."""
        try:
            return (os.stat("/proc/%d/ns/net" % pid).st_ino ==
                    os.stat(os.path.join(NETNS_DIR, self.name)).st_ino)
        except OSError:
            return False

    def pids(self):
        """Pids of the processes inside this namespace."""
        return _netns_pids(self.name)

    def sysctl(self, key, value=None):
        """Reads (and with value, first sets) a net.* sysctl of this
        namespace only."""
        path = "/proc/sys/" + key.replace(".", "/")
        with self.entered():
            if value is not None:
                with open(path, "w") as f:
                    f.write(str(value))
            with open(path) as f:
                return f.read().strip()


def _netns_pids(name):
    p = _ip("netns", "pids", name, check=False)
    return [int(x) for x in p.stdout.split()] if p.returncode == 0 else []


def _prefixed_netns(prefix):
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if n.startswith("hd-%s-" % prefix))


def _prefixed_links(prefix):
    p = _ip("-j", "link", "show", check=False)
    links = json.loads(p.stdout or "[]") if p.returncode == 0 else []
    return sorted(l["ifname"] for l in links
                  if l["ifname"].startswith("hd-%s-" % prefix))


def state_dir(prefix):
    return os.path.join(tempfile.gettempdir(), "hd-netns-%s" % prefix)


def leftovers(prefix):
    """What exists with this prefix: namespaces, links, recorded host
    processes still running, the state directory.  Empty lists and
    state False after a clean close()."""
    procs = []
    sd = state_dir(prefix)
    if os.path.isdir(sd):
        for rec in os.listdir(sd):
            if rec.startswith("pgid-"):
                try:
                    with open(os.path.join(sd, rec)) as f:
                        r = json.load(f)
                except (OSError, ValueError):
                    continue
                procs += _group_members(r["pgid"], r["exe"], r["since"])
    ns_pids = []
    for ns in _prefixed_netns(prefix):
        ns_pids += _netns_pids(ns)
    return {"netns": _prefixed_netns(prefix), "links": _prefixed_links(prefix),
            "processes": sorted(procs + ns_pids),
            "state": os.path.isdir(sd)}


def cleanup(prefix, timeout=10.0):
    """Removes everything named with prefix: kills the host processes
    recorded in its state directory and every process inside its
    namespaces, deletes its links (veth pairs, bridge) and namespaces and
    the state directory.  Safe when nothing is there."""
    if not PREFIX_RE.match(prefix):
        raise ValueError("bad prefix %r" % prefix)
    sd = state_dir(prefix)
    if os.path.isdir(sd):
        for rec in sorted(os.listdir(sd)):
            if not rec.startswith("pgid-"):
                continue
            try:
                with open(os.path.join(sd, rec)) as f:
                    r = json.load(f)
            except (OSError, ValueError):
                continue
            _kill_group(r["pgid"], r["exe"], r["since"], timeout)
    namespaces = _prefixed_netns(prefix)
    for ns in namespaces:
        for pid in _netns_pids(ns):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for ns in namespaces:
        wait_for(lambda: not _netns_pids(ns), timeout, interval=0.02,
                 what="the processes in %s to exit" % ns)
    # Deleting one end of a veth pair deletes both at once; a namespace
    # deletion takes its interfaces away only later (the kernel cleans
    # up namespaces asynchronously), so links go first.
    links = _prefixed_links(prefix)
    for link in sorted(links, key=lambda l: l.endswith("-br")):
        _ip("link", "del", link, check=False)
    for ns in namespaces:
        _ip("netns", "del", ns, check=False)
    shutil.rmtree(sd, ignore_errors=True)
    wait_for(lambda: not _prefixed_links(prefix)
             and not _prefixed_netns(prefix), timeout, interval=0.02,
             what="links and namespaces named hd-%s- to go" % prefix)


def why_impossible():
    """Why namespaces cannot be made here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if not os.access(IP, os.X_OK):
        return "ip is not installed (Debian package iproute2)"
    probe = "hd-probe-%d" % os.getpid()
    p = _ip("netns", "add", probe, check=False)
    if p.returncode != 0:
        return "ip netns add failed: %s" % p.stderr.strip()
    try:
        for args in (("link", "add", "v0", "type", "veth", "peer", "name",
                      "v1"),
                     ("link", "add", "b0", "type", "bridge")):
            p = _ip("-n", probe, *args, check=False)
            if p.returncode != 0:
                return "ip %s failed: %s" % (" ".join(args), p.stderr.strip())
    finally:
        _ip("netns", "del", probe, check=False)
    return None


def skip_unless_possible():
    """Exits 77 with the reason when network namespaces cannot be made
    here (not root, no iproute2, an unprivileged container)."""
    why = why_impossible()
    if why:
        sys.stderr.write("skipped: %s\n" % why)
        sys.exit(SKIP)


def _disable_ipv6(ifname):
    path = "/proc/sys/net/ipv6/conf/%s/disable_ipv6" % ifname
    if os.path.exists(path):
        with open(path, "w") as f:
            f.write("1")


# RFC 2544's benchmarking range: no container tool or site network hands
# it out (the range used before was podman's default bridge network).
BENCHMARK_RANGE = ipaddress.ip_network("198.18.0.0/15")


def network(net):
    """The /24 of a topology made with net=NET (0-255)."""
    return ipaddress.ip_network("198.18.%d.0/24" % net)


class Topology:
    """A bridge on this host and namespaces joined to it:

        clients: hd-PREFIX-client (198.18.N.2), -client2 (.3), ...
        hosts:   hd-PREFIX-h1 (198.18.N.11), -h2 (.12), ...

    addr is this host's address on the bridge (198.18.N.1).  isolate=True
    stops the namespaces from reaching each other: each reaches this host
    only (bridge port isolation), as a client behind a balancer would."""

    def __init__(self, prefix, hosts=2, clients=1, net=0, isolate=False):
        if not PREFIX_RE.match(prefix):
            raise ValueError("prefix must be 1-8 of [a-z0-9], not %r"
                             % prefix)
        if not (0 <= net <= 255 and 1 <= clients <= MAX_CLIENTS
                and 0 <= hosts <= MAX_HOSTS):
            raise ValueError("net 0-255, clients 1-%d, hosts 0-%d"
                             % (MAX_CLIENTS, MAX_HOSTS))
        self.prefix = prefix
        self.net = network(net)
        self.addr = str(self.net[1])
        self.bridge = "hd-%s-br" % prefix
        self.state_dir = state_dir(prefix)
        self.processes = []
        self._count = 0
        self.clients = []
        self.hosts = []
        self.closed = False
        cleanup(prefix)
        self._check_net_free()
        os.makedirs(self.state_dir)
        try:
            self._build(clients, hosts, isolate)
        except BaseException:
            self.close()
            raise

    @property
    def client(self):
        return self.clients[0]

    @property
    def namespaces(self):
        return self.clients + self.hosts

    def ns(self, role):
        """The Namespace by role: "client", "client2", "h1", ..."""
        for n in self.namespaces:
            if n.role == role:
                return n
        raise KeyError(role)

    def _check_net_free(self):
        p = _ip("-j", "-4", "addr", "show")
        for link in json.loads(p.stdout or "[]"):
            for a in link.get("addr_info", []):
                net = ipaddress.ip_interface("%s/%d" % (a["local"],
                                                        a["prefixlen"]))
                if net.network.overlaps(self.net):
                    raise RuntimeError(
                        "%s is already used by %s (%s): another test's "
                        "topology? Give this one another net="
                        % (self.net, link["ifname"], net))

    def _build(self, clients, hosts, isolate):
        _ip("link", "add", self.bridge, "type", "bridge", "forward_delay",
            "0")
        _disable_ipv6(self.bridge)
        _ip("addr", "add", "%s/24" % self.addr, "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        nodes = [("client" if i == 0 else "client%d" % (i + 1),
                  "c" if i == 0 else "c%d" % (i + 1), 2 + i)
                 for i in range(clients)]
        nodes += [("h%d" % (i + 1), "h%d" % (i + 1), 11 + i)
                  for i in range(hosts)]
        for role, tag, last in nodes:
            ns = Namespace(self, role, "hd-%s-%s" % (self.prefix, role),
                           str(self.net[last]), "hd-%s-%s" % (self.prefix, tag))
            _ip("netns", "add", ns.name)
            (self.hosts if role.startswith("h") else self.clients).append(ns)
            # Interfaces made in the namespace from now on get no IPv6.
            ns.sysctl("net.ipv6.conf.default.disable_ipv6", 1)
            ns.sysctl("net.ipv6.conf.all.disable_ipv6", 1)
            _ip("link", "add", ns.veth, "type", "veth", "peer", "name",
                "eth0", "netns", ns.name)
            _disable_ipv6(ns.veth)
            _ip("link", "set", ns.veth, "master", self.bridge)
            if isolate:
                _run(["bridge", "link", "set", "dev", ns.veth, "isolated",
                      "on"])
            _ip("link", "set", ns.veth, "up")
            _ip("-n", ns.name, "addr", "add", "%s/24" % ns.addr, "dev",
                "eth0")
            _ip("-n", ns.name, "link", "set", "eth0", "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")

    def isolate(self, on=True):
        """Turns bridge port isolation on or off for every namespace."""
        for ns in self.namespaces:
            _run(["bridge", "link", "set", "dev", ns.veth, "isolated",
                  "on" if on else "off"])

    def _dir(self, name):
        self._count += 1
        d = os.path.join(self.state_dir, "%s-%d" % (name, self._count))
        os.makedirs(d)
        return d

    def _start(self, argv, name, ns=None, env=None):
        self._count += 1
        log = os.path.join(self.state_dir, "%s-%d.log" % (name, self._count))
        p = Process(argv, log, name, ns=ns, env=env,
                    state_dir=self.state_dir)
        self.processes.append(p)
        return p

    def start(self, argv, name=None, env=None):
        """A long-running Process on this host, stopped by close()."""
        return self._start(argv, name or os.path.basename(argv[0]), env=env)

    def _balancer(self, argv, dir, name, listens, extra_logs, timeout):
        b = Balancer(argv, dir, name, self.state_dir, extra_logs)
        self.processes.append(b)
        if not listens:
            raise ValueError("no listening address found in the %s "
                             "configuration" % name)
        for addr, port in listens:
            b.wait_listening(addr, port, timeout)
        return b

    def haproxy(self, conf_text, timeout=10.0):
        """Starts `haproxy -f FILE -db` with conf_text in a new directory
        and waits until every `bind ADDR:PORT` listens.  Skip when HAProxy
        is not installed."""
        exe = need("haproxy", "haproxy")
        d = self._dir("haproxy")
        conf = os.path.join(d, "haproxy.cfg")
        with open(conf, "w") as f:
            f.write(conf_text)
        listens = [(a, int(p)) for a, p in
                   re.findall(r"^\s*bind\s+([\d.]+):(\d+)", conf_text, re.M)]
        return self._balancer([exe, "-f", conf, "-db"], d, "haproxy",
                              listens, [], timeout)

    def nginx(self, http_text, main_text="", timeout=10.0):
        """Starts nginx in the foreground with http_text as the body of its
        http block (see nginx_config()) and main_text in the main context.
        The pid file, logs, lock file and temporary paths are in a new
        directory: nothing under /var/lib/nginx, /var/log or /run is used.
        Waits until every `listen ADDR:PORT` listens.  Skip when nginx is
        not installed."""
        exe = need("nginx", "nginx-light")
        d = self._dir("nginx")
        built = _run([exe, "-V"]).stderr
        temps = "".join(
            "    %s_temp_path %s;\n" % (name, os.path.join(d, name))
            for name, module in (("client_body", None), ("proxy", "proxy"),
                                 ("fastcgi", "fastcgi"), ("uwsgi", "uwsgi"),
                                 ("scgi", "scgi"))
            if module is None
            or "--without-http_%s_module" % module not in built)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write("worker_processes 1;\n"
                    "pid %(d)s/nginx.pid;\n"
                    "lock_file %(d)s/nginx.lock;\n"
                    "error_log %(d)s/error.log info;\n"
                    "events { worker_connections 1024; }\n"
                    "%(main)s\n"
                    "http {\n"
                    "    access_log %(d)s/access.log;\n"
                    "%(temps)s"
                    "%(http)s\n"
                    "}\n" % {"d": d, "main": main_text, "temps": temps,
                             "http": http_text})
        listens = [(a, int(p)) for a, p in
                   re.findall(r"^\s*listen\s+([\d.]+):(\d+)", http_text,
                              re.M)]
        return self._balancer(
            [exe, "-p", d + "/", "-e", os.path.join(d, "error.log"), "-c",
             conf, "-g", "daemon off;"], d, "nginx", listens,
            [os.path.join(d, "error.log")], timeout)

    def close(self):
        """Stops every process started here, then removes the namespaces,
        the links and the state directory."""
        if self.closed:
            return
        self.closed = True
        for p in reversed(self.processes):
            try:
                p.stop(timeout=5.0)
            except Exception as e:      # keep tearing down
                sys.stderr.write("stopping %s: %r\n" % (p.name, e))
        cleanup(self.prefix)

    def leftovers(self):
        return leftovers(self.prefix)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --- Configurations ---

def haproxy_config(backends, addr, port, mode=None, server_options="",
                   forwardfor=False, check=False, check_port=None,
                   check_path="/healthz", retries=False,
                   balance="roundrobin", timeout_server="10s"):
    """An HAProxy configuration: one frontend on addr:port in front of
    backends, a list of (address, port).

    server_options goes on every server line: "send-proxy",
    "send-proxy-v2", "send-proxy-v2 check-send-proxy".  forwardfor: HTTP
    mode with `option forwardfor`.  check or check_port: `option httpchk
    GET check_path`, on check_port when given (a listener without PROXY
    protocol), every 200 ms.  retries: `retries 3`, `option redispatch`
    and, in HTTP mode, `retry-on all-retryable-errors`.  The log goes to
    standard output (the balancer's log file)."""
    mode = mode or ("http" if forwardfor else "tcp")
    if forwardfor and mode != "http":
        raise ValueError("option forwardfor needs mode http")
    lines = haproxy_head(mode=mode, timeout_server=timeout_server) + [
             "frontend fe",
             "    bind %s:%d" % (addr, port),
             "    default_backend be",
             "",
             "backend be",
             "    balance %s" % balance]
    if forwardfor:
        lines.append("    option forwardfor")
    if retries:
        lines += ["    retries 3", "    option redispatch"]
        if mode == "http":
            lines.append("    retry-on all-retryable-errors")
    checking = check or check_port is not None
    if checking:
        lines.append("    option httpchk GET %s" % check_path)
    for i, (baddr, bport) in enumerate(backends):
        server = "    server s%d %s:%d" % (i + 1, baddr, bport)
        if server_options:
            server += " " + server_options
        if checking:
            server += " check inter 200ms fall 2 rise 1"
            if check_port is not None:
                server += " port %d" % check_port
        lines.append(server)
    return "\n".join(lines) + "\n"


def nginx_config(backends, addr, port, keepalive=16, set_headers=None):
    """The body of an nginx http block: proxy_pass from addr:port to an
    upstream of backends (a list of (address, port)) over keep-alive
    HTTP/1.1 connections, with X-Forwarded-For from
    $proxy_add_x_forwarded_for.  set_headers: more proxy_set_header
    lines, e.g. {"X-Real-IP": "$remote_addr"}."""
    servers = "".join("        server %s:%d max_fails=0;\n" % b
                      for b in backends)
    headers = {"Host": "$host", "Connection": '""',
               "X-Forwarded-For": "$proxy_add_x_forwarded_for"}
    headers.update(set_headers or {})
    sets = "".join("            proxy_set_header %s %s;\n" % kv
                   for kv in headers.items())
    return ("    upstream backends {\n"
            "%s"
            "        keepalive %d;\n"
            "    }\n"
            "    server {\n"
            "        listen %s:%d;\n"
            "        location / {\n"
            "            proxy_pass http://backends;\n"
            "            proxy_http_version 1.1;\n"
            "%s"
            "        }\n"
            "    }\n" % (servers, keepalive, addr, port, sets))


# --- Load ---

def _field(out, pattern, conv=int):
    m = re.search(pattern, out, re.M)
    return conv(m.group(1)) if m else None


def _load(argv, ns, timeout):
    if ns is not None:
        return ns.run(argv, timeout=timeout)
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         universal_newlines=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        raise AssertionError("%s did not finish within %.0fs:\n%s%s"
                             % (" ".join(argv), timeout, out, err))
    return subprocess.CompletedProcess(argv, p.returncode, out, err)


def parse_ab(out):
    """ab's report as a dict: complete, failed, non_2xx, write_errors,
    exceptions, keepalive (0 when ab leaves the line out), rps, seconds.
    Failed requests are split in failed_connect, failed_receive,
    failed_length, failed_exceptions when ab gives the detail."""
    d = {"complete": _field(out, r"^Complete requests:\s+(\d+)"),
         "failed": _field(out, r"^Failed requests:\s+(\d+)"),
         "non_2xx": _field(out, r"^Non-2xx responses:\s+(\d+)") or 0,
         "write_errors": _field(out, r"^Write errors:\s+(\d+)") or 0,
         "exceptions": _field(out, r"^Exceptions:\s+(\d+)") or 0,
         "keepalive": _field(out, r"^Keep-Alive requests:\s+(\d+)") or 0,
         "rps": _field(out, r"^Requests per second:\s+([\d.]+)", float),
         "seconds": _field(out, r"^Time taken for tests:\s+([\d.]+)", float)}
    m = re.search(r"^\s+\(Connect: (\d+), Receive: (\d+), Length: (\d+), "
                  r"Exceptions: (\d+)\)", out, re.M)
    if m:
        for k, v in zip(("connect", "receive", "length", "exceptions"),
                        m.groups()):
            d["failed_" + k] = int(v)
    return d


def ab(url, ns=None, requests=200, concurrency=10, keepalive=False,
       timeout=60.0, extra=()):
    """Runs ApacheBench (-r: go on after socket errors; -l: bodies may
    differ in length) against url, inside ns when given, at most
    `requests` requests and `timeout` seconds.  parse_ab()'s dict plus
    returncode and output.  Skip without ab."""
    exe = need("ab", "apache2-utils")
    argv = [exe, "-r", "-l", "-n", str(requests), "-c", str(concurrency),
            "-s", str(max(1, int(min(timeout, 30))))]
    argv += (["-k"] if keepalive else []) + list(extra) + [url]
    p = _load(argv, ns, timeout)
    out = p.stdout + p.stderr
    d = parse_ab(out)
    d.update(returncode=p.returncode, output=out)
    return d


def parse_wrk(out):
    """wrk's report as a dict: requests, rps, non_2xx_3xx, and socket
    errors connect, read, write, timeout (0 when wrk leaves them out)."""
    d = {"requests": _field(out, r"^\s*(\d+) requests in "),
         "rps": _field(out, r"^Requests/sec:\s+([\d.]+)", float),
         "non_2xx_3xx": _field(out, r"^\s*Non-2xx or 3xx responses:\s+(\d+)")
         or 0}
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), "
                  r"timeout (\d+)", out)
    for i, k in enumerate(("connect", "read", "write", "timeout")):
        d[k] = int(m.group(i + 1)) if m else 0
    return d


# wrk times its requests with gettimeofday(): when the wall clock steps
# during a run (a virtual machine's clock set right by its host), every
# request in flight looks older than --timeout and is counted as a
# timeout, and the run's duration is wrong.  Over a step larger than this
# (seconds), wrk's timeout count says nothing about the server.
CLOCK_STEP_LIMIT = 1.0


class ClockWatch:
    """The wall clock's progress against the monotonic clock's since it
    was made."""

    def __init__(self):
        self.wall, self.mono = time.time(), time.monotonic()

    def step(self):
        """Seconds the wall clock moved beyond the monotonic clock."""
        return (time.time() - self.wall) - (time.monotonic() - self.mono)


def wrk_clock(d, watch):
    """Records in parse_wrk()'s dict d the wall clock's step over the run
    (clock_step).  When it passes CLOCK_STEP_LIMIT, wrk's timeouts move
    from timeout to timeout_clock: they are the clock's, not the
    server's."""
    d["clock_step"] = watch.step()
    d["timeout_clock"] = 0
    if abs(d["clock_step"]) > CLOCK_STEP_LIMIT:
        d["timeout_clock"], d["timeout"] = d["timeout"], 0
    return d


def wrk(url, ns=None, seconds=2, connections=10, threads=1, timeout=None):
    """Runs wrk against url for `seconds`, inside ns when given;
    parse_wrk()'s dict (through wrk_clock()) plus returncode and output.
    Skip without wrk."""
    exe = need("wrk", "wrk")
    argv = [exe, "-t", str(threads), "-c", str(connections),
            "-d", "%ds" % seconds, "--timeout", "5s", url]
    watch = ClockWatch()
    p = _load(argv, ns, timeout or seconds + 30.0)
    out = p.stdout + p.stderr
    d = wrk_clock(parse_wrk(out), watch)
    d.update(returncode=p.returncode, output=out)
    return d


def main(argv):
    """python3 netns.py cleanup PREFIX | leftovers PREFIX"""
    if len(argv) == 3 and argv[1] == "cleanup":
        cleanup(argv[2])
        return 0
    if len(argv) == 3 and argv[1] == "leftovers":
        print(json.dumps(leftovers(argv[2])))
        return 0
    sys.stderr.write("usage: %s cleanup|leftovers PREFIX\n" % argv[0])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))


def haproxy_stat(path):
    """HAProxy's `show stat` over its stats socket: {(proxy, server): row
    as a dict}."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5.0)
        s.connect(path)
        s.sendall(b"show stat\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    text = data.decode("utf-8", "replace").lstrip("# ")
    return {(r["pxname"], r["svname"]): r
            for r in csv.DictReader(text.splitlines())}


def haproxy_head(stats_socket=None, mode=None, timeout_server="10s",
                 defaults=()):
    """The global and defaults sections of every test's HAProxy, as lines:
    the log on standard output, the stats socket when one is named, the
    mode and its log format when one is given, short timeouts, and more
    defaults lines."""
    lines = ["global",
             "    log stdout format raw local0",
             "    maxconn 4096"]
    if stats_socket:
        lines.append("    stats socket %s mode 600 level admin"
                     % stats_socket)
    lines += ["", "defaults"]
    if mode:
        lines.append("    mode %s" % mode)
    lines.append("    log global")
    if mode:
        lines.append("    option %slog" % mode)
    lines += ["    option dontlognull",
              "    timeout connect 2s",
              "    timeout client 10s",
              "    timeout server %s" % timeout_server,
              "    timeout check 2s"]
    lines += ["    " + d for d in defaults]
    return lines + [""]


class BalancedHellods:
    """A unittest class fixture: a Topology of the class's PREFIX, NET,
    HOSTS and CLIENTS; the hellods a subclass's start_hellods() starts on
    its hosts (appended to cls.hellods, named in cls.hd); then HAProxy
    (cls.haproxy, with its stats socket cls.stats_socket) and nginx
    (cls.nginx) with the configurations of haproxy_text() and
    nginx_text().  A balancer that is not installed skips only the cases
    that need it (cls.haproxy_missing, cls.nginx_missing).  Afterwards
    everything is stopped, every hellod must have exited 0, and nothing
    of the topology may be left."""

    HOSTS = 3
    CLIENTS = 1

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="hellod-%s-"
                                              % cls.PREFIX)
        cls.hellods, cls.hd = [], {}
        cls.haproxy = cls.nginx = None
        try:
            cls.topo = Topology(cls.PREFIX, hosts=cls.HOSTS,
                                clients=cls.CLIENTS, net=cls.NET,
                                isolate=True)
        except BaseException:
            cls.dir.cleanup()
            raise
        try:
            cls.start_hellods()
            cls.stats_socket = os.path.join(cls.dir.name, "haproxy.sock")
            cls.haproxy_missing = cls.nginx_missing = None
            try:
                cls.haproxy = cls.topo.haproxy(cls.haproxy_text())
            except Skip as e:
                cls.haproxy_missing = str(e)
            try:
                cls.nginx = cls.topo.nginx(cls.nginx_text())
            except Skip as e:
                cls.nginx_missing = str(e)
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        try:
            for d in cls.hellods:
                d.close()
        finally:
            cls.topo.close()
            cls.dir.cleanup()

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            for b in (cls.haproxy, cls.nginx):
                if b is not None:
                    b.stop()
            for name, d in cls.hd.items():
                rc = d.stop() if d.proc.poll() is None else d.proc.returncode
                if rc != 0:
                    problems.append("hellod %s exited %d:\n%s"
                                    % (name, rc, d.log()))
        finally:
            cls._close()
        left = leftovers(cls.PREFIX)
        if any(left.values()):
            problems.append("left after close(): %r" % left)
        if problems:
            raise AssertionError("\n".join(problems))
