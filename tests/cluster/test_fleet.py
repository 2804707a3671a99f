#!/usr/bin/env python3
"""Three hellods behind HAProxy, run from the deployment examples in
deploy/, while a client sends requests without a pause: each hellod in
turn is reloaded, stopped and started again, upgraded in place, crashed
and killed.  What does the client see?

    bridge 198.18.40.1    HAProxy with deploy/haproxy.cfg (port 80)
      client 198.18.40.2  wrk, through HAProxy only (bridge port isolation)
      h1 198.18.40.11, h2 .12, h3 .13: hellod with deploy/hellod.conf,
                         each from a copy of its own of the executable

These are the addresses written in deploy/: the files run as they are,
except HAProxy's stats socket, which moves into the test's directory, and
the three retry lines, which test_2 replaces.  The test first checks that
the files and this network agree (addresses, the PROXY and status ports,
drain_notice longer than HAProxy's inter x fall).

For each host in turn, h1 then h2 then h3, while wrk runs:

  reload   SIGHUP.  The next generation serves and the previous one
           finishes; not one of HAProxy's health checks fails; the
           request counter of /metrics only grows;
           hellod_config_generation follows.
  stop     SIGTERM.  /healthz answers 503 (drain_notice) and HAProxy marks
           the server DOWN while the workers still serve, before the stop
           proper begins; the master exits 0.  Then it is started again.
  upgrade  A fresh copy of the executable renamed over the file the master
           runs, then SIGUSR2: same pid, the new file, the next
           generation, no failed health check, the counters kept.
  crash    SIGKILL to every process of that hellod at once (master,
           workers, status server), as a crash of the machine or an OOM
           kill of the whole service would; once HAProxy marks it DOWN,
           it is started again.
  kill     SIGKILL to the master alone (kill -9 of the pid file's pid).
           Its workers and status server must stop by themselves
           (hellod(8): "A worker whose master is gone stops gracefully"),
           within shutdown_timeout; HAProxy marks it DOWN; it is started
           again.

Each step waits until HAProxy reports the server UP (stats socket) and the
host has answered requests again (hellod_http_requests_total{code="200"}
in its /metrics); before each step, that the host is taking traffic.  The
load is one wrk run per step (32 connections, each pausing 5 ms between
requests, at most LOAD_BOUND seconds), the next one started before the
previous one stops, so it never pauses.  wrk checks every body: the
greeting must name the client's address, 198.18.40.2.  wrk times requests
by the wall clock: over a run in which that clock steps by more than a
second (a virtual machine's clock set right by its host), its timeouts
are reported and not counted (netns.wrk_clock()).

test_1_with_retries: deploy/haproxy.cfg as it is.  Asserted: not one
failed request over the whole run (no connect, read, write or timeout
error, no status other than 200, no other body); during the reloads,
graceful stops and upgrades HAProxy itself met no error and retried
nothing; it did retry during the crashes and kills (the retries were
needed); every host served; no warning or error in any hellod's log.

test_2_without_retries: the same with `retries 0`, `no option redispatch`
and `retry-on none`: a balancer that never retries, like a Kubernetes
Service.  The failures of each step are printed.  Asserted: none in the
reloads, the graceful stops (drain_notice) and the upgrades, and no
HAProxy error there either; the crashes and kills may fail requests:
they are reported, not judged.

test_3_nginx: deploy/nginx.conf as it is (its pid and log files moved into
the test's directory): requests through its http block (keep-alive,
X-Forwarded-For) and its stream block (PROXY protocol) greet the client
and are all counted by the hellods, and keep being answered with one
hellod stopped.  Skipped without nginx or its stream module (Debian
package libnginx-mod-stream).

FLEET_STEPS=reload,stop (for example) runs only those steps.  Root only;
exit 77 without network namespaces, HAProxy or wrk.  About 2 minutes.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

import hellodtest as ht
import netns

PREFIX = "fleet"
NET = 40                        # 198.18.40.0/24, the addresses of deploy/
HOSTS = 3
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("SRCDIR") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
DEPLOY = os.path.join(SRCDIR, "deploy")
HAPROXY_CFG = os.path.join(DEPLOY, "haproxy.cfg")
HELLOD_CONF = os.path.join(DEPLOY, "hellod.conf")
NGINX_CONF = os.path.join(DEPLOY, "nginx.conf")
BACKEND = "hellod"              # the backend of deploy/haproxy.cfg

LOAD_CONNECTIONS = 32
LOAD_PAUSE_MS = 5               # each connection's pause between requests
LOAD_BOUND = 60                 # seconds: the longest a step's wrk runs
# Requests a host must answer to count as taking traffic.
SERVED = 50
STEPS = ("reload", "stop", "upgrade", "crash", "kill")
# FLEET_STEPS=reload,stop runs only those steps (to look into one).
if os.environ.get("FLEET_STEPS"):
    STEPS = tuple(x for x in STEPS
                  if x in os.environ["FLEET_STEPS"].split(","))

# The retry lines of deploy/haproxy.cfg and what test_2 puts instead.
NO_RETRIES = [
    (r"^(\s*)retries 3\b.*$", r"\1retries 0"),
    (r"^(\s*)option redispatch 1\b.*$", r"\1no option redispatch"),
    (r"^(\s*)retry-on all-retryable-errors\b.*$", r"\1retry-on none"),
]

# wrk's script: every response must be a 200 whose body is exactly the
# expected greeting (the first argument after --).  Counted per thread,
# summed in done().  Each connection pauses LOAD_PAUSE_MS between
# requests, which bounds the rate (and HAProxy's log).
WRK_SCRIPT = r"""
local threads = {}
function delay()
  return %(pause)d
end
function setup(thread)
  table.insert(threads, thread)
end
function init(args)
  expected = args[1]
  good = 0
  bad_status = 0
  bad_body = 0
  first_bad = ""
end
function response(status, headers, body)
  if status ~= 200 then
    bad_status = bad_status + 1
  elseif body ~= expected then
    bad_body = bad_body + 1
  else
    good = good + 1
    return
  end
  if first_bad == "" then
    first_bad = status .. " " .. string.sub(body or "", 1, 120)
  end
end
function done(summary, latency, requests)
  local g, s, b, f = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    g = g + t:get("good")
    s = s + t:get("bad_status")
    b = b + t:get("bad_body")
    if f == "" then f = t:get("first_bad") end
  end
  io.write(string.format("greetings: %%d good, %%d bad status, %%d bad body\n",
                         g, s, b))
  io.write("first bad: " .. string.gsub(f, "\n", " ") .. "\n")
end
"""


# --- The deployment files ---

def hellod_duration(text):
    """Seconds of a hellod.conf(5) duration: 250ms, 3s, 2m, or 3."""
    m = re.match(r"^(\d+)(ms|s|m)?$", text.strip())
    if not m:
        raise ValueError("not a duration: %r" % text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60,
                              None: 1}[m.group(2)]


def haproxy_time(text):
    """Seconds of an HAProxy time: 1s, 200ms, 2m; a bare number is ms."""
    m = re.match(r"^(\d+)(us|ms|s|m|h|d)?$", text.strip())
    if not m:
        raise ValueError("not an HAProxy time: %r" % text)
    return int(m.group(1)) * {"us": 1e-6, "ms": 0.001, "s": 1, "m": 60,
                              "h": 3600, "d": 86400, None: 0.001}[m.group(2)]


def read_ini(path):
    """{(section, key): [values]} of a hellod.conf."""
    out = {}
    section = None
    with open(path) as f:
        for line in f:
            s = re.sub(r"\s[;#].*$", "", line).strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("["):
                section = s.strip("[]")
                continue
            k, _, v = s.partition("=")
            out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def port_of(addresses):
    """The one port of a list of IPv4 listen addresses."""
    ports = {int(a.rsplit(":", 1)[1]) for a in addresses.split()}
    if len(ports) != 1:
        raise AssertionError("expected one port in %r" % addresses)
    return ports.pop()


class Deployment:
    """What the test needs from deploy/hellod.conf and deploy/haproxy.cfg."""

    def __init__(self):
        ini = read_ini(HELLOD_CONF)
        self.ini = ini
        self.proxy_port = port_of(ini[("server", "proxy_listen")][0])
        self.status_port = port_of(ini[("status", "listen")][0])
        self.drain_notice = hellod_duration(
            ini[("status", "drain_notice")][0])
        self.shutdown_timeout = hellod_duration(
            ini.get(("server", "shutdown_timeout"), ["10s"])[0])
        self.workers = int(ini[("server", "workers")][0])
        self.trusted = ini[("proxy", "trusted")][0].split()
        with open(HAPROXY_CFG) as f:
            self.haproxy = f.read()
        text = self.haproxy
        self.bind = re.findall(r"^\s*bind\s+([\d.]+):(\d+)\s*$", text, re.M)
        self.servers = re.findall(
            r"^\s*server\s+(\S+)\s+([\d.]+):(\d+)\s*$", text, re.M)
        m = re.search(r"^\s*default-server\s+(.*)$", text, re.M)
        self.default_server = m.group(1).split() if m else []
        ds = self.default_server

        def arg(word):
            return ds[ds.index(word) + 1] if word in ds else None
        self.check_port = int(arg("port")) if arg("port") else None
        self.inter = haproxy_time(arg("inter") or "2s")
        self.fall = int(arg("fall") or 3)
        self.rise = int(arg("rise") or 2)

    def check_against(self, topo):
        """Raises unless the files name this topology's addresses and
        agree with each other."""
        problems = []
        if len(self.bind) != 1 or self.bind[0][0] != topo.addr:
            problems.append("haproxy.cfg: one bind on %s expected, found "
                            "%r" % (topo.addr, self.bind))
        want = [(h.addr, str(self.proxy_port)) for h in topo.hosts]
        got = [(a, p) for _, a, p in self.servers]
        if got != want:
            problems.append("haproxy.cfg: servers %r, expected the hosts' "
                            "proxy_listen %r" % (got, want))
        if "send-proxy-v2" not in self.default_server:
            problems.append("haproxy.cfg: no send-proxy-v2 on default-server")
        if self.check_port != self.status_port:
            problems.append("haproxy.cfg: check port %r, hellod.conf's "
                            "status port %d" % (self.check_port,
                                                self.status_port))
        if self.trusted != ["%s/32" % topo.addr]:
            problems.append("hellod.conf: trusted %r, expected the "
                            "balancer %s/32" % (self.trusted, topo.addr))
        if not self.drain_notice > self.inter * self.fall:
            problems.append("hellod.conf: drain_notice %.1fs is not longer "
                            "than HAProxy's inter x fall = %.1fs"
                            % (self.drain_notice, self.inter * self.fall))
        if problems:
            raise AssertionError("deploy/ does not match the test network:"
                                 "\n  " + "\n  ".join(problems))

    def haproxy_config(self, stats_socket, retries=True):
        """deploy/haproxy.cfg with the stats socket at stats_socket, and
        without retries when retries is false."""
        text, n = re.subn(r"^(\s*stats socket\s+)\S+", r"\g<1>" +
                          stats_socket, self.haproxy, flags=re.M)
        if n != 1:
            raise AssertionError("haproxy.cfg: %d stats socket lines" % n)
        if not retries:
            for pattern, repl in NO_RETRIES:
                text, n = re.subn(pattern, repl, text, flags=re.M)
                if n != 1:
                    raise AssertionError("haproxy.cfg: %r found %d times"
                                         % (pattern, n))
        return text


# --- HAProxy and hellod figures ---



METRIC_RE = re.compile(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$", re.M)


def metrics(addr, port):
    """A hellod's /metrics as {name with labels: value}; None when it
    does not answer."""
    try:
        r = ht.get(addr, port, "/metrics", timeout=2.0)
    except OSError:
        return None
    if r is None or r.status != 200:
        return None
    return {k: float(v) for k, v in METRIC_RE.findall(r.body.decode())}


OK_200 = 'hellod_http_requests_total{code="200"}'


# --- The load ---

def wrk_ms(text):
    """Milliseconds of a wrk duration: 812.00us, 2.41ms, 1.02s, 1.5m."""
    m = re.match(r"^([\d.]+)(us|ms|s|m|h)$", text)
    if not m:
        return None
    return float(m.group(1)) * {"us": 0.001, "ms": 1, "s": 1000,
                                "m": 60000, "h": 3600000}[m.group(2)]


class Load:
    """One wrk run from the client namespace, at most LOAD_BOUND
    seconds, stopped early (SIGINT: wrk prints its report) by stop()."""

    def __init__(self, ns, url, expected, script):
        exe = netns.need("wrk", "wrk")
        if isinstance(expected, bytes):
            expected = expected.decode()
        self.argv = [exe, "-t1", "-c", str(LOAD_CONNECTIONS),
                     "-d", "%ds" % LOAD_BOUND, "--timeout", "5s",
                     "-s", script, url, "--", expected]
        self.started = time.monotonic()
        self.clock = netns.ClockWatch()
        self.collected = False
        self.p = ns.popen(self.argv, stdin=subprocess.DEVNULL,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, start_new_session=True)

    def stop(self):
        """wrk's figures: parse_wrk()'s dict (through wrk_clock(): no
        timeouts counted over a step of the wall clock) plus good,
        bad_status, bad_body, first_bad, failed (the sum of every kind of
        failure), seconds and ended_early (the bound passed before
        stop())."""
        self.collected = True
        ended_early = self.p.poll() is not None
        if not ended_early:
            self.p.send_signal(signal.SIGINT)
        try:
            out, _ = self.p.communicate(timeout=15.0)
        except subprocess.TimeoutExpired:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.communicate()
            raise AssertionError("wrk did not stop on SIGINT")
        d = netns.wrk_clock(netns.parse_wrk(out), self.clock)
        m = re.search(r"^greetings: (\d+) good, (\d+) bad status, (\d+) bad "
                      r"body$", out, re.M)
        if not m or d["requests"] is None:
            raise AssertionError("no report from wrk (exit %s):\n%s"
                                 % (self.p.returncode, out))
        d["good"], d["bad_status"], d["bad_body"] = map(int, m.groups())
        fb = re.search(r"^first bad: (.*)$", out, re.M)
        d["first_bad"] = fb.group(1).strip() if fb else ""
        lat = re.search(r"^\s*Latency\s+(\S+)\s+\S+\s+(\S+)", out, re.M)
        d["latency_avg"], d["latency_max"] = (
            (wrk_ms(lat.group(1)), wrk_ms(lat.group(2))) if lat
            else (None, None))
        d["failed"] = (d["connect"] + d["read"] + d["write"] + d["timeout"]
                       + d["bad_status"] + d["bad_body"])
        d["seconds"] = time.monotonic() - self.started
        d["ended_early"] = ended_early
        d["output"] = out
        return d

    def kill(self):
        """Ends a wrk that stop() did not collect."""
        if self.collected:
            return
        self.collected = True
        try:
            os.killpg(self.p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.p.communicate()


# --- The hosts ---

class Host:
    """One hellod in its namespace, with deploy/hellod.conf, run from a
    copy of the executable of its own (which the upgrade replaces)."""

    def __init__(self, ns, name, dir, dep):
        self.ns = ns
        self.name = name                # the server's name in HAProxy
        self.addr = ns.addr
        self.dep = dep
        self.dir = os.path.join(dir, ns.role)
        os.makedirs(self.dir)
        self.exe = os.path.join(self.dir, "hellod")
        shutil.copy2(ht.HELLOD, self.exe)
        self.proc = None
        self.runs = []
        self.generation = 0

    def start(self):
        """Starts the master and waits until both listeners listen and
        every worker of generation 1 serves."""
        p = self.ns.start([self.exe, "--foreground", "-c", HELLOD_CONF],
                          name="hellod-%s" % self.ns.role)
        self.proc = p
        self.runs.append(p)
        self.generation = 1
        for port in (self.dep.proxy_port, self.dep.status_port):
            p.wait_listening(self.addr, port, 10.0)
        self.wait_serving(1)

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.alive()

    def log(self):
        """The log of the running (or last) master."""
        return self.proc.log() if self.proc else ""

    def all_logs(self):
        return "".join("--- %s, run %d ---\n%s" % (self.name, i + 1, p.log())
                       for i, p in enumerate(self.runs))

    def count_log(self, pattern):
        return len(re.findall(pattern, self.log(), re.M))

    def wait_log(self, pattern, count=1, timeout=10.0):
        def seen():
            if not self.alive():
                raise AssertionError("hellod %s exited with %s:\n%s"
                                     % (self.name, self.proc.proc.returncode,
                                        self.log()))
            return self.count_log(pattern) >= count
        ht.wait_for(seen, timeout, 0.02,
                    "%r x%d in the log of %s" % (pattern, count, self.name))

    def wait_serving(self, generation, timeout=10.0):
        self.wait_log(r"worker \d+ serving \(generation %d, " % generation,
                      self.dep.workers, timeout)

    def metrics(self):
        return metrics(self.addr, self.dep.status_port)

    def served(self):
        """hellod_http_requests_total{code="200"}, or None when the status
        server does not answer."""
        m = self.metrics()
        return None if m is None else m.get(OK_200, 0.0)

    def wait_served(self, since, what, timeout=15.0):
        """Until the 200 counter passed since + SERVED; returns it."""
        def grown():
            v = self.served()
            return v if v is not None and v >= since + SERVED else None
        return ht.wait_for(grown, timeout, 0.05,
                           "%s to serve %d more requests (%s)"
                           % (self.name, SERVED, what))

    def replace_exe(self):
        """A new copy of the built executable renamed over the one the
        master runs, as a package upgrade installs it."""
        tmp = self.exe + ".new"
        shutil.copy2(ht.HELLOD, tmp)
        os.rename(tmp, self.exe)

    def kill_all(self):
        """SIGKILL to every process in this host's namespace (the master,
        its workers and its status server, or what is left of them) at
        once; waits until they are gone."""
        pids = self.ns.pids()
        if self.alive() and self.pid not in pids:
            raise AssertionError("the master %d of %s is not in its "
                                 "namespace" % (self.pid, self.name))
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.proc.wait(10.0)
        ht.wait_for(lambda: not self.ns.pids(), 10.0, 0.02,
                    "the processes of %s to be gone" % self.name)
        return len(pids)


# --- The test ---

class Fleet(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dep = Deployment()
        cls.dir = tempfile.TemporaryDirectory(prefix="hellod-fleet-")
        cls.hosts = []
        cls.topo = netns.Topology(PREFIX, hosts=HOSTS, net=NET,
                                  isolate=True)
        try:
            cls.dep.check_against(cls.topo)
            names = [name for name, _, _ in cls.dep.servers]
            for ns, name in zip(cls.topo.hosts, names):
                cls.hosts.append(Host(ns, name, cls.dir.name, cls.dep))
            for h in cls.hosts:
                h.start()
            cls.script = os.path.join(cls.dir.name, "greeting.lua")
            with open(cls.script, "w") as f:
                f.write(WRK_SCRIPT % {"pause": LOAD_PAUSE_MS})
        except BaseException:
            cls._close()
            raise

    @classmethod
    def _close(cls):
        try:
            cls.topo.close()
        finally:
            cls.dir.cleanup()

    @classmethod
    def tearDownClass(cls):
        problems = []
        try:
            # All at once: each takes drain_notice to stop.
            running = [h for h in cls.hosts if h.alive()]
            for h in running:
                h.proc.proc.send_signal(signal.SIGTERM)
            for h in running:
                try:
                    rc = h.proc.proc.wait(cls.dep.drain_notice +
                                          cls.dep.shutdown_timeout + 5.0)
                except subprocess.TimeoutExpired:
                    rc = "nothing (still running)"
                h.proc.stop()
                if rc != 0:
                    problems.append("hellod %s exited %s:\n%s"
                                    % (h.name, rc, h.all_logs()))
        finally:
            cls._close()
        left = netns.leftovers(PREFIX)
        if any(left.values()):
            problems.append("left after close(): %r" % left)
        if problems:
            raise AssertionError("\n".join(problems))

    def setUp(self):
        self.topo = type(self).topo
        self.client = self.topo.client
        self.url = "http://%s:%s/" % self.dep.bind[0]
        self.expected = ht.greeting(self.client.addr)
        for h in self.hosts:
            if not h.alive():
                h.start()
        self.balancer = None

    def tearDown(self):
        if self.balancer is not None:
            self.balancer.stop()

    # --- HAProxy ---

    def start_haproxy(self, retries):
        self.stats_socket = os.path.join(
            self.dir.name, "haproxy-%s.sock" % ("retries" if retries
                                                else "none"))
        self.balancer = self.topo.haproxy(
            self.dep.haproxy_config(self.stats_socket, retries))
        ht.wait_for(lambda: os.path.exists(self.stats_socket), 10.0, 0.02,
                    "HAProxy's stats socket")
        for h in self.hosts:
            self.wait_state(h, "UP", 15.0)

    def stat(self):
        return netns.haproxy_stat(self.stats_socket)

    def server_row(self, h):
        return self.stat()[(BACKEND, h.name)]

    def wait_state(self, h, state, timeout):
        """Until HAProxy reports h's server as state (UP or DOWN, not in
        transition); returns the row."""
        def there():
            row = self.server_row(h)
            return row if row["status"] == state else None
        try:
            return ht.wait_for(there, timeout, 0.02,
                               "HAProxy to see %s %s" % (h.name, state))
        except AssertionError as e:
            row = self.server_row(h)
            raise AssertionError("%s; now %r (%s %s)\n%s" % (
                e, row["status"], row["check_status"], row["check_desc"],
                h.log())) from None

    def sessions(self):
        """Client connections the frontend has accepted."""
        return int(self.stat()[("www", "FRONTEND")]["stot"])

    def backend_counters(self):
        row = self.stat()[(BACKEND, "BACKEND")]
        return {k: int(row[k] or 0) for k in ("wretr", "wredis", "econ",
                                              "eresp", "hrsp_5xx")}

    def balancer_log_size(self):
        return os.path.getsize(self.balancer.log_path)

    def balancer_problems(self, since=0):
        """HAProxy log lines (from byte since) of requests that were not
        plain 200s: another status, retries, or a termination state."""
        with open(self.balancer.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", "replace")
        out = []
        for line in text.splitlines():
            # be/srv Tq/Tw/Tc/Tr/Ta STATUS BYTES - - TERM act/fe/be/srv/retries
            m = re.search(r" (-?\d+) \d+ \S+ \S+ (\S{4}) "
                          r"\d+/\d+/\d+/\d+/(\+?\d+) ", line)
            if m and (m.group(1) != "200" or m.group(2) != "----" or
                      m.group(3) != "0"):
                out.append(line)
            elif not m and "Server %s/" % BACKEND in line:
                out.append(line)
        return out

    # --- The steps ---

    def step_reload(self, h):
        row = self.server_row(h)
        down, failed = int(row["chkdown"]), int(row["chkfail"])
        before = h.served()
        finished = h.count_log(r"previous generation finished")
        h.proc.proc.send_signal(signal.SIGHUP)
        h.generation += 1
        h.wait_log(r"reloaded: generation %d, " % h.generation)
        h.wait_serving(h.generation)
        h.wait_log(r"previous generation finished", finished + 1,
                   self.dep.shutdown_timeout + 5.0)
        self.assert_new_generation(h, "a reload", before, down, failed)
        return {}

    def assert_new_generation(self, h, what, before, down, failed):
        """After a reload or an upgrade: /metrics names the generation,
        no counter went back, and no health check failed."""
        m = h.metrics()
        self.assertIsNotNone(m, "%s: no /metrics after %s" % (h.name, what))
        self.assertEqual(m["hellod_config_generation"], h.generation)
        self.assertGreaterEqual(m[OK_200], before,
                                "%s: the request counter went back" % h.name)
        row = self.server_row(h)
        self.assertEqual((row["status"], int(row["chkdown"]),
                          int(row["chkfail"])), ("UP", down, failed),
                         "%s failed a health check during %s "
                         "(/healthz: %s %s)" % (h.name, what,
                                                row["check_status"],
                                                row["check_desc"]))

    def step_stop(self, h):
        t0 = time.monotonic()
        h.proc.proc.send_signal(signal.SIGTERM)
        h.wait_log(r"draining: /healthz answers 503")
        self.wait_state(h, "DOWN", self.dep.drain_notice + 5.0)
        down_after = time.monotonic() - t0
        # The balancer stopped sending before hellod stopped serving.
        self.assertTrue(h.alive(), "%s exited before HAProxy marked it "
                        "DOWN" % h.name)
        self.assertEqual(h.count_log(r"stopping gracefully"), 0,
                         "%s began its stop %.1fs after SIGTERM, before "
                         "HAProxy marked it DOWN:\n%s"
                         % (h.name, down_after, h.log()))
        rc = h.proc.proc.wait(self.dep.drain_notice +
                              self.dep.shutdown_timeout + 5.0)
        stopped_after = time.monotonic() - t0
        self.assertEqual(rc, 0, "%s exited %s:\n%s" % (h.name, rc, h.log()))
        h.start()
        self.wait_state(h, "UP", 10.0)
        return {"down": down_after, "exit": stopped_after}

    def step_upgrade(self, h):
        row = self.server_row(h)
        down, failed = int(row["chkdown"]), int(row["chkfail"])
        before = h.served()
        pid = h.pid
        finished = h.count_log(r"previous generation finished")
        h.replace_exe()
        h.proc.proc.send_signal(signal.SIGUSR2)
        h.wait_log(r"upgraded in place from generation %d" % h.generation)
        h.generation += 1
        h.wait_serving(h.generation)
        h.wait_log(r"previous generation finished", finished + 1,
                   self.dep.shutdown_timeout + 5.0)
        self.assertTrue(h.alive())
        self.assertEqual(h.pid, pid)
        self.assertEqual(os.stat("/proc/%d/exe" % pid).st_ino,
                         os.stat(h.exe).st_ino,
                         "%s does not run the new file" % h.name)
        self.assert_new_generation(h, "an upgrade", before, down, failed)
        return {}

    def step_crash(self, h):
        t0 = time.monotonic()
        n = h.kill_all()
        self.wait_state(h, "DOWN", self.dep.inter * (self.dep.fall + 2) + 5.0)
        down_after = time.monotonic() - t0
        h.start()
        self.wait_state(h, "UP", 10.0)
        return {"killed": n, "down": down_after}

    def step_kill(self, h):
        t0 = time.monotonic()
        children = ht.child_pids(h.pid)
        os.kill(h.pid, signal.SIGKILL)
        h.proc.proc.wait(10.0)
        self.wait_state(h, "DOWN", self.dep.inter * (self.dep.fall + 2) + 5.0)
        down_after = time.monotonic() - t0
        # hellod(8): a worker whose master is gone stops gracefully, that
        # is within shutdown_timeout.
        bound = self.dep.shutdown_timeout + 3.0
        try:
            ht.wait_for(lambda: not h.ns.pids(), bound, 0.05,
                        "the workers of %s to stop after their master" %
                        h.name)
        except AssertionError:
            left = h.ns.pids()
            states = {p: ht.proc_stat(p) for p in left}
            h.kill_all()
            raise AssertionError(
                "%.1fs after SIGKILL to the master %d of %s, these of its "
                "children %r still run: %r (hellod(8): a worker whose "
                "master is gone stops gracefully).  Its log:\n%s"
                % (time.monotonic() - t0, h.pid, h.name, children,
                   states, h.log())) from None
        gone_after = time.monotonic() - t0
        h.start()
        self.wait_state(h, "UP", 10.0)
        return {"down": down_after, "gone": gone_after}

    # --- The scenario ---

    def scenario(self, retries):
        """Runs every step on every host under load; returns the list of
        results, one dict per step."""
        self.start_haproxy(retries)
        addr, port = self.dep.bind[0]
        r = self.client.http_get(addr, int(port))
        self.assertEqual((r.status, r.body), (200, self.expected))
        results = []
        t_start = time.monotonic()
        loads = [Load(self.client, self.url, self.expected, self.script)]
        load = loads[0]
        tail = None
        try:
            for h in self.hosts:
                for kind in STEPS:
                    before = h.served() or 0.0
                    h.wait_served(before, "before %s" % kind)
                    counters = self.backend_counters()
                    log_at = self.balancer_log_size()
                    t0 = time.monotonic()
                    info = getattr(self, "step_" + kind)(h)
                    took = time.monotonic() - t0
                    # Back in rotation: it answers requests again.
                    h.wait_served(h.served() or 0.0, "after %s" % kind)
                    # The next step's load starts before this one stops.
                    sessions = self.sessions()
                    nxt = Load(self.client, self.url, self.expected,
                               self.script)
                    loads.append(nxt)
                    ht.wait_for(lambda: self.sessions() >= sessions +
                                LOAD_CONNECTIONS, 10.0, 0.02,
                                "the next wrk to connect")
                    res = load.stop()
                    load = nxt
                    after = self.backend_counters()
                    res.update(info)
                    res.update(host=h.name, step=kind, took=took,
                               haproxy={k: after[k] - counters[k]
                                        for k in after},
                               log=self.balancer_problems(log_at))
                    results.append(res)
                    print("%6.1fs %s %s: %.1fs, %d requests, %d failed"
                          % (time.monotonic() - t_start, h.name, kind, took,
                             res["requests"], res["failed"]))
                    sys.stdout.flush()
                    if res["ended_early"]:
                        raise AssertionError(
                            "wrk's %ds bound passed during %s of %s"
                            % (LOAD_BOUND, kind, h.name))
            tail = load.stop()
        except BaseException:
            if results:
                self.report(results, retries, time.monotonic() - t_start,
                            partial=True)
            raise
        finally:
            for x in loads:
                x.kill()
        if tail is not None:
            tail.update(host="-", step="(tail)", took=0.0, haproxy={},
                        log=[])
            results.append(tail)
        self.report(results, retries, time.monotonic() - t_start)
        # Every host served with its current master.
        for h in self.hosts:
            self.assertGreater(h.served() or 0, SERVED, h.name)
        return results

    def report(self, results, retries, seconds, partial=False):
        """Prints one line per step: wrk's figures (failed is the sum of
        socket errors, statuses other than 200 and other bodies), its
        slowest answer, HAProxy's retries, redispatches and 5xx answers,
        and how long HAProxy took to mark the server DOWN."""
        title = ("with retries (deploy/haproxy.cfg as it is)" if retries
                 else "without retries (retries 0, no option redispatch, "
                 "retry-on none)")
        print("\n%s: %d connections, %.0f s%s"
              % (title, LOAD_CONNECTIONS, seconds,
                 " (until the failure below)" if partial else ""))
        print("%-8s %-4s %5s %8s %6s %6s  %-13s %-7s %7s  %-14s %s"
              % ("step", "host", "secs", "requests", "req/s", "failed",
                 "c/r/w/t errs", "non200", "max ms", "retr/redis/5xx",
                 "DOWN after"))
        for r in results:
            hp = r["haproxy"]
            print("%-8s %-4s %5.1f %8d %6.0f %6d  %-13s %-7d %7s  %-14s %s"
                  % (r["step"], r["host"], r["seconds"], r["requests"],
                     r["requests"] / max(r["seconds"], 0.001), r["failed"],
                     "%d/%d/%d/%d" % (r["connect"], r["read"], r["write"],
                                      r["timeout"]),
                     r["bad_status"],
                     "-" if r["latency_max"] is None
                     else "%.1f" % r["latency_max"],
                     "%s/%s/%s" % (hp.get("wretr", "-"), hp.get("wredis", "-"),
                                   hp.get("hrsp_5xx", "-")),
                     "%.1fs" % r["down"] if "down" in r else ""))
        per = {k: sum(r["failed"] for r in results if r["step"] == k)
               for k in STEPS}
        print("failed requests by step: %s; total %d of %d"
              % (", ".join("%s %d" % kv for kv in per.items()),
                 sum(r["failed"] for r in results),
                 sum(r["requests"] for r in results)))
        for r in results:
            if r.get("timeout_clock"):
                print("  %s %s: the wall clock stepped %+.1f s during the "
                      "run; wrk's %d timeouts (it times requests by that "
                      "clock) are not counted"
                      % (r["step"], r["host"], r["clock_step"],
                         r["timeout_clock"]))
        for r in results:
            if r["failed"]:
                print("  %s %s: first bad answer %r; HAProxy's log:"
                      % (r["step"], r["host"], r["first_bad"][:60]))
                for line in r["log"][:3]:
                    print("    " + line)
        sys.stdout.flush()

    def failures_text(self, results):
        return "\n".join("%s %s: %d failed, wrk said:\n%s\nHAProxy:\n%s"
                         % (r["step"], r["host"], r["failed"], r["output"],
                            "\n".join(r["log"][:20]))
                         for r in results if r["failed"])

    def assert_graceful_unseen(self, results):
        """Reloads, graceful stops and upgrades: not one failed request,
        and HAProxy had nothing to retry or redispatch and met no
        connection or response error."""
        bad = [r for r in results
               if r["step"] in ("reload", "stop", "upgrade") and r["failed"]]
        self.assertEqual(bad, [], self.failures_text(bad))
        for r in results:
            if r["step"] in ("reload", "stop", "upgrade"):
                self.assertEqual(
                    {k: r["haproxy"][k] for k in ("wretr", "wredis", "econ",
                                                  "eresp", "hrsp_5xx")},
                    dict.fromkeys(("wretr", "wredis", "econ", "eresp",
                                   "hrsp_5xx"), 0),
                    "HAProxy saw errors during %s of %s:\n%s"
                    % (r["step"], r["host"], "\n".join(r["log"][:20])))

    def assert_logs_quiet(self):
        """No warning or error in any hellod's log."""
        for h in self.hosts:
            for p in h.runs:
                self.assertEqual(ht.log_problems(p.log()), [], h.name)

    def test_1_with_retries(self):
        results = self.scenario(retries=True)
        total = sum(r["failed"] for r in results)
        self.assertEqual(total, 0, self.failures_text(results))
        self.assert_graceful_unseen(results)
        self.assert_logs_quiet()
        # The kills did need the retries.
        retried = sum(r["haproxy"]["wretr"] + r["haproxy"]["wredis"]
                      for r in results if r["step"] in ("crash", "kill"))
        if any(r["step"] in ("crash", "kill") for r in results):
            self.assertGreater(retried, 0, "HAProxy retried nothing during "
                               "the kills")

    def test_2_without_retries(self):
        results = self.scenario(retries=False)
        self.assert_graceful_unseen(results)
        self.assert_logs_quiet()

    # --- nginx ---

    def test_3_nginx(self):
        exe = netns.need("nginx", "nginx-light")
        with open(NGINX_CONF) as f:
            text = f.read()
        for path in re.findall(r"^\s*load_module\s+(\S+);", text, re.M):
            if not os.path.exists(path):
                raise unittest.SkipTest("%s is not installed (Debian package "
                                        "libnginx-mod-stream)" % path)
        d = os.path.join(self.dir.name, "nginx")
        os.makedirs(d)
        # Its pid and log files into the test's directory.
        text = re.sub(r"(/run/|/var/log/nginx/)", d + "/", text)
        conf = os.path.join(d, "nginx.conf")
        with open(conf, "w") as f:
            f.write(text)
        listens = re.findall(r"^\s*listen\s+([\d.]+):(\d+);", text, re.M)
        self.assertEqual(sorted(a for a, _ in listens),
                         [self.topo.addr] * len(listens))
        p = self.topo.start([exe, "-p", d + "/", "-e",
                             os.path.join(d, "error.log"), "-c", conf,
                             "-g", "daemon off;"], name="nginx")
        self.addCleanup(p.stop)
        for a, port in listens:
            p.wait_listening(a, int(port), 10.0)
        ports = [int(port) for _, port in listens]
        per_port = 3 * HOSTS

        def round_trip():
            before = [h.served() for h in self.hosts]
            for port in ports:
                for r in self.client.http_get_all(self.topo.addr, port,
                                                  count=per_port):
                    self.assertEqual((r.status, r.body),
                                     (200, self.expected), port)
            after = [h.served() for h in self.hosts]
            return before, after

        # Through both blocks, every request is counted by a hellod.
        before, after = round_trip()
        self.assertEqual(sum(after) - sum(before), per_port * len(ports))
        # One hellod stopped: nginx tries the next server.
        h = self.hosts[0]
        h.proc.proc.send_signal(signal.SIGTERM)
        self.assertEqual(h.proc.proc.wait(self.dep.drain_notice +
                                          self.dep.shutdown_timeout + 5.0), 0)
        others = self.hosts[1:]
        before = [x.served() for x in others]
        for port in ports:
            for r in self.client.http_get_all(self.topo.addr, port,
                                              count=per_port):
                self.assertEqual((r.status, r.body), (200, self.expected),
                                 "port %d with %s stopped" % (port, h.name))
        after = [x.served() for x in others]
        self.assertEqual(sum(after) - sum(before), per_port * len(ports))
        h.start()


if __name__ == "__main__":
    netns.skip_unless_possible()
    for binary, package in (("haproxy", "haproxy"), ("wrk", "wrk")):
        try:
            netns.need(binary, package)
        except netns.Skip as e:
            sys.stderr.write("skipped: %s\n" % e)
            sys.exit(ht.SKIP)
    ht.main()
