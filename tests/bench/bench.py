#!/usr/bin/env python3
"""hellod benchmark suite.

Starts hellod (sync, async with 1 worker, async with workers=auto) and,
next to it, the servers it is compared with, each on a free 127.0.0.1
port with a configuration written into a temporary directory:

  nginx-1, nginx-auto  nginx with 1 and with auto workers, returning the
                       greeting (Debian package nginx-light)
  h2o                  h2o with num-threads: 1 serving a static file that
                       holds the greeting for 127.0.0.1 (package h2o)
  lighttpd             lighttpd with server.max-worker = 0 serving the
                       same file (package lighttpd)
  py-blocking          article_blocking.py and article_asyncio.py beside
  py-asyncio           this script: the two Python designs of the article
                       the project began from

A server whose binary is missing is skipped with a note.  The load
generators are ab, h2load (or wrk).  With --url it measures a deployed
instance instead.

Scenarios
  original   ab -r -n1000 -c150 -l, the article's command and fields,
             printed next to the article's own figures
  sustained  ab -r -l -n 50000 at concurrency 1, 10, 100, 1000
             (one connection per request)
  keepalive  h2load --h1 -c100 -n200000 (or wrk -c100 -d10s)
  stuck      one client connects and sends nothing; ab -n2000 -c10 -s5
             (header_timeout = 2s in the hellod configurations; the
             Python peers have no timeout at all)
  slow       delay = 10ms, ab -k -c100 for a fixed time
  padding    body_padding = 16k and 256k, ab -k -c10
  idle       10,000 idle keep-alive connections; worker RSS per connection
  proxy      the close-per-request rate through HAProxy send-proxy-v2:
             HAProxy (mode tcp, package haproxy) on 127.0.0.1 in front of
             hellod async with 1 worker, one frontend with send-proxy-v2
             to hellod's proxy_listen, one without to its plain listen;
             ab -r -l -n N -c100 through each, in alternating rounds
             (--proxy-rounds); req/s, failed, hellod's and HAProxy's CPU
             per request side by side and the ratio PROXY/plain.  Skipped
             with a note without haproxy, with --url, or when --servers
             leaves out async-1
  models     sync, async and uring (one worker each) beside nginx (one
             worker), in --model-rounds interleaved rounds: keep-alive
             (h2load --h1 -c100 -n100000), the same with four requests
             pipelined on each connection (-m4; not sync, which closes
             each connection after one answer), and a new connection per
             request (ab -r -l -c100 -n20000); medians of CPU, system
             calls and latency per request, and the CPU ratios

Servers and HAProxy run on the server CPUs, the load generator on the
others (below).

slow and padding need a server-side setting: hellod gets it in its
configuration, the Python peers on their command line (--delay, --pad);
nginx, h2o and lighttpd have no such setting and skip them.  The Python
peers close every connection and skip idle.

Every load is bounded by a request count and by time: ab always gets -t
(the Python peers at most --peer-limit seconds a run) and -s (a socket
timeout), every tool a wall-clock limit.  A run that ab aborts (the
blocking peer behind a silent client serves nobody) is reported with the
requests it completed in the time it took.

Every run records requests/s, failed requests, p50/p99 latency and the
server's CPU time per request (the run time of every thread of the master
and all its descendants, /proc/PID/task/TID/schedstat, sampled right before
and after the run), that CPU time over the run's wall time (how busy the
server was: below 100% per worker, the load generator set the pace) and
the load generator's own.  The server runs on the first half of the CPUs
and the load generator on the other half (taskset) when there are at
least two.  A full run ends with the CPU per request of every server on
keep-alive and on new connections, and its ratio to nginx and h2o.

--url URL runs every scenario that needs no server-side change against a
running instance; no server is started and no CPU figure is read unless
--pid names the instance's master.  When the instance answers
GET ?delay=10ms differently from GET ?delay=zz (a 400: per-request knobs
are on), slow and padding run too, through ?delay=10ms and ?pad=SIZE.

Output (--out DIR): results.txt (the tables, also printed), results.csv
(one row per server x scenario x concurrency), rps_vs_concurrency.png,
stuck_client.png, slow_backend.png (gnuplot), raw/ (every tool's output).

--quick runs the original scenario against sync and async hellod only
and exits 1 when any request failed: a smoke test for CI.

Python 3 standard library only.  Exit status: 0 success, 1 a run failed
(--quick: any failed request), 2 usage error or a required tool missing.
"""

import argparse
import csv
import os
import re
import resource
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "integration"))
from hellodtest import free_port  # noqa: E402  (never the same port twice)

ARTICLE = {"sync": (529.0, 130), "async": (705.0, 44)}  # req/s, failed
CONCURRENCIES = (1, 10, 100, 1000)
ALL_SCENARIOS = ("original", "sustained", "keepalive", "stuck", "slow",
                 "padding", "idle", "proxy", "models")
# The models scenario: the three worker models beside nginx, interleaved.
MODEL_SERVERS = ("sync", "async-1", "uring-1", "nginx-1")
MODEL_LOADS = ("keep-alive", "pipelined", "new connection")
HELLOD_SERVERS = ("sync", "async-1", "uring-1", "async-auto")
NGINX_SERVERS = ("nginx-1", "nginx-auto")
STATIC_SERVERS = ("h2o", "lighttpd")  # serve a file holding the greeting
PEER_SERVERS = ("py-blocking", "py-asyncio")
ALL_SERVERS = HELLOD_SERVERS + NGINX_SERVERS + STATIC_SERVERS + PEER_SERVERS
OPTIONAL_SERVERS = {  # binary: the servers it runs
    "nginx": NGINX_SERVERS, "h2o": ("h2o",), "lighttpd": ("lighttpd",)}
HERE = os.path.dirname(os.path.abspath(__file__))
PEER_SCRIPTS = {"py-blocking": os.path.join(HERE, "article_blocking.py"),
                "py-asyncio": os.path.join(HERE, "article_asyncio.py")}
GREETING = "<html><body><h1>Hello %s</h1></body></html>"
AB_SOCK_TIMEOUT = 10  # ab -s: seconds without any progress before it gives up


def model_loads(name):
    """The models loads for one server.  The blocking worker, with
    keep-alive off as configured by default, closes each connection after
    one answer; the requests pipelined behind it fail by design (a client
    resends them), so it has no pipelined figure."""
    return tuple(k for k in MODEL_LOADS
                 if not (name == "sync" and k == "pipelined"))


TOOLS = {  # command: Debian package
    "ab": "apache2-utils",
    "h2load": "nghttp2-client",
    "wrk": "wrk",
    "gnuplot": "gnuplot-nox",
    "nginx": "nginx-light",
    "h2o": "h2o",
    "lighttpd": "lighttpd",
    "taskset": "util-linux",
    "haproxy": "haproxy",
}
# The two HAProxy frontends of the proxy scenario: (name, path shown,
# server options towards hellod).
PROXY_LEGS = (("plain", "HAProxy -> listen", ""),
              ("proxy-v2", "HAProxy send-proxy-v2 -> proxy_listen",
               "send-proxy-v2"))
PROXY_SOURCE = "127.0.0.5"  # the client address the v2 header must carry

CLK_TCK = os.sysconf("SC_CLK_TCK")
NCPU = os.sysconf("SC_NPROCESSORS_ONLN")


class BenchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- helpers

def wait_for(cond, timeout, what, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise BenchError("timed out after %.0fs waiting for %s"
                             % (timeout, what))
        time.sleep(interval)


def http_get(host, port, path="/", timeout=2.0, source=None):
    """One HTTP/1.0 GET, from the address source when given; returns
    (status, body) or None on error."""
    try:
        with socket.create_connection(
                (host, port), timeout=timeout,
                source_address=(source, 0) if source else None) as s:
            s.sendall(("GET %s HTTP/1.0\r\nHost: %s\r\n\r\n"
                       % (path, host)).encode())
            data = b""
            while len(data) < 1 << 20:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    if not m:
        return None
    return int(m.group(1)), data.split(b"\r\n\r\n", 1)[-1]


def duration_ms(text):
    """'10ms', '2s', '1m' (hellod's duration syntax) in milliseconds."""
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not m:
        raise BenchError("bad duration %r" % text)
    return float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000,
                                None: 1000}[m.group(2)]


def size_bytes(text):
    """'16k', '1m', '100' (hellod's size syntax) in bytes."""
    m = re.fullmatch(r"(\d+)([km]?)", text.strip().lower())
    if not m:
        raise BenchError("bad size %r" % text)
    return int(m.group(1)) << {"": 0, "k": 10, "m": 20}[m.group(2)]


def with_query(path, query):
    """path with query appended to whatever query it already has."""
    if not query:
        return path
    return path + ("&" if "?" in path else "?") + query


def article_model(server):
    """Which of the article's two servers a server is compared with."""
    return "sync" if server in ("sync", "py-blocking") else "async"


def raise_nofile(want):
    """Raises our own RLIMIT_NOFILE towards want; returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= want:
        return soft
    new_hard = hard
    if hard != resource.RLIM_INFINITY and hard < want:
        new_hard = want  # only works as root (CAP_SYS_RESOURCE)
    for h in (new_hard, hard):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE,
                               (want if h == resource.RLIM_INFINITY
                                else min(want, h), h))
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def nofile_preexec(n):
    def fn():
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
        except (ValueError, OSError):
            pass
        os.setpgrp()  # a terminal ^C reaches the script, not the server
    return fn


# ------------------------------------------------------------ /proc reading

def proc_stat(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return None
    return s[s.rfind(")") + 2:].split()  # fields from 3 (state) on


def proc_children(pid):
    out = []
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return out
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/children" % (pid, t)) as f:
                out.extend(int(x) for x in f.read().split())
        except OSError:
            pass
    return out


def proc_tree(pid):
    pids, todo = [], [pid]
    while todo and len(pids) < 10000:
        p = todo.pop()
        pids.append(p)
        todo.extend(proc_children(p))
    return pids


def task_run_ns(pid):
    """Time on a CPU of every thread of pid (the scheduler's own count,
    /proc/PID/task/TID/schedstat, in nanoseconds), or None."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    total = 0
    for t in tids:
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, t)) as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None
    return total


def tree_cpu_time(pid):
    """CPU seconds of pid and all its descendants: the scheduler's run
    time of each thread where /proc shows it (nanoseconds), else utime +
    stime (ticks); plus the master's cutime + cstime (children it already
    reaped)."""
    total = 0.0
    for p in proc_tree(pid):
        st = proc_stat(p)
        if st is None:
            continue
        ns = task_run_ns(p)
        total += (ns / 1e9 if ns is not None
                  else (int(st[11]) + int(st[12])) / CLK_TCK)
        if p == pid:
            total += (int(st[13]) + int(st[14])) / CLK_TCK
    return total


def listen_inodes(port):
    """Inodes of the LISTEN sockets on a TCP port (IPv4 and IPv6)."""
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if (len(p) > 9 and p[3] == "0A" and
                            int(p[1].rsplit(":", 1)[1], 16) == port):
                        out.add(p[9])
        except (OSError, StopIteration, ValueError):
            pass
    return out


def tree_socket_inodes(pid):
    out = set()
    for p in proc_tree(pid):
        d = "/proc/%d/fd" % p
        try:
            fds = os.listdir(d)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(os.path.join(d, fd))
            except OSError:
                continue
            if link.startswith("socket:["):
                out.add(link[8:-1])
    return out


def vm_rss_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# ------------------------------------------------------------------ servers

class Server:
    """A server under test: one we started (kind hellod, nginx, h2o,
    lighttpd, peer or haproxy), or --url."""

    def __init__(self, name, kind, host="127.0.0.1", port=None, path="/",
                 workers=1, pid=None):
        self.name, self.kind = name, kind
        self.host, self.port, self.path = host, port, path
        self.query = ""          # per-request knobs (--url)
        self.workers = workers
        self.proc = None
        self.pid = pid           # master pid when known
        self.tmp = None
        self.log_path = None
        self.note = ""
        self.proxy_port = None   # hellod's proxy_listen port, when it has one

    @property
    def url(self):
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d%s" % (host, self.port,
                                   with_query(self.path, self.query))

    def cpu_time(self):
        return tree_cpu_time(self.pid) if self.pid else None

    def worker_pids(self):
        """The processes that hold the connections: the master's
        children, or the process itself for the single-process servers
        (h2o's only child is its crash-report helper)."""
        if not self.pid:
            return []
        if self.kind in ("hellod", "nginx"):
            return proc_children(self.pid)
        if self.kind == "url":
            return proc_children(self.pid) or [self.pid]
        return [self.pid]

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except (OSError, TypeError):
            return ""

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                # HAProxy: SIGUSR1 is its graceful stop (exit 0); SIGTERM
                # would be its immediate one (killed by the signal).
                self.proc.send_signal(signal.SIGUSR1 if self.kind == "haproxy"
                                      else signal.SIGTERM)
                rc = self.proc.wait(15)
                # lighttpd exits 1 when stopped with a connection open.
                if rc != 0 and not (self.kind == "lighttpd" and rc == 1):
                    log("warning: %s exited with status %d%s" % (
                        self.name, rc, "".join(
                            "\n  " + l for l in
                            self.log_text().splitlines()[-3:])))
            except subprocess.TimeoutExpired:
                log("warning: %s did not stop in 15s, killing" % self.name)
                self.proc.kill()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
        self.proc = None
        if self.tmp is not None:
            self.tmp.cleanup()
            self.tmp = None


class Lab:
    """Starts servers; remembers them so that every one is stopped."""

    def __init__(self, args, tools):
        self.args = args
        self.tools = tools
        self.running = []
        self.server_cpus = self.client_cpus = None
        if not args.no_pin and NCPU >= 2:
            if tools.get("taskset"):
                half = NCPU // 2
                self.server_cpus = "0" if half == 1 else "0-%d" % (half - 1)
                self.client_cpus = ("%d" % half if NCPU - half == 1
                                    else "%d-%d" % (half, NCPU - 1))
            else:
                log("note: taskset not found (Debian package util-linux): "
                    "server and load generator are not pinned")

    def pin(self, cmd, cpus):
        return ["taskset", "-c", cpus] + cmd if cpus else cmd

    def client_cmd(self, cmd):
        return self.pin(cmd, self.client_cpus)

    def start(self, name, http=None, nofile=None, max_connections=None,
              proxy=False):
        """Starts server name; http holds hellod's [http] settings for the
        scenario, passed on to the others where they have an equivalent.
        proxy: hellod gets a proxy_listen address too (srv.proxy_port)."""
        http = http or {}
        if self.args.url:
            return self.url_server(name, http)
        for attempt in range(3):
            if name.startswith("nginx"):
                srv = self.start_nginx(name, nofile)
            elif name == "h2o":
                srv = self.start_h2o(http, nofile, max_connections)
            elif name == "lighttpd":
                srv = self.start_lighttpd(http, nofile, max_connections)
            elif name in PEER_SERVERS:
                srv = self.start_peer(name, http)
            else:
                srv = self.start_hellod(name, http, nofile, max_connections,
                                        proxy)
            # SO_REUSEPORT lets another process (another test on a shared
            # machine) bind the same port in the window after free_port():
            # the kernel would then split our load between both.
            if not self.foreign_listeners(srv, srv.port, srv.proxy_port):
                return srv
            log("note: port %d is also listened on by another process; "
                "restarting %s on another port" % (srv.port, name))
            self.stop(srv)
        raise BenchError("could not get a port of our own for %s" % name)

    @staticmethod
    def foreign_listeners(srv, *ports):
        """Listening sockets on ports that srv's processes do not hold."""
        mine = tree_socket_inodes(srv.pid)
        return set().union(*(listen_inodes(p) - mine for p in ports if p))

    def url_server(self, name, http=None):
        u = urllib.parse.urlsplit(self.args.url)
        if u.scheme != "http" or not u.hostname:
            raise BenchError("--url: only http://HOST[:PORT]/PATH is "
                             "supported")
        srv = Server(name, "url", u.hostname, u.port or 80,
                     with_query(u.path or "/", u.query),
                     workers="?", pid=self.args.pid)
        # The scenario's server-side settings, as per-request knobs.
        knobs = []
        if http and "delay" in http:
            knobs.append("delay=" + http["delay"])
        if http and "body_padding" in http:
            knobs.append("pad=" + http["body_padding"])
        srv.query = "&".join(knobs)
        if srv.pid:
            srv.workers = len(srv.worker_pids()) or 1
        if http_get(srv.host, srv.port, srv.path, 5.0) is None:
            raise BenchError("%s does not answer" % self.args.url)
        return srv

    def query_knobs(self):
        """True when the --url instance takes ?delay= and ?pad= per
        request: it answers a bad knob value differently (400) from a
        good one."""
        srv = self.url_server("url")
        good = http_get(srv.host, srv.port, with_query(srv.path,
                                                       "delay=10ms"), 5.0)
        bad = http_get(srv.host, srv.port, with_query(srv.path,
                                                      "delay=zz"), 5.0)
        log("--url: GET ?delay=10ms answered %s, GET ?delay=zz answered %s"
            % (good and good[0], bad and bad[0]))
        return bool(good and bad and good[0] != bad[0])

    def auto_workers(self):
        return NCPU

    def start_hellod(self, name, http, nofile, max_connections, proxy=False):
        mode = ("sync" if name == "sync" else
                "uring" if name.startswith("uring") else "async")
        workers = "1" if name != "async-auto" else "auto"
        srv = Server(name, "hellod", port=free_port())
        if proxy:
            srv.proxy_port = free_port()
        srv.tmp = tempfile.TemporaryDirectory(prefix="hellod-bench-")
        conf = os.path.join(srv.tmp.name, "hellod.conf")
        srv.log_path = os.path.join(srv.tmp.name, "hellod.log")
        lines = ["[server]", "listen = 127.0.0.1:%d" % srv.port,
                 "mode = %s" % mode, "workers = %s" % workers,
                 "shutdown_timeout = 5s"]
        if os.geteuid() == 0:
            lines.append("user = root")
        if proxy:
            # Believed from the balancer's address only, as in production.
            lines += ["proxy_listen = 127.0.0.1:%d" % srv.proxy_port,
                      "[proxy]", "trusted = 127.0.0.1/32"]
        if name == "async-1-status":
            lines += ["[status]", "listen = 127.0.0.1:%d" % free_port()]
        lines.append("[http]")
        if max_connections:
            lines.append("max_connections = %d" % max_connections)
        for k, v in http.items():
            lines.append("%s = %s" % (k, v))
        lines += ["[log]", "level = info"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        cmd = self.pin([self.args.hellod, "--foreground", "-c", conf],
                       self.server_cpus)
        self.running.append(srv)
        with open(srv.log_path, "w") as logf:
            srv.proc = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=logf, preexec_fn=nofile_preexec(nofile or 4096))
        srv.pid = srv.proc.pid  # taskset execs hellod: same pid

        def ready():
            if srv.proc.poll() is not None:
                raise BenchError("%s exited with status %s:\n%s" % (
                    name, srv.proc.returncode, srv.log_text()[-2000:]))
            text = srv.log_text()
            m = re.search(r"started: (\d+) workers?", text)
            if not m:
                return False
            n = int(m.group(1))
            return n if len(re.findall(r"worker \d+ serving", text)) >= n \
                else False
        srv.workers = wait_for(ready, 15, "%s to start" % name)
        got = wait_for(lambda: http_get(srv.host, srv.port), 10,
                       "%s to answer" % name)
        if got[0] != 200:
            raise BenchError("%s answered status %d" % (name, got[0]))
        return srv

    def start_nginx(self, name, nofile):
        workers = 1 if name == "nginx-1" else self.auto_workers()
        srv = Server(name, "nginx", port=free_port(), workers=workers)
        srv.tmp = tempfile.TemporaryDirectory(prefix="hellod-bench-nginx-")
        d = srv.tmp.name
        srv.log_path = os.path.join(d, "error.log")
        conf = os.path.join(d, "nginx.conf")
        temp = "".join("  %s_temp_path %s;\n" % (k, os.path.join(d, k))
                       for k in ("client_body", "proxy", "fastcgi", "uwsgi",
                                 "scgi"))
        text = (
            "daemon off;\nmaster_process on;\nworker_processes %d;\n"
            "pid %s;\nerror_log %s;\n"
            "events { worker_connections 10240; }\n"
            "http {\n  access_log off;\n%s"
            "  server { listen 127.0.0.1:%d reuseport; location / {"
            " default_type text/html; return 200 \"%s\"; } }\n"
            "}\n" % (workers, os.path.join(d, "nginx.pid"), srv.log_path,
                     temp, srv.port, GREETING % "$remote_addr"))
        with open(conf, "w") as f:
            f.write(text)
        cmd = self.pin([self.tools["nginx"], "-c", conf, "-p", d + "/", "-e",
                        srv.log_path], self.server_cpus)
        self.running.append(srv)
        srv.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=nofile_preexec(nofile or 16384))
        srv.pid = srv.proc.pid

        def ready():
            if srv.proc.poll() is not None:
                raise BenchError("%s exited with status %s:\n%s" % (
                    name, srv.proc.returncode, srv.log_text()[-2000:]))
            return (len(srv.worker_pids()) >= workers
                    and http_get(srv.host, srv.port))
        wait_for(ready, 15, "%s to answer" % name)
        return srv

    def spawn(self, srv, cmd, nofile, stderr=subprocess.DEVNULL):
        """Starts cmd on the server CPUs and waits until it answers a GET
        with a 200."""
        self.running.append(srv)
        srv.proc = subprocess.Popen(
            self.pin(cmd, self.server_cpus), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=stderr,
            preexec_fn=nofile_preexec(nofile))
        srv.pid = srv.proc.pid  # taskset execs the server: same pid

        def ready():
            if srv.proc.poll() is not None:
                raise BenchError("%s exited with status %s:\n%s" % (
                    srv.name, srv.proc.returncode, srv.log_text()[-2000:]))
            return http_get(srv.host, srv.port, srv.path)
        got = wait_for(ready, 15, "%s to answer" % srv.name)
        if got[0] != 200:
            raise BenchError("%s answered status %d" % (srv.name, got[0]))
        return srv

    def static_root(self, srv):
        """A document root holding index.html: the greeting for
        127.0.0.1, the address every request here comes from."""
        root = os.path.join(srv.tmp.name, "htdocs")
        os.mkdir(root)
        with open(os.path.join(root, "index.html"), "w") as f:
            f.write(GREETING % "127.0.0.1")
        srv.path = "/index.html"  # no index lookup on the hot path
        return root

    def start_h2o(self, http, nofile, max_connections):
        srv = Server("h2o", "h2o", port=free_port(), workers=1)
        srv.tmp = tempfile.TemporaryDirectory(prefix="hellod-bench-h2o-")
        d = srv.tmp.name
        root = self.static_root(srv)
        srv.log_path = os.path.join(d, "error.log")
        idle = duration_ms(http.get("keepalive_timeout", "10s")) / 1000
        lines = ["num-threads: 1",
                 "max-connections: %d" % (max_connections or 10240),
                 # h2o's limit on an idle keep-alive connection too
                 "http1-request-timeout: %d" % max(1, idle),
                 "pid-file: %s" % os.path.join(d, "h2o.pid"),
                 "error-log: %s" % srv.log_path,
                 "listen:", "  host: 127.0.0.1", "  port: %d" % srv.port,
                 "hosts:", "  default:", "    paths:", "      /:",
                 "        file.dir: %s" % root]
        if os.geteuid() == 0:
            lines.insert(0, "user: root")  # h2o refuses root without it
        conf = os.path.join(d, "h2o.conf")
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        return self.spawn(srv, [self.tools["h2o"], "-c", conf],
                          nofile or 16384)

    def start_lighttpd(self, http, nofile, max_connections):
        srv = Server("lighttpd", "lighttpd", port=free_port(), workers=1)
        srv.tmp = tempfile.TemporaryDirectory(
            prefix="hellod-bench-lighttpd-")
        d = srv.tmp.name
        root = self.static_root(srv)
        srv.log_path = os.path.join(d, "error.log")
        fds = nofile or 16384
        idle = duration_ms(http.get("keepalive_timeout", "5s")) / 1000
        text = "\n".join([
            'server.document-root = "%s"' % root,
            'server.bind = "127.0.0.1"',
            "server.port = %d" % srv.port,
            'server.pid-file = "%s"' % os.path.join(d, "lighttpd.pid"),
            'server.errorlog = "%s"' % srv.log_path,
            "server.max-worker = 0",
            "server.max-fds = %d" % fds,
            # lighttpd allows at most one connection per two descriptors
            "server.max-connections = %d" % min(max_connections or 10240,
                                                fds // 2),
            "server.max-keep-alive-idle = %d" % max(1, idle),
            'mimetype.assign = (".html" => "text/html")', ""])
        conf = os.path.join(d, "lighttpd.conf")
        with open(conf, "w") as f:
            f.write(text)
        return self.spawn(srv, [self.tools["lighttpd"], "-D", "-f", conf],
                          fds)

    def start_peer(self, name, http):
        """One of the article's Python servers; the scenario's delay and
        padding go on its command line."""
        srv = Server(name, "peer", port=free_port(), workers=1)
        srv.tmp = tempfile.TemporaryDirectory(prefix="hellod-bench-peer-")
        srv.log_path = os.path.join(srv.tmp.name, "stderr.log")
        cmd = [sys.executable, PEER_SCRIPTS[name],
               "--listen", "127.0.0.1:%d" % srv.port]
        if "delay" in http:
            cmd += ["--delay", "%g" % duration_ms(http["delay"])]
        if "body_padding" in http:
            cmd += ["--pad", str(size_bytes(http["body_padding"]))]
        with open(srv.log_path, "w") as logf:
            return self.spawn(srv, cmd, 4096, stderr=logf)

    def start_haproxy(self, routes):
        """HAProxy in mode tcp on the server CPUs: one frontend on a free
        127.0.0.1 port per route (name, backend port, server options);
        returns the Server (kind haproxy) with .frontends {name: port}.
        No logging and no health checks: nothing but the relaying is
        measured."""
        for attempt in range(3):
            srv = Server("haproxy", "haproxy", workers=1)
            srv.tmp = tempfile.TemporaryDirectory(
                prefix="hellod-bench-haproxy-")
            srv.log_path = os.path.join(srv.tmp.name, "haproxy.log")
            srv.frontends = {name: free_port() for name, _, _ in routes}
            srv.port = srv.frontends[routes[0][0]]
            lines = ["global", "    maxconn 4096", "",
                     "defaults", "    mode tcp", "    timeout connect 5s",
                     "    timeout client 30s", "    timeout server 30s", ""]
            for name, bport, options in routes:
                lines += ["frontend fe-%s" % name,
                          "    bind 127.0.0.1:%d" % srv.frontends[name],
                          "    default_backend be-%s" % name, "",
                          "backend be-%s" % name,
                          ("    server hellod 127.0.0.1:%d %s"
                           % (bport, options)).rstrip(), ""]
            conf = os.path.join(srv.tmp.name, "haproxy.cfg")
            with open(conf, "w") as f:
                f.write("\n".join(lines))
            self.running.append(srv)
            with open(srv.log_path, "w") as logf:
                srv.proc = subprocess.Popen(
                    self.pin([self.tools["haproxy"], "-f", conf, "-db"],
                             self.server_cpus),
                    stdin=subprocess.DEVNULL, stdout=logf,
                    stderr=subprocess.STDOUT,
                    preexec_fn=nofile_preexec(16384))
            srv.pid = srv.proc.pid  # taskset execs haproxy: same pid

            def ready():
                if srv.proc.poll() is not None:
                    raise BenchError("haproxy exited with status %s:\n%s" % (
                        srv.proc.returncode, srv.log_text()[-2000:]))
                return all(listen_inodes(p) & tree_socket_inodes(srv.pid)
                           for p in srv.frontends.values())
            wait_for(ready, 15, "haproxy to listen")
            if not self.foreign_listeners(srv, *srv.frontends.values()):
                return srv
            log("note: a port of haproxy is also listened on by another "
                "process; restarting it on other ports")
            self.stop(srv)
        raise BenchError("could not get ports of our own for haproxy")

    def stop(self, srv):
        try:
            srv.stop()
        finally:
            if srv in self.running:
                self.running.remove(srv)

    def stop_all(self):
        for srv in list(self.running):
            self.stop(srv)


# ------------------------------------------------------------ load runners

def num(pattern, text, cast=float, default=None):
    m = re.search(pattern, text, re.M)
    return cast(m.group(1)) if m else default


def new_result(server, scenario, concurrency, tool, requests):
    return {
        "server": server.name, "workers": server.workers,
        "scenario": scenario, "concurrency": concurrency, "tool": tool,
        "requests": requests, "complete": None, "failed": None,
        "failed_detail": "", "non2xx": 0, "rps": None, "p50_ms": None,
        "p99_ms": None, "max_ms": None, "time_s": None, "tpr_ms": None,
        "tpr_all_ms": None,
        "transfer_kbps": None, "cpu_us_per_req": None,
        "client_cpu_pct": None, "server_cpu_pct": None,
        "rss_before_kb": None, "rss_after_kb": None,
        "bytes_per_conn": None, "errors": None, "aborted": False,
        "lb_cpu_us_per_req": None, "rounds": None, "note": "",
        "syscalls_per_req": None,
    }


class Runner:
    def __init__(self, args, lab, raw_dir):
        self.args, self.lab, self.raw_dir = args, lab, raw_dir

    def run_tool(self, cmd, timeout, raw_name):
        """Runs a load generator pinned to the client CPUs; returns
        (exit status or None on timeout, output, wall seconds, client CPU
        seconds)."""
        cmd = self.lab.client_cmd(cmd)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            p = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
            rc, out = p.returncode, p.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            rc = None
            out = (e.stdout or b"").decode(errors="replace")
            out += "\n*** killed after %.0fs (timeout)\n" % timeout
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ccpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        with open(os.path.join(self.raw_dir, raw_name + ".txt"), "w") as f:
            f.write("$ %s\n%s" % (" ".join(cmd), out))
        return rc, out, wall, ccpu

    def syscalls_start(self, srv):
        """perf stat counting the system calls of the server's workers
        (the processes that hold the connections), or None."""
        pids = srv.worker_pids()
        if not self.lab.tools.get("perf_syscalls") or not pids:
            return None
        return subprocess.Popen(
            ["perf", "stat", "-x,", "-e", "raw_syscalls:sys_enter", "-p",
             ",".join(str(p) for p in pids)], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    @staticmethod
    def syscalls_stop(perf):
        """The count perf stat printed when interrupted, or None."""
        if perf is None:
            return None
        perf.send_signal(signal.SIGINT)
        try:
            err = perf.communicate(timeout=10)[1].decode(errors="replace")
        except subprocess.TimeoutExpired:
            perf.kill()
            perf.communicate()
            return None
        m = re.search(r"^(\d+),[^,]*,raw_syscalls:sys_enter", err, re.M)
        return int(m.group(1)) if m else None

    def measured(self, srv, res, fn):
        """Samples the server's CPU around fn() (which runs the tool and
        fills res), then derives CPU per request; with perf, the system
        calls of its workers too."""
        perf = self.syscalls_start(srv)
        c0 = srv.cpu_time()
        rc, out, wall, ccpu = fn()
        c1 = srv.cpu_time()
        calls = self.syscalls_stop(perf)
        if calls is not None and res["complete"]:
            res["syscalls_per_req"] = calls / res["complete"]
        if rc is None:
            res["note"] = (res["note"] + " TIMEOUT").strip()
        elif rc != 0 and res["complete"] is None:
            res["note"] = (res["note"] + " tool exit %d" % rc).strip()
        if c0 is not None and c1 is not None and res["complete"]:
            res["cpu_us_per_req"] = ((c1 - c0) * 1e6
                                     / res["complete"])
        if wall > 0:
            res["client_cpu_pct"] = 100.0 * ccpu / wall
            if c0 is not None and c1 is not None:
                res["server_cpu_pct"] = 100.0 * (c1 - c0) / wall
        return res

    # ab -------------------------------------------------------------
    def ab(self, srv, scenario, n, c, keepalive=False, timelimit=None,
           sock_timeout=None, raw=None):
        """ab against srv, bounded by n requests and by time: timelimit
        when the scenario runs for a fixed time, else a budget (-t) that
        only a stalled or very slow server reaches; sock_timeout (-s) is
        how long ab waits without any progress before it gives up."""
        res = new_result(srv, scenario, c, "ab", n)
        csvf = os.path.join(self.raw_dir, (raw or "ab") + ".percentiles.csv")
        budget = timelimit
        if not budget:
            budget = max(10, min(self.args.run_timeout - 30, 60 + n / 50.0))
            if srv.kind == "peer":
                budget = min(budget, self.args.peer_limit)
        sock_timeout = sock_timeout or AB_SOCK_TIMEOUT
        cmd = ["ab", "-r", "-l"]
        if keepalive:
            cmd.append("-k")
        # -t before -n: -n still counts, whichever ends first stops ab
        cmd += ["-t", "%g" % budget, "-s", "%d" % sock_timeout,
                "-n", str(n), "-c", str(c), "-e", csvf, srv.url]
        timeout = budget + sock_timeout + 30

        def go():
            rc, out, wall, ccpu = self.run_tool(cmd, timeout, raw or "ab")
            self.parse_ab(out, csvf, res)
            if res["aborted"]:
                # What it did complete, over the time it took to give up.
                res["time_s"] = wall
                res["rps"] = res["complete"] / wall if wall > 0 else 0.0
            elif (not timelimit and res["complete"] is not None and
                  res["complete"] < n):
                res["note"] = ("stopped by the %gs limit: %d of %d done"
                               % (budget, res["complete"], n))
            return rc, out, wall, ccpu
        return self.measured(srv, res, go)

    @staticmethod
    def parse_ab(out, csvf, res):
        res["complete"] = num(r"^Complete requests:\s+(\d+)", out, int)
        if res["complete"] is None:
            # ab gave up (timeout, too many errors): keep what it says.
            res["complete"] = num(r"Total of (\d+) requests completed", out,
                                  int, 0)
            res["failed"] = max(0, res["requests"] - res["complete"])
            res["failed_detail"] = ("%d not completed: ab aborted"
                                    % res["failed"])
            res["aborted"] = True
            res["note"] = "ab aborted: " + " ".join(
                l.strip() for l in out.splitlines()
                if l.startswith(("apr_", "ab:", "socket", "Total of")))[:120]
            return
        res["failed"] = num(r"^Failed requests:\s+(\d+)", out, int, 0)
        m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), "
                      r"Exceptions: (\d+)\)", out)
        res["failed_detail"] = ("Connect: %s, Receive: %s, Length: %s, "
                                "Exceptions: %s" % (m.groups() if m else
                                                    (0, 0, 0, 0)))
        res["non2xx"] = num(r"^Non-2xx responses:\s+(\d+)", out, int, 0)
        res["rps"] = num(r"^Requests per second:\s+([\d.]+)", out)
        res["time_s"] = num(r"^Time taken for tests:\s+([\d.]+)", out)
        res["tpr_ms"] = num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$",
                            out)
        res["tpr_all_ms"] = num(r"^Time per request:\s+([\d.]+) \[ms\] "
                                r"\(mean, across", out)
        res["transfer_kbps"] = num(r"^Transfer rate:\s+([\d.]+)", out)
        try:
            pct = {}
            with open(csvf) as f:
                for line in f:
                    a, _, b = line.strip().partition(",")
                    if a.isdigit():
                        pct[int(a)] = float(b)
            res["p50_ms"], res["p99_ms"] = pct.get(50), pct.get(99)
            res["max_ms"] = pct.get(100)
        except (OSError, ValueError):
            pass
        if res["p50_ms"] is None:
            res["p50_ms"] = num(r"^\s+50%\s+(\d+)", out)
            res["p99_ms"] = num(r"^\s+99%\s+(\d+)", out)
            res["max_ms"] = num(r"^\s+100%\s+(\d+)", out)

    # h2load / wrk ------------------------------------------------------
    def h2load(self, srv, scenario, n, c, raw, depth=1):
        """h2load --h1 with c connections, each with `depth` requests
        in flight (pipelined when more than 1)."""
        res = new_result(srv, scenario, c, "h2load", n)
        logf = os.path.join(self.raw_dir, raw + ".log")
        cmd = ["h2load", "--h1", "-t1", "-c", str(c), "-n", str(n),
               "-m", str(depth), "--log-file=" + logf, srv.url]
        timeout = min(self.args.run_timeout, 60 + n / 100.0)

        def go():
            rc, out, wall, ccpu = self.run_tool(cmd, timeout, raw)
            self.parse_h2load(out, logf, res)
            return rc, out, wall, ccpu
        self.measured(srv, res, go)
        try:
            os.unlink(logf)  # up to a few MB; the summary is in raw/
        except OSError:
            pass
        return res

    @staticmethod
    def parse_h2load(out, logf, res):
        m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                      r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                      r"(\d+) timeout", out)
        if m:
            total, started, done, ok, failed, errored, tmo = map(
                int, m.groups())
            res["complete"] = done
            res["failed"] = total - ok
            res["failed_detail"] = ("failed %d, errored %d, timeout %d, "
                                    "not started %d"
                                    % (failed, errored, tmo, total - started))
        res["non2xx"] = sum(int(x) for x in re.findall(
            r"(\d+) [345]xx", out)) if "status codes" in out else 0
        m = re.search(r"finished in ([\d.]+)(ms|s), ([\d.]+) req/s", out)
        if m:
            res["time_s"] = float(m.group(1)) / (1000 if m.group(2) == "ms"
                                                 else 1)
            res["rps"] = float(m.group(3))
        lat = []
        try:
            with open(logf) as f:
                for line in f:
                    p = line.split("\t")
                    if len(p) >= 3 and p[1] != "-1":
                        lat.append(int(p[2]))
        except (OSError, ValueError):
            pass
        if lat:
            lat.sort()
            res["p50_ms"] = lat[int(0.50 * (len(lat) - 1))] / 1000.0
            res["p99_ms"] = lat[int(0.99 * (len(lat) - 1))] / 1000.0
            res["max_ms"] = lat[-1] / 1000.0

    def wrk(self, srv, scenario, duration, c, raw):
        res = new_result(srv, scenario, c, "wrk", None)
        cmd = ["wrk", "-t1", "-c", str(c), "-d", "%ds" % duration,
               "--timeout", "5s", "--latency", srv.url]

        def go():
            rc, out, wall, ccpu = self.run_tool(cmd, duration + 60, raw)
            self.parse_wrk(out, res)
            return rc, out, wall, ccpu
        return self.measured(srv, res, go)

    @staticmethod
    def parse_wrk(out, res):
        def ms(v, unit):
            return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0,
                               "m": 60000.0}[unit]
        m = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)", out)
        if m:
            res["complete"] = int(m.group(1))
            res["requests"] = res["complete"]
            res["time_s"] = ms(m.group(2), m.group(3)) / 1000.0
        res["rps"] = num(r"Requests/sec:\s+([\d.]+)", out)
        m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+),"
                      r" timeout (\d+)", out)
        errs = tuple(int(x) for x in m.groups()) if m else (0, 0, 0, 0)
        res["non2xx"] = num(r"Non-2xx or 3xx responses: (\d+)", out, int, 0)
        res["failed"] = sum(errs)
        res["failed_detail"] = ("connect %d, read %d, write %d, timeout %d"
                                % errs)
        m = re.search(r"^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s|m)",
                      out, re.M)
        if m:
            res["max_ms"] = ms(m.group(1), m.group(2))
        for p, key in (("50", "p50_ms"), ("99", "p99_ms")):
            m = re.search(r"^\s+%s(?:\.0+)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % p,
                          out, re.M)
            if m:
                res[key] = ms(m.group(1), m.group(2))


# --------------------------------------------------------------- scenarios

class Bench:
    def __init__(self, args, tools, out_dir):
        self.args, self.tools, self.out = args, tools, out_dir
        self.raw = os.path.join(out_dir, "raw")
        os.makedirs(self.raw, exist_ok=True)
        self.lab = Lab(args, tools)
        self.run = Runner(args, self.lab, self.raw)
        self.results = []
        self.report = []  # text blocks for results.txt
        self.knobs = None  # --url: does the instance take ?delay= ?pad=
        self.skipped = []  # (scenario, reason), printed with the tables
        self.proxy_runs = []  # every round of the proxy scenario
        self.proxy_info = {}  # what the proxy scenario's table says

    def emit(self, text=""):
        print(text, flush=True)
        self.report.append(text)

    def scaled(self, n, minimum):
        return max(minimum, int(round(n * self.args.scale)))

    def servers_for(self, scenario):
        if self.args.url:
            return ["url"]
        if self.args.quick:
            names = list(HELLOD_SERVERS)
        elif scenario in ("slow", "padding"):
            # nginx, h2o and lighttpd have no delay or padding setting
            names = list(HELLOD_SERVERS + PEER_SERVERS)
        elif scenario == "idle":
            # the Python peers close every connection
            names = ["async-1", "nginx-1", "h2o", "lighttpd"]
        elif scenario == "keepalive":
            # async-1 once more with its status listener on: the cost of
            # counting, side by side
            names = list(ALL_SERVERS)
            names.insert(names.index("async-1") + 1, "async-1-status")
        else:
            names = list(ALL_SERVERS)
        for binary, servers in OPTIONAL_SERVERS.items():
            if not self.tools.get(binary):
                names = [n for n in names if n not in servers]
        if self.args.no_nginx:
            names = [n for n in names if n not in NGINX_SERVERS]
        if self.args.servers:
            names = [n for n in names if n in self.args.servers or
                     (n == "async-1-status" and "async-1" in self.args.servers)]
        return names

    def with_server(self, name, fn, **kw):
        srv = self.lab.start(name, **kw)
        try:
            return fn(srv)
        finally:
            self.lab.stop(srv)

    def add(self, res):
        if (res["server"] == "sync" and res["rps"] is not None and
                res["scenario"] in SYNC_NO_KEEPALIVE):
            res["note"] = ("sync closes every connection (keepalive_timeout"
                           " 0 by default) " + res["note"]).strip()
        if (res["server"] in PEER_SERVERS and res["rps"] is not None and
                res["scenario"] in SYNC_NO_KEEPALIVE):
            res["note"] = ("closes every connection (Connection: close) "
                           + res["note"]).strip()
        self.results.append(res)
        return res

    def progress(self, res):
        log("  %-11s %-12s c=%-5s rps=%s failed=%s p50=%s p99=%s "
            "cpu/req=%sus syscalls/req=%s %s" % (
                res["server"], res["scenario"], res["concurrency"],
                fmt(res["rps"], 0), res["failed"], fmt(res["p50_ms"], 2),
                fmt(res["p99_ms"], 2), fmt(res["cpu_us_per_req"], 1),
                fmt(res["syscalls_per_req"], 2), res["note"]))

    def each_server(self, scenario, fn, **kw):
        """Runs fn(srv) for every server of the scenario; a server that
        does not start is reported and skipped."""
        for name in self.servers_for(scenario):
            try:
                for res in self.with_server(name, fn, **kw) or []:
                    self.progress(self.add(res))
            except BenchError as e:
                log("error: %s: %s: %s" % (scenario, name, e))
                r = new_result(Server(name, "?"), scenario, "-", "-", None)
                r["note"] = "server error: %s" % str(e).splitlines()[0][:100]
                self.add(r)

    # a. original ---------------------------------------------------------
    def original(self):
        log("scenario original: ab -r -n1000 -c150 -l")
        self.each_server("original", lambda s: [self.run.ab(
            s, "original", 1000, 150, raw="original-%s" % s.name)])

    # b. sustained ----------------------------------------------------------
    def sustained(self):
        n = self.scaled(50000, 2000)
        log("scenario sustained: ab -r -l -n%d -c 1,10,100,1000" % n)

        def fn(s):
            return [self.run.ab(s, "sustained", max(n, 2 * c), c,
                                raw="sustained-%s-c%d" % (s.name, c))
                    for c in CONCURRENCIES]
        self.each_server("sustained", fn)

    # c. keep-alive ---------------------------------------------------------
    def keepalive(self):
        if self.tools.get("h2load") and self.args.loadgen != "wrk":
            n = self.scaled(200000, 5000)
            # The Python peers open a connection per request at a few
            # thousand a second: fewer requests keep their runs short.
            n_peer = min(n, self.scaled(20000, 2000))
            log("scenario keepalive: h2load --h1 -c100 -n%d (Python peers "
                "-n%d)" % (n, n_peer))
            self.each_server("keepalive", lambda s: [self.run.h2load(
                s, "keepalive", n_peer if s.kind == "peer" else n, 100,
                raw="keepalive-%s" % s.name)])
        else:
            d = max(2, int(round(10 * self.args.scale)))
            log("scenario keepalive: wrk -c100 -d%ds" % d)
            self.each_server("keepalive", lambda s: [self.run.wrk(
                s, "keepalive", d, 100, raw="keepalive-%s" % s.name)])

    # k. the worker models -------------------------------------------------
    def models(self):
        """sync, async (1 worker), uring (1 worker) and nginx (1 worker)
        side by side: keep-alive (h2load --h1 -c100), the same with four
        requests pipelined on each connection (-m4), and a new
        connection per request (ab -r -l -c100), ROUNDS interleaved
        rounds (the order rotates, so a drift of the machine weighs on
        all alike); the median of each figure over the rounds."""
        names = [n for n in MODEL_SERVERS if n in self.servers_for("models")]
        rounds, n_ka, n_nc = (self.args.model_rounds,
                              self.scaled(100000, 5000),
                              self.scaled(20000, 2000))
        log("scenario models: %s; %d rounds of h2load --h1 -c100 -n%d "
            "(-m1 and -m4) and ab -r -l -c100 -n%d"
            % (", ".join(names), rounds, n_ka, n_nc))
        servers, runs = {}, {}
        try:
            for name in names:
                servers[name] = self.lab.start(name)
            for r in range(rounds):
                order = names[r % len(names):] + names[:r % len(names)]
                for name in order:
                    srv = servers[name]
                    load = {
                        "keep-alive": lambda: self.run.h2load(
                            srv, "models", n_ka, 100,
                            raw="models-ka-%s-r%d" % (name, r + 1)),
                        "pipelined": lambda: self.run.h2load(
                            srv, "models", n_ka, 100,
                            raw="models-pl-%s-r%d" % (name, r + 1),
                            depth=4),
                        "new connection": lambda: self.run.ab(
                            srv, "models", n_nc, 100,
                            raw="models-nc-%s-r%d" % (name, r + 1))}
                    for kind in model_loads(name):
                        res = load[kind]()
                        res["rounds"] = r + 1
                        res["note"] = (kind + " " + res["note"]).strip()
                        self.progress(res)
                        runs.setdefault((name, kind), []).append(res)
        except BenchError as e:
            log("error: models: %s" % e)
        finally:
            for srv in servers.values():
                self.lab.stop(srv)
        self.models_table(names, runs)

    def models_table(self, names, runs):
        def med(rows, key):
            v = sorted(r[key] for r in rows if r[key] is not None)
            return v[(len(v) - 1) // 2] if v else None   # the lower median

        def ratio(a, b):
            return "%.2f" % (a / b) if a is not None and b else "-"
        body, figs = [], {}
        for kind in MODEL_LOADS:
            for name in (n for n in names if kind in model_loads(n)):
                rows = runs.get((name, kind), [])
                f = {k: med(rows, k) for k in (
                    "rps", "cpu_us_per_req", "syscalls_per_req", "p50_ms",
                    "p99_ms", "server_cpu_pct", "client_cpu_pct")}
                f["failed"] = sum(r["failed"] or 0 for r in rows)
                figs[(name, kind)] = f
                body.append([kind, name, len(rows), fmt(f["rps"], 0),
                             f["failed"], fmt(f["cpu_us_per_req"], 2),
                             fmt(f["syscalls_per_req"], 3),
                             fmt(f["p50_ms"], 2), fmt(f["p99_ms"], 2),
                             fmt(f["server_cpu_pct"], 0),
                             fmt(f["client_cpu_pct"], 0)])
                self.add(dict(rows[0], **f, rounds=len(rows),
                              concurrency=100, note=kind) if rows else
                         dict(new_result(Server(name, "?"), "models", 100,
                                         "-", None), note=kind + " no run"))
        self.emit("")
        self.emit("== the worker models side by side (server on %s, load on "
                  "%s; medians of %d interleaved rounds; system calls: "
                  "perf stat -e raw_syscalls:sys_enter on the workers)"
                  % (self.lab.server_cpus or "any",
                     self.lab.client_cpus or "any", self.args.model_rounds))
        self.emit(table(["load", "server", "rounds", "req/s", "failed",
                         "us CPU/req", "syscalls/req", "p50 ms", "p99 ms",
                         "server CPU%", "client CPU%"], body, note=False))
        def round_ratio(kind, x, y):
            """The median over the rounds of x's CPU per request over
            y's in the same round: the machine's drift from round to
            round cancels out."""
            by = {}
            for name in (x, y):
                for r in runs.get((name, kind), []):
                    if r["cpu_us_per_req"]:
                        by.setdefault(r["rounds"], {})[name] = \
                            r["cpu_us_per_req"]
            v = sorted(d[x] / d[y] for d in by.values() if len(d) == 2)
            return "%.2f" % v[(len(v) - 1) // 2] if v else "-"
        self.emit("CPU per request, the median of the ratios within each "
                  "round (and the ratio of the medians):")
        for kind in MODEL_LOADS:
            u, a, n = (figs.get((s, kind), {}).get("cpu_us_per_req")
                       for s in ("uring-1", "async-1", "nginx-1"))
            self.emit("  %s: uring / nginx %s (%s), uring / async %s (%s), "
                      "async / nginx %s (%s)" % (
                          kind, round_ratio(kind, "uring-1", "nginx-1"),
                          ratio(u, n), round_ratio(kind, "uring-1",
                                                   "async-1"), ratio(u, a),
                          round_ratio(kind, "async-1", "nginx-1"),
                          ratio(a, n)))

    # d. one stuck client ---------------------------------------------------
    def stuck(self):
        n = self.scaled(2000, 200)
        nstuck = self.args.stuck_clients
        log("scenario stuck: %d silent connection(s), then ab -n%d -c10 -s5"
            % (nstuck, n))

        def fn(s):
            socks, closed_after = [], {}
            stop = threading.Event()
            t0 = time.monotonic()
            for _ in range(nstuck):
                socks.append(socket.create_connection((s.host, s.port), 5))

            def watch():  # when does the server give up on them?
                for sk in socks:
                    sk.settimeout(0.1)
                pending = list(socks)
                while pending and not stop.is_set():
                    for sk in list(pending):
                        try:
                            if sk.recv(4096) == b"":
                                raise ConnectionResetError
                        except socket.timeout:
                            continue
                        except OSError:
                            closed_after[sk] = time.monotonic() - t0
                            pending.remove(sk)
            th = threading.Thread(target=watch, daemon=True)
            th.start()
            # Give the server a moment to accept the silent connection
            # before the others queue behind it (sync: FIFO listen queue).
            time.sleep(0.2)
            try:
                res = self.run.ab(s, "stuck", n, 10, sock_timeout=5,
                                  raw="stuck-%s" % s.name)
            finally:
                stop.set()
                th.join(5)
                for sk in socks:
                    sk.close()
            if closed_after:
                res["note"] = (res["note"] + " silent conn closed by server "
                               "after %.1fs" % max(closed_after.values())
                               ).strip()
            else:
                res["note"] = (res["note"] +
                               " silent conn still open at end").strip()
            return [res]
        self.each_server("stuck", fn, http={"header_timeout": "2s"})

    def knobs_or_skip(self, scenario):
        """Without --url the servers are configured per scenario; with it
        the scenario needs the instance's per-request knobs."""
        if not self.args.url:
            return True
        if self.knobs is None:
            self.knobs = self.lab.query_knobs()
            self.emit("per-request knobs (?delay=, ?pad=): %s" % (
                "on" if self.knobs else "off: slow and padding skipped"))
        if not self.knobs:
            log("scenario %s skipped: %s has no per-request knobs"
                % (scenario, self.args.url))
        return self.knobs

    # e. slow backend -------------------------------------------------------
    def slow(self):
        if not self.knobs_or_skip("slow"):
            return
        dur = max(3, int(round(10 * self.args.scale)))
        log("scenario slow: delay = 10ms, ab -k -c100 -t%d" % dur)
        self.each_server("slow", lambda s: [self.run.ab(
            s, "slow", 1000000, 100, keepalive=True, timelimit=dur,
            sock_timeout=10, raw="slow-%s" % s.name)],
            http={"delay": "10ms"})

    # f. body padding -------------------------------------------------------
    def padding(self):
        if not self.knobs_or_skip("padding"):
            return
        for pad, n in (("16k", 20000), ("256k", 4000)):
            n = self.scaled(n, 500)
            log("scenario padding-%s: ab -k -c10 -n%d" % (pad, n))
            self.each_server("padding", lambda s: [self.run.ab(
                s, "padding-" + pad, n, 10, keepalive=True,
                raw="padding-%s-%s" % (pad, s.name))],
                http={"body_padding": pad})

    # idle --------------------------------------------------------------------
    def idle(self):
        want = self.args.idle_conns
        have = raise_nofile(want + 1000)
        if have < want + 100:
            log("note: RLIMIT_NOFILE is %d: idle scenario uses %d connections"
                % (have, have - 100))
            want = max(100, have - 100)
        log("scenario idle: %d idle keep-alive connections" % want)

        def fn(s):
            res = new_result(s, "idle", want, "python", want)
            workers = s.worker_pids()  # RSS summed over all workers
            if not workers:
                res["note"] = "no worker process found"
                return [res]

            def rss():
                v = [vm_rss_kb(p) for p in workers]
                return None if None in v else sum(v)
            http_get(s.host, s.port)
            res["rss_before_kb"] = rss()
            socks, errors = [], 0
            req = ("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                   % (s.path, s.host)).encode()
            deadline = time.monotonic() + 180
            t0 = time.monotonic()
            c0 = s.cpu_time()
            for _ in range(want):
                if time.monotonic() > deadline:
                    res["note"] = "deadline reached"
                    break
                try:
                    sk = socket.create_connection((s.host, s.port), 5)
                    socks.append(sk)
                    sk.sendall(req)
                    if not read_response(sk):
                        errors += 1
                except OSError:
                    errors += 1
            res["time_s"] = time.monotonic() - t0
            res["rss_after_kb"] = rss()
            c1 = s.cpu_time()
            # Still open: not readable (a closed connection reads EOF).
            poller = select.poll()
            for sk in socks:
                poller.register(sk, select.POLLIN)
            gone = len(poller.poll(0))
            opened = len(socks) - gone
            for sk in socks:
                sk.close()
            res["complete"] = len(socks) - errors
            res["failed"] = errors
            res["errors"] = errors
            if res["complete"] and c0 is not None and c1 is not None:
                res["cpu_us_per_req"] = ((c1 - c0) * 1e6
                                         / res["complete"])
            if res["rss_before_kb"] and res["rss_after_kb"] and opened:
                res["bytes_per_conn"] = ((res["rss_after_kb"]
                                          - res["rss_before_kb"]) * 1024.0
                                         / opened)
            res["note"] = ("%s %d still open at the end"
                           % (res["note"], opened)).strip()
            return [res]
        self.each_server("idle", fn, nofile=65536,
                         max_connections=max(20000, want + 1000),
                         http={"keepalive_timeout": "300s"})

    # proxy: the close-per-request rate through HAProxy send-proxy-v2 -----
    def proxy(self):
        why = None
        if self.args.url:
            why = "it starts hellod and HAProxy itself (not with --url)"
        elif self.args.servers and "async-1" not in self.args.servers:
            why = "it runs async-1, which --servers leaves out"
        elif not self.tools.get("haproxy"):
            why = "haproxy not found: install the Debian package haproxy"
        if why:
            log("scenario proxy skipped: " + why)
            self.skipped.append(("proxy", why))
            return
        n = self.scaled(20000, 2000)
        rounds = self.args.proxy_rounds
        log("scenario proxy: HAProxy mode tcp, send-proxy-v2 and plain, "
            "ab -r -l -n%d -c100, %d round(s)" % (n, rounds))
        self.proxy_info.update(n=n, rounds=rounds,
                               version=haproxy_version(self.tools["haproxy"]))
        hd = lb = None
        try:
            hd = self.lab.start("async-1", proxy=True)
            lb = self.lab.start_haproxy([
                (name, hd.proxy_port if name == "proxy-v2" else hd.port,
                 options) for name, _, options in PROXY_LEGS])
            self.proxy_check(hd, lb)
            runs = {name: [] for name, _, _ in PROXY_LEGS}
            for r in range(rounds):
                # plain first in odd rounds, PROXY first in even ones: a
                # drift of the machine weighs on both paths alike.
                legs = PROXY_LEGS if r % 2 == 0 else PROXY_LEGS[::-1]
                for name, _, _ in legs:
                    # ab goes through HAProxy; the CPU read is hellod's.
                    leg = Server("haproxy-" + name, "hellod",
                                 port=lb.frontends[name], workers=hd.workers,
                                 pid=hd.pid)
                    l0 = lb.cpu_time()
                    res = self.run.ab(leg, "proxy", n, 100,
                                      raw="proxy-%s-r%d" % (name, r + 1))
                    l1 = lb.cpu_time()
                    if None not in (l0, l1) and res["complete"]:
                        res["lb_cpu_us_per_req"] = ((l1 - l0) * 1e6
                                                    / res["complete"])
                    res["rounds"] = r + 1
                    self.progress(res)
                    self.proxy_runs.append(res)
                    runs[name].append(res)
            for name, _, _ in PROXY_LEGS:
                self.add(combine_rounds(runs[name]))
        except BenchError as e:
            log("error: proxy: %s" % e)
            for name, _, _ in PROXY_LEGS:
                r = new_result(Server("haproxy-" + name, "?"), "proxy", "-",
                               "-", None)
                r["note"] = "error: %s" % str(e).splitlines()[0][:100]
                self.add(r)
        finally:
            for srv in (lb, hd):
                if srv is not None:
                    self.lab.stop(srv)

    def proxy_check(self, hd, lb):
        """Before measuring: through send-proxy-v2 a client at
        PROXY_SOURCE is greeted by its own address (the v2 header is sent,
        parsed and believed), through the plain frontend by HAProxy's,
        and proxy_listen answers nothing without a header."""
        want = {"proxy-v2": PROXY_SOURCE, "plain": "127.0.0.1"}
        for name, addr in want.items():
            got = http_get("127.0.0.1", lb.frontends[name], timeout=5.0,
                           source=PROXY_SOURCE)
            if not got or got[0] != 200 or got[1] != (GREETING
                                                       % addr).encode():
                raise BenchError("through the %s frontend, a client at %s "
                                 "got %r instead of the greeting for %s"
                                 % (name, PROXY_SOURCE, got, addr))
        if http_get("127.0.0.1", hd.proxy_port, timeout=5.0) is not None:
            raise BenchError("hellod's proxy_listen answered a request "
                             "without a PROXY header")
        self.proxy_info["check"] = (
            "checked first: a client at %s is greeted as %s through "
            "send-proxy-v2 and as 127.0.0.1 (HAProxy) through the plain "
            "frontend; proxy_listen closes a connection without a PROXY "
            "header unanswered" % (PROXY_SOURCE, PROXY_SOURCE))

    def proxy_table(self, rows):
        info = self.proxy_info
        paths = {"haproxy-" + name: title for name, title, _ in PROXY_LEGS}
        self.emit("== proxy (the close-per-request rate through HAProxy "
                  "send-proxy-v2: %s, mode tcp, on 127.0.0.1 in front of "
                  "hellod async with 1 worker; ab -r -l -n%s -c100, a new "
                  "connection per request, %s round(s); hellod and HAProxy "
                  "on CPU %s, ab on CPU %s)" % (
                      info.get("version", "HAProxy"), info.get("n", "?"),
                      info.get("rounds", "?"), self.lab.server_cpus or "any",
                      self.lab.client_cpus or "any"))
        body = [[paths.get(r["server"], r["server"]), r["rounds"] or "-",
                 r["complete"], fail_text(r), fmt(r["rps"], 1),
                 fmt(r["p50_ms"], 2), fmt(r["p99_ms"], 2),
                 fmt(r["max_ms"], 1), fmt(r["cpu_us_per_req"], 1),
                 fmt(r["lb_cpu_us_per_req"], 1),
                 fmt(r["client_cpu_pct"], 0), r["note"]] for r in rows]
        self.emit(table(["path", "rounds", "complete", "failed", "req/s",
                         "p50 ms", "p99 ms", "max ms", "hellod CPU us/req",
                         "HAProxy CPU us/req", "client CPU%", "note"], body))
        if len(self.proxy_runs) > 2:
            self.emit("")
            self.emit("every round (ab -n%s -c100 each):" % info.get("n"))
            self.emit(table(
                ["round", "path", "failed", "req/s", "p99 ms",
                 "hellod CPU us/req", "HAProxy CPU us/req", "note"],
                [[r["rounds"], paths.get(r["server"], r["server"]),
                  fail_text(r), fmt(r["rps"], 1), fmt(r["p99_ms"], 2),
                  fmt(r["cpu_us_per_req"], 1),
                  fmt(r["lb_cpu_us_per_req"], 1), r["note"]]
                 for r in self.proxy_runs]))
        self.emit("")
        for line in self.proxy_ratio_lines():
            self.emit(line)
        if info.get("check"):
            self.emit(info["check"])
        self.emit("req/s: the median round's, with that round's latency; "
                  "failed and CPU per request: every round.  hellod and "
                  "HAProxy share CPU %s, so the rate is bounded by their CPU "
                  "per request together; on loopback the kernel does much "
                  "of a packet's delivery in the sender's context, so the "
                  "split of CPU between the two is approximate"
                  % (self.lab.server_cpus or "any"))

    def proxy_ratio_lines(self):
        def get(name):
            for r in self.results:
                if r["scenario"] == "proxy" and r["server"] == name:
                    return r
            return {}
        v2, plain = get("haproxy-proxy-v2"), get("haproxy-plain")

        def ratio(key):
            a, b = v2.get(key), plain.get(key)
            return "%.2f" % (a / b) if a and b else "n/a"
        return ["close-per-request rate through HAProxy send-proxy-v2, "
                "PROXY/plain: req/s %s; hellod CPU per request %s; HAProxy "
                "CPU per request %s" % (ratio("rps"), ratio("cpu_us_per_req"),
                                        ratio("lb_cpu_us_per_req"))]

    # -------------------------------------------------------------- report
    def tables(self):
        for scen in sorted({r["scenario"] for r in self.results},
                           key=scenario_order):
            rows = [r for r in self.results if r["scenario"] == scen]
            self.emit("")
            if scen == "proxy":
                self.proxy_table(rows)
                continue
            title = SCENARIO_TITLES.get(scen.split("-")[0], "")
            if scen == "stuck" and self.args.url:
                title = ("(one silent connection, then ab -n N -c10 -s5; "
                         "the instance's own header_timeout)")
            self.emit("== %s %s" % (scen, title))
            if scen == "original":
                for r in rows:
                    self.emit(article_block(r))
                self.emit(self.article_table(rows))
                self.emit("")
            if scen == "idle":
                hdr = ["server", "conns", "errors", "RSS before KiB",
                       "RSS after KiB", "bytes/conn", "time s",
                       "CPU us/conn", "note"]
                body = [[r["server"], r["concurrency"], r["errors"],
                         r["rss_before_kb"], r["rss_after_kb"],
                         fmt(r["bytes_per_conn"], 0), fmt(r["time_s"], 2),
                         fmt(r["cpu_us_per_req"], 1), r["note"]]
                        for r in rows]
            else:
                hdr = ["server", "workers", "conc", "complete", "failed",
                       "req/s", "p50 ms", "p99 ms", "max ms", "time s",
                       "CPU us/req",
                       "client CPU%", "note"]
                if scen.startswith("padding"):
                    hdr.insert(-1, "KB/s")
                body = []
                for r in rows:
                    row = [r["server"], r["workers"], r["concurrency"],
                           r["complete"], fail_text(r), fmt(r["rps"], 1),
                           fmt(r["p50_ms"], 2), fmt(r["p99_ms"], 2),
                           fmt(r["max_ms"], 1), fmt(r["time_s"], 2),
                           fmt(r["cpu_us_per_req"], 1),
                           fmt(r["client_cpu_pct"], 0)]
                    if scen.startswith("padding"):
                        row.append(fmt(r["transfer_kbps"], 0))
                    row.append(r["note"])
                    body.append(row)
            self.emit(table(hdr, body))
            if scen == "stuck":
                self.emit("ab opens its other connections only after the "
                          "first response, so the wait shows in the time "
                          "taken and the slowest request, not in p99")
            if scen == "slow":
                self.emit("expected: sync ~ 1/delay = 100 req/s; async ~ "
                          "concurrency/delay = 10000 req/s")
        for scen, why in self.skipped:
            self.emit("")
            self.emit("== %s skipped: %s" % (scen, why))

    def article_table(self, rows):
        """The article's figures next to the measured ones, in the fields
        ab prints.  The article gives req/s and failed requests; its time
        per request follows from them as ab computes it (concurrency x
        1000 / req/s, and 1000 / req/s across all requests)."""
        def line(name, src, rps, failed, tpr, tpr_all, vs):
            return [name, src, fmt(rps, 1), failed, fmt(tpr, 3),
                    fmt(tpr_all, 3), vs]
        body = []
        for key, title in (("sync", "article blocking"),
                           ("async", "article asyncio")):
            rps, failed = ARTICLE[key]
            body.append(line(title, "article", rps, failed,
                             150 * 1000.0 / rps, 1000.0 / rps, ""))
        for r in rows:
            if r["rps"] is None:
                body.append([r["server"], "measured", "-", "-", "-", "-",
                             r["note"]])
                continue
            key = article_model(r["server"])
            art = ARTICLE[key][0]
            body.append(line(r["server"], "measured", r["rps"],
                             fail_text(r), r["tpr_ms"], r["tpr_all_ms"],
                             "%.1fx the article's %s" % (
                                 r["rps"] / art, "blocking" if key == "sync"
                                 else "asyncio")))
        return ("\nThe article's table and this machine's "
                "(ab -r -n1000 -c150 -l):\n" +
                table(["server", "source", "req/s", "failed",
                       "time/req ms", "across all ms", "req/s vs article"],
                      body))

    def cpu_summary(self):
        """CPU per request on keep-alive connections and on a new
        connection per request, next to nginx and h2o."""
        def per_request(server, scenario):
            rows = [r for r in self.results if r["server"] == server and
                    r["scenario"] == scenario and r["cpu_us_per_req"]
                    is not None and r["complete"]]
            done = sum(r["complete"] for r in rows)
            if not done:
                return None
            return sum(r["cpu_us_per_req"] * r["complete"]
                       for r in rows) / done

        # New connections: every sustained run (many requests, so many
        # clock ticks), else the original's 1000 requests.
        newconn = "sustained" if any(r["scenario"] == "sustained"
                                     for r in self.results) else "original"
        servers = ordered_unique(r["server"] for r in self.results
                                 if r["scenario"] in ("keepalive", newconn))
        ka = {s: per_request(s, "keepalive") for s in servers}
        nc = {s: per_request(s, newconn) for s in servers}
        if all(v is None for v in list(ka.values()) + list(nc.values())):
            if self.args.url:
                self.emit("")
                self.emit("no server CPU figures: --url without --pid")
            return
        nginx = next((n for n in NGINX_SERVERS if n in servers), "nginx-1")

        def ratio(a, b):  # 0 ticks at the reference: no ratio
            return "%.2f" % (a / b) if a is not None and b else "-"
        def note(s):
            closes = any(r["server"] == s and r["scenario"] == "keepalive"
                         and "closes every connection" in r["note"]
                         for r in self.results)
            return ", ".join(
                ["reference"] * (s in (nginx, "h2o")) +
                ["keep-alive run: a connection per request"] * closes)
        body = [[s, fmt(ka[s], 1), ratio(ka[s], ka.get(nginx)),
                 fmt(nc[s], 1), ratio(nc[s], nc.get(nginx)),
                 ratio(nc[s], nc.get("h2o")), note(s)] for s in servers]
        self.emit("")
        self.emit("== server CPU per request (thread run time from /proc; "
                  "keep-alive: the keepalive scenario; new connection: "
                  "%s; nginx = %s)" % (
                      "all %s runs" % newconn if any(
                          v is not None for v in nc.values())
                      else "no run", nginx))
        self.emit(table(["server", "keep-alive us CPU/req", "ratio to nginx",
                         "new-connection us CPU/req", "ratio to nginx",
                         "ratio to h2o", "note"], body))

    def ratios(self):
        def get(server, scen, conc=None):
            for r in self.results:
                if (r["server"] == server and r["scenario"] == scen and
                        (conc is None or r["concurrency"] == conc)):
                    return r
            return None

        def ratio(a, b):
            return "%.2f" % (a / b) if a and b else "n/a"
        self.emit("")
        self.emit("== ratios tracked by the project")
        a, n = get("async-1", "keepalive"), get("nginx-1", "keepalive")
        self.emit("keep-alive req/s, hellod async(1 worker) / nginx(1 worker):"
                  " %s" % (ratio(a and a["rps"], n and n["rps"])))
        self.emit("keep-alive CPU per request, hellod async(1) / nginx(1):"
                  "      %s" % (ratio(a and a["cpu_us_per_req"],
                                      n and n["cpu_us_per_req"])))
        st = get("async-1-status", "keepalive")
        self.emit("keep-alive CPU per request, status listener on / off:"
                  "       %s" % (ratio(st and st["cpu_us_per_req"],
                                      a and a["cpu_us_per_req"])))
        parts = []
        for c in CONCURRENCIES:
            a, n = get("async-1", "sustained", c), get("nginx-1",
                                                       "sustained", c)
            if a and n:
                parts.append("c=%d %s" % (c, ratio(a["rps"], n["rps"])))
        a, n = get("async-1", "original"), get("nginx-1", "original")
        if a and n:
            parts.append("original(c=150) %s" % ratio(a["rps"], n["rps"]))
        self.emit("connection-per-request req/s, async(1) / nginx(1):     %s"
                  % (", ".join(parts) or "n/a"))
        if any(r["scenario"] == "proxy" for r in self.results):
            for line in self.proxy_ratio_lines():
                self.emit(line)
        for server, key in (("sync", "sync"), ("async-1", "async"),
                            ("async-auto", "async"), ("url", "async"),
                            ("py-blocking", "sync"),
                            ("py-asyncio", "async")):
            r = get(server, "original")
            if r and r["rps"]:
                art_rps, art_failed = ARTICLE[key]
                self.emit("original req/s, %-11s vs the article's %s %.0f: "
                          "%.1fx (%.0f req/s; failed %s vs %d)"
                          % (server, key, art_rps, r["rps"] / art_rps,
                             r["rps"], fail_text(r), art_failed))

    def write_csv(self):
        cols = ["server", "workers", "scenario", "concurrency", "tool",
                "requests", "complete", "failed", "failed_detail", "non2xx",
                "rps", "p50_ms", "p99_ms", "max_ms", "time_s", "tpr_ms",
                "tpr_all_ms", "transfer_kbps", "cpu_us_per_req",
                "client_cpu_pct", "server_cpu_pct", "lb_cpu_us_per_req",
                "syscalls_per_req",
                "rounds",
                "rss_before_kb", "rss_after_kb", "bytes_per_conn", "errors",
                "aborted", "note"]
        with open(os.path.join(self.out, "results.csv"), "w",
                  newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            for r in self.results:
                w.writerow({k: ("%.3f" % v if isinstance(v, float) else
                                ("" if v is None else v))
                            for k, v in r.items() if k in cols})

    def plots(self):
        if not self.tools.get("gnuplot"):
            return []
        made = []
        common = ("set terminal pngcairo size 900,560 noenhanced font "
                  "'sans,10'\nset grid ytics\nset key outside right top\n")
        sus = [r for r in self.results if r["scenario"] == "sustained"
               and r["rps"]]
        if sus:
            servers = ordered_unique(r["server"] for r in sus)
            plots = []
            for s in servers:
                dat = os.path.join(self.raw, "sustained-%s.dat" % s)
                with open(dat, "w") as f:
                    for r in sus:
                        if r["server"] == s:
                            f.write("%d %.1f\n" % (r["concurrency"], r["rps"]))
                plots.append("'%s' using 1:2 with linespoints lw 2 title '%s'"
                             % (dat, s))
            made += self.gnuplot(
                "rps_vs_concurrency.png", common +
                "set title 'connection per request (ab -r -l): req/s vs "
                "concurrency'\nset logscale x\nset xlabel 'concurrency'\n"
                "set ylabel 'requests per second'\nset yrange [0:*]\n"
                "set xtics (1, 10, 100, 1000)\nplot " + ", ".join(plots))
        stuck = [r for r in self.results if r["scenario"] == "stuck"
                 and r["rps"] is not None]
        if stuck:
            dat = self.bar_data("stuck", stuck, ("rps", "time_s", "max_ms"))
            made += self.gnuplot(
                "stuck_client.png",
                common.replace("900,560", "1400,480") +
                "set style fill solid 0.6\nset boxwidth 0.6\nunset key\n"
                "set yrange [0:*]\nset offsets 0, 0, graph 0.1, 0\n"
                "set xtics rotate by -20\n"
                "set multiplot layout 1,3 title 'one silent client, then "
                "ab -n%d -c10 (%s)%s'\n"
                "set title 'requests per second'\n%s"
                "set title 'time taken (s)'\n%s"
                "set title 'slowest request (ms)'\n%s"
                "unset multiplot\n" % (stuck[0]["requests"],
                                       "header_timeout of the instance"
                                       if self.args.url else
                                       "hellod header_timeout = 2s",
                                       "; 0: ab gave up" if any(
                                           r["aborted"] for r in stuck)
                                       else "",
                                       bar_plot(dat, 2, "%.0f"),
                                       bar_plot(dat, 3, "%.2f"),
                                       bar_plot(dat, 4, "%.0f")))
        slow = [r for r in self.results if r["scenario"] == "slow"
                and r["rps"]]
        if slow:
            dat = self.bar_data("slow", slow, ("rps", "p50_ms"))
            made += self.gnuplot(
                "slow_backend.png", common +
                "set style fill solid 0.6\nset boxwidth 0.6\nunset key\n"
                "set title 'slow backend: delay = 10ms, 100 connections "
                "(ab -k -c100)'\nset logscale y\nset yrange [10:100000]\n"
                "set ylabel 'requests per second (log)'\n"
                "set arrow from graph 0, first 100 to graph 1, first 100 "
                "nohead dt 2\nset label '1/delay = 100' at graph 0.02, "
                "first 130\nset arrow from graph 0, first 10000 to graph 1,"
                " first 10000 nohead dt 2\nset label 'c/delay = 10000' at "
                "graph 0.02, first 13000\n" + bar_plot(dat, 2, "%.0f"))
        return made

    def bar_data(self, name, rows, keys):
        dat = os.path.join(self.raw, "%s.dat" % name)
        with open(dat, "w") as f:
            for r in rows:
                f.write("\"%s\" %s\n" % (r["server"], " ".join(
                    "%.3f" % (r[k] or 0) for k in keys)))
        return dat

    def gnuplot(self, png, script):
        path = os.path.join(self.out, png)
        gp = os.path.join(self.raw, png.replace(".png", ".gp"))
        with open(gp, "w") as f:
            f.write("set output '%s'\n%s\n" % (path, script))
        try:
            p = subprocess.run(["gnuplot", gp], stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            if p.returncode != 0:
                log("gnuplot failed for %s:\n%s" % (png, p.stdout.decode()))
                return []
        except subprocess.TimeoutExpired:
            log("gnuplot timed out for %s" % png)
            return []
        return [path]


SYNC_NO_KEEPALIVE = ("keepalive", "slow", "padding-16k", "padding-256k")

SCENARIO_TITLES = {
    "original": "(ab -r -n1000 -c150 -l; one connection per request)",
    "sustained": "(ab -r -l, one connection per request)",
    "keepalive": "(100 keep-alive connections)",
    "stuck": "(one silent connection, then ab -n N -c10 -s5; "
             "hellod header_timeout = 2s, the Python peers have none)",
    "slow": "(delay = 10ms, ab -k -c100 for a fixed time)",
    "padding": "(body_padding, ab -k -c10)",
    "idle": "(idle keep-alive connections, worker VmRSS)",
}


def scenario_order(s):
    base = s.split("-")[0]
    return (ALL_SCENARIOS.index(base) if base in ALL_SCENARIOS else 99, s)


def ordered_unique(it):
    seen = []
    for x in it:
        if x not in seen:
            seen.append(x)
    return seen


def combine_rounds(runs):
    """One row for the rounds of a proxy path: req/s and latency of the
    median round, failed requests and CPU per request over all rounds."""
    done = [r for r in runs if r["rps"] is not None]
    if not done:
        res = dict(runs[0])
        res["rounds"] = len(runs)
        return res
    done.sort(key=lambda r: r["rps"])
    res = dict(done[(len(done) - 1) // 2])   # the lower median
    res["rounds"] = len(runs)
    res["requests"] = sum(r["requests"] or 0 for r in runs)
    for key in ("complete", "failed", "non2xx"):
        res[key] = sum(r[key] or 0 for r in runs)
    res["failed_detail"] = "; ".join(
        "round %d: %s" % (r["rounds"], r["failed_detail"])
        for r in runs if r["failed"])
    for key in ("cpu_us_per_req", "lb_cpu_us_per_req"):
        have = [r for r in runs if r[key] is not None and r["complete"]]
        n = sum(r["complete"] for r in have)
        res[key] = (sum(r[key] * r["complete"] for r in have) / n
                    if n and len(have) == len(runs) else None)
    res["aborted"] = any(r["aborted"] for r in runs)
    spread = ("req/s: median of %d, %.0f-%.0f"
              % (len(done), done[0]["rps"], done[-1]["rps"]))
    res["note"] = "; ".join([spread] * (len(done) > 1) +
                            sorted({r["note"] for r in runs if r["note"]}))
    return res


def haproxy_version(exe):
    """'HAProxy 2.6.12-1+deb12u4', or 'HAProxy' when -v says nothing."""
    try:
        out = subprocess.run([exe, "-v"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=10).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    m = re.search(r"version (\S+)", out)
    return "HAProxy " + m.group(1) if m else "HAProxy"


def bar_plot(dat, col, lfmt):
    return ("plot '%s' using 0:%d:xtic(1) with boxes, '' using 0:%d:"
            "(sprintf('%s', $%d)) with labels offset 0,0.8\n"
            % (dat, col, col, lfmt, col))


def fmt(v, digits):
    if v is None:
        return "-"
    return "%.*f" % (digits, v)


def fail_text(r):
    if r["failed"] is None:
        return "-"
    s = str(r["failed"])
    if r["non2xx"]:
        s += "+%d non-2xx" % r["non2xx"]
    return s


def article_block(r):
    if r["rps"] is None:
        return "[%s] no result: %s" % (r["server"], r["note"])
    return "\n".join([
        "[%s, %s worker(s)]" % (r["server"], r["workers"]),
        "Complete requests:      %d" % r["complete"],
        "Failed requests:        %d" % r["failed"],
        "   (%s)" % r["failed_detail"],
        "Requests per second:    %.2f [#/sec] (mean)" % r["rps"],
        "Time per request:       %.3f [ms] (mean)" % (r["tpr_ms"] or 0),
        "Time per request:       %.3f [ms] (mean, across all concurrent "
        "requests)" % (r["tpr_all_ms"] or 0),
        "Transfer rate:          %.2f [Kbytes/sec] received"
        % (r["transfer_kbps"] or 0)] +
        (["(%s; req/s over the %.1fs until then)" % (r["note"], r["time_s"])]
         if r["aborted"] else []) + [""])


def table(hdr, rows, note=True):
    """Columns aligned under hdr; the last one, a note, left and unpadded
    unless note is False."""
    rows = [["-" if c is None else str(c) for c in row] for row in rows]
    w = [max(len(str(h)), *(len(r[i]) for r in rows)) if rows else len(h)
         for i, h in enumerate(hdr)]
    out = []
    for row in [hdr] + rows:
        cells = []
        for i, c in enumerate(row):
            if note and i == len(row) - 1:   # left, unpadded
                cells.append(str(c))
            elif i == 0:
                cells.append(str(c).ljust(w[i]))
            else:
                cells.append(str(c).rjust(w[i]))
        out.append("  ".join(cells).rstrip())
        if row is hdr:
            out.append("  ".join("-" * x for x in (w[:-1] if note else w))
                       + ("  ----" if note else ""))
    return "\n".join(out)


def read_response(sk):
    """Reads one HTTP response with a Content-Length; True on a 200."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sk.recv(4096)
        if not chunk:
            return False
        data += chunk
        if len(data) > 65536:
            return False
    head, body = data.split(b"\r\n\r\n", 1)
    m = re.search(rb"\r\ncontent-length:\s*(\d+)", head, re.I)
    need = int(m.group(1)) if m else 0
    while len(body) < need:
        chunk = sk.recv(65536)
        if not chunk:
            return False
        body += chunk
    return head.startswith(b"HTTP/1.1 200")


# ----------------------------------------------------------------- main

def check_tools(args):
    """Finds the tools; exits 2 naming the Debian package of a missing
    required one."""
    found = {t: shutil.which(t) for t in TOOLS}
    # often in sbin, not in a user's PATH
    for binary in list(OPTIONAL_SERVERS) + ["haproxy"]:
        for d in ("/usr/sbin", "/usr/local/sbin", "/usr/local/%s/sbin"
                  % binary):
            if found[binary] is None and os.access(
                    os.path.join(d, binary), os.X_OK):
                found[binary] = os.path.join(d, binary)
    missing = []
    if not found["ab"]:
        missing.append(("ab", TOOLS["ab"]))
    if not args.quick:
        scen = args.scenarios
        if "keepalive" in scen and not (found["h2load"] or found["wrk"]):
            missing.append(("h2load or wrk", "nghttp2-client or wrk"))
        if args.loadgen == "wrk" and not found["wrk"]:
            missing.append(("wrk", "wrk"))
        if not found["gnuplot"] and not args.no_plots:
            missing.append(("gnuplot", TOOLS["gnuplot"]))
    for tool, pkg in missing:
        log("bench.py: %s not found: install the Debian package %s"
            % (tool, pkg))
    if missing:
        sys.exit(2)
    if not args.quick and not args.url:
        for binary in OPTIONAL_SERVERS:
            if not found[binary]:
                log("note: %s not found (optional; Debian package %s): "
                    "no %s comparison, %s skipped" % (
                        binary, TOOLS[binary], binary,
                        ", ".join(OPTIONAL_SERVERS[binary])))
        if "proxy" in args.scenarios and not found["haproxy"]:
            log("note: haproxy not found (Debian package haproxy): "
                "scenario proxy skipped")
    if args.no_plots:
        found["gnuplot"] = None
    # System calls per request: perf with the syscall tracepoints
    # (Debian package linux-perf; root, or perf_event_paranoid <= -1).
    found["perf_syscalls"] = False
    if shutil.which("perf") and not args.url:
        try:
            found["perf_syscalls"] = subprocess.run(
                ["perf", "stat", "-e", "raw_syscalls:sys_enter", "true"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                timeout=20).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            pass
    if not found["perf_syscalls"] and not args.quick:
        log("note: perf cannot count raw_syscalls:sys_enter (Debian "
            "package linux-perf, run as root): no system call figures")
    return found


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="hellod benchmark suite (see the module docstring).")
    p.add_argument("--hellod", default=os.environ.get("HELLOD"),
                   help="path of the built hellod (default: $HELLOD)")
    p.add_argument("--url", help="benchmark a deployed instance "
                   "(http://HOST:PORT/PATH) instead of starting hellod")
    p.add_argument("--pid", type=int, help="with --url: master pid of the "
                   "deployed server, to measure its CPU per request")
    p.add_argument("--out", default="bench-results",
                   help="output directory (default: ./bench-results)")
    p.add_argument("--quick", action="store_true",
                   help="original scenario, sync and async only; exit 1 "
                   "on any failed request")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply request counts and durations (e.g. 0.1)")
    p.add_argument("--scenarios", default=",".join(ALL_SCENARIOS),
                   help="comma separated subset of: %s"
                   % ",".join(ALL_SCENARIOS))
    p.add_argument("--servers", help="comma separated subset of: %s"
                   % ",".join(ALL_SERVERS))
    p.add_argument("--loadgen", choices=("h2load", "wrk"),
                   help="keep-alive load generator (default: h2load if "
                   "installed, else wrk)")
    p.add_argument("--no-nginx", action="store_true",
                   help="skip the nginx comparison")
    p.add_argument("--no-pin", action="store_true",
                   help="do not pin server and load generator to CPUs")
    p.add_argument("--no-plots", action="store_true", help="skip gnuplot")
    p.add_argument("--idle-conns", type=int, default=10000,
                   help="idle scenario connection count (default 10000)")
    p.add_argument("--stuck-clients", type=int, default=1,
                   help="silent connections in the stuck scenario (1)")
    p.add_argument("--proxy-rounds", type=int, default=3,
                   help="proxy scenario: rounds of ab through each HAProxy "
                   "frontend, alternating; req/s is the median (3)")
    p.add_argument("--model-rounds", type=int, default=5,
                   help="models scenario: interleaved rounds; each figure "
                   "is the median (5)")
    p.add_argument("--run-timeout", type=float, default=600,
                   help="upper bound in seconds for one load run (600)")
    p.add_argument("--peer-limit", type=float, default=60,
                   help="upper bound in seconds for one ab run against a "
                   "Python peer (60)")
    args = p.parse_args(argv)
    args.scenarios = [s.strip() for s in args.scenarios.split(",")
                      if s.strip()]
    for s in args.scenarios:
        if s not in ALL_SCENARIOS:
            p.error("unknown scenario %r" % s)
    if args.quick:
        args.scenarios = ["original"]
    if args.servers:
        args.servers = [s.strip() for s in args.servers.split(",")]
        for s in args.servers:
            if s not in ALL_SERVERS:
                p.error("unknown server %r" % s)
    if args.url:
        # slow and padding run only if the instance has query knobs (seen
        # once it answers); idle needs the master pid for its RSS.
        if "idle" in args.scenarios and not args.pid:
            args.scenarios.remove("idle")
    else:
        if not args.hellod:
            p.error("--hellod PATH (or $HELLOD) is required without --url")
        args.hellod = os.path.abspath(args.hellod)
        if not os.access(args.hellod, os.X_OK):
            p.error("%s is not an executable" % args.hellod)
    if args.scale <= 0:
        p.error("--scale must be positive")
    if args.proxy_rounds < 1:
        p.error("--proxy-rounds must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tools = check_tools(args)
    out = os.path.abspath(args.out)
    os.makedirs(out, exist_ok=True)
    # ab -c1000 and the idle scenario need descriptors; children inherit.
    raise_nofile(16384)
    # SIGTERM (e.g. make killed) must still run the finally below.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))

    bench = Bench(args, tools, out)
    started = time.monotonic()
    bench.emit("hellod benchmark, %s" % time.strftime("%Y-%m-%d %H:%M:%S"))
    bench.emit("target: %s" % (args.url or args.hellod))
    bench.emit("server CPU per request = run time of the server's threads "
               "(/proc/PID/task/TID/schedstat, nanoseconds) / completed "
               "requests")
    bench.emit("client CPU%: the load generator's CPU use over the run "
               "(100 = one CPU saturated: the client is the bottleneck)")
    bench.emit("cpus: %d online; server on %s, load generator on %s; "
               "CLK_TCK %d; scale %g%s" % (
                   NCPU, bench.lab.server_cpus or "any",
                   bench.lab.client_cpus or "any", CLK_TCK, args.scale,
                   "; quick" if args.quick else ""))
    try:
        for scen in args.scenarios:
            getattr(bench, scen)()
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    finally:
        bench.lab.stop_all()
    bench.tables()
    bench.ratios()
    if not args.quick:
        bench.cpu_summary()
    plots = [] if args.quick else bench.plots()
    bench.emit("")
    bench.emit("total time %.0fs; output in %s (results.txt, results.csv%s)"
               % (time.monotonic() - started, out,
                  "".join(", " + os.path.basename(p) for p in plots)))
    with open(os.path.join(out, "results.txt"), "w") as f:
        f.write("\n".join(bench.report) + "\n")
    bench.write_csv()

    # A run ab gave up on is a result for the Python peers (the blocking
    # one behind a silent client), a failure for the others.
    bad = [r for r in bench.results if r["scenario"] != "idle" and (
        r["rps"] is None or
        (r["aborted"] and r["server"] not in PEER_SERVERS))]
    if args.quick:
        bad += [r for r in bench.results
                if r["failed"] or r["non2xx"] or not r["complete"]]
        if bad:
            log("FAIL: failed requests or failed runs: %s" % ", ".join(
                sorted({"%s/%s" % (r["server"], r["scenario"])
                        for r in bad})))
            return 1
        log("PASS: no failed requests")
        return 0
    if bad:
        log("some runs produced no result: %s" % ", ".join(
            "%s/%s" % (r["server"], r["scenario"]) for r in bad))
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        log("bench.py: %s" % e)
        sys.exit(1)
