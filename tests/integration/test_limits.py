#!/usr/bin/env python3
"""Resource exhaustion at scale (HTTP-CASES.md 9, 10, 25-27): descriptor
exhaustion (EMFILE), max_connections, 10,000 idle keep-alive connections,
1,000 slowloris connections, 2,000 resetting and half-closing clients, in
async, uring and sync mode (a class with MODE = "uring" runs its async
cases on the uring workers).

The clients are non-blocking sockets driven by one selector (Flood), so a
few thousand of them cost one thread.  The daemon's RLIMIT_NOFILE is set
by starting it while this process has that limit (children inherit it);
the limits are then read back from /proc with prlimit."""

import contextlib
import errno
import http.client
import json
import os
import re
import resource
import selectors
import socket
import threading
import time
import unittest

import hellodtest
import hellodtest as ht
from hellodtest import greeting

HOST = "127.0.0.1"
KEEP = b"GET / HTTP/1.1\r\nHost: flood\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: flood\r\nConnection: close\r\n\r\n"
GREETING = greeting(HOST)
EMFILE_LOG = r"accept4\(\) failed, pausing accept \(%d: " % errno.EMFILE
SYNC_EMFILE_LOG = EMFILE_LOG
RECOVERED_LOG = r"accept4\(\) succeeds again"
RESPAWN_LOG = r"respawning"


# --- process measurements ---

def cpu_seconds(pid):
    """User + system CPU time of pid so far (/proc/PID/stat)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_share(pid, seconds, pump=None):
    """Share of one CPU that pid used over the next `seconds` (pump(t)
    is called meanwhile to keep the clients' sockets read)."""
    c0, t0 = cpu_seconds(pid), time.monotonic()
    end = t0 + seconds
    while True:
        left = end - time.monotonic()
        if left <= 0:
            break
        if pump:
            pump(min(left, 0.05))
        else:
            time.sleep(min(left, 0.05))
    return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_numbers(pid):
    return sorted(int(n) for n in os.listdir("/proc/%d/fd" % pid))


def vm_rss_kib(pid):
    return int(ht.proc_status(pid)["VmRSS"][0])


def quiet_fd_count(pid, timeout=5.0):
    """The worker's descriptor count once it holds no client socket."""
    ht.wait_for(lambda: ht.tcp_connections([pid]) == 0, timeout,
                what="the worker to hold no client connection")
    return fd_count(pid)


def wait_fds(test, pid, want, timeout=10.0):
    """Until pid holds exactly `want` descriptors."""
    try:
        ht.wait_for(lambda: fd_count(pid) == want, timeout,
                    what="%d descriptors in the worker" % want)
    except AssertionError:
        test.fail("worker %d holds %d descriptors, expected %d (%d client "
                  "connections)" % (pid, fd_count(pid), want,
                                    ht.tcp_connections([pid])))


# --- descriptor limits ---

def own_nofile(n):
    """Raises this process's RLIMIT_NOFILE soft limit to at least n
    (and the hard limit, when allowed).  True when it is at least n."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= n:
        return True
    for lim in ((n, max(n, hard)), (min(n, hard), hard)):
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, lim)
            break
        except (ValueError, OSError):
            continue
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= n


def nofile_for_child(want, need):
    """want when this process may give a child RLIMIT_NOFILE want (raising
    its own hard limit if allowed), else the hard limit if it is at
    least need, else None."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (soft, want))
        except (ValueError, OSError):
            pass
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard >= want:
        return want
    return hard if hard >= need else None


@contextlib.contextmanager
def child_nofile(n):
    """Processes started inside inherit RLIMIT_NOFILE soft limit n."""
    old = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, old[1])))
    except (ValueError, OSError) as e:
        raise unittest.SkipTest("cannot set RLIMIT_NOFILE %d: %s" % (n, e))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE,
                           (old[0], max(n, old[1])))


def in_mode(test, conf):
    """conf in the test class's MODE, where it names one."""
    mode = getattr(test, "MODE", None)
    if mode is None:
        return conf
    return conf.replace("[server]\n", "[server]\nmode = %s\n" % mode, 1)


def start(test, conf, nofile=None, env=None):
    """hellod with one worker (and RLIMIT_NOFILE nofile); returns
    (Hellod, worker pid).  The worker's limit is checked."""
    conf = in_mode(test, conf)
    if nofile is None:
        h = ht.Hellod(conf, ready=False, env=env)
    else:
        with child_nofile(nofile):
            h = ht.Hellod(conf, ready=False, env=env)
    try:
        h.wait_ready()
        h.wait_log(r"worker \d+ serving", count=1)
        pids = ht.wait_for(lambda: h.worker_pids(), 5.0, what="the worker")
        test.assertEqual(len(pids), 1, "expected one worker: %r" % pids)
        if nofile is not None:
            test.assertEqual(
                resource.prlimit(pids[0], resource.RLIMIT_NOFILE)[0], nofile)
    except BaseException:
        h.close()
        raise
    return h, pids[0]


def finish(test, h, worker):
    """Same worker as at the start, no respawn, clean stop."""
    test.assertEqual(h.worker_pids(), [worker], "the worker was replaced")
    test.assertIsNone(re.search(RESPAWN_LOG, h.log()), h.log()[-3000:])
    test.assertEqual(h.stop(), 0, h.log()[-3000:])


# --- many clients on one selector ---

def parse_response(buf):
    """(status, headers, body, rest) of the first response in buf, or None
    while it is incomplete."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = buf[:end].decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.1 (\d{3}) ", lines[0])
    if not m:
        raise AssertionError("bad status line %r" % lines[0])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    length = int(headers.get("content-length", "0"))
    if len(buf) < end + 4 + length:
        return None
    body = buf[end + 4:end + 4 + length]
    return int(m.group(1)), headers, body, buf[end + 4 + length:]


class Client:
    __slots__ = ("sock", "buf", "t_connect", "t_sent", "t_resp", "t_eof",
                 "reset", "resp", "rest", "nbytes", "registered")

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.t_connect = self.t_sent = self.t_resp = self.t_eof = None
        self.reset = False
        self.resp = None        # (status, headers, body)
        self.rest = b""         # bytes after the first response
        self.nbytes = 0         # bytes received
        self.registered = True

    def ok(self):
        """A complete 200 with the exact greeting."""
        return (self.resp is not None and self.resp[0] == 200 and
                self.resp[2] == GREETING)


class Flood:
    """Non-blocking client connections to one port, driven by a selector.
    Every connection is read as data arrives: the first response is
    parsed, EOF and resets are timed."""

    def __init__(self, port):
        self.port = port
        self.sel = selectors.DefaultSelector()
        self.clients = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close_all()

    def open(self, n, data=None, batch=500, timeout=30.0, read=True):
        """n new connections, `batch` connecting at a time; data (if any)
        is sent on each as soon as it is established.  With read=False
        nothing is read from them (they leave the selector)."""
        deadline = time.monotonic() + timeout
        new = []
        for first in range(0, n, batch):
            pending = set()
            for i in range(first, min(n, first + batch)):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.setblocking(False)
                rc = s.connect_ex((HOST, self.port))
                if rc not in (0, errno.EINPROGRESS):
                    s.close()
                    raise AssertionError("connect #%d: %s"
                                         % (len(new), os.strerror(rc)))
                c = Client(s)
                self.clients.append(c)
                new.append(c)
                pending.add(c)
                self.sel.register(s, selectors.EVENT_WRITE, c)
            while pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        "%d of %d connections not established within %.0fs"
                        % (len(pending) + n - len(new), n, timeout))
                for key, ev in self.sel.select(min(left, 0.5)):
                    c = key.data
                    if c in pending:
                        err = c.sock.getsockopt(socket.SOL_SOCKET,
                                                socket.SO_ERROR)
                        if err:
                            raise AssertionError("connect: %s"
                                                 % os.strerror(err))
                        pending.discard(c)
                        c.t_connect = time.monotonic()
                        if read:
                            self.sel.modify(c.sock, selectors.EVENT_READ, c)
                        else:
                            self._unregister(c)
                        if data is not None:
                            self.send(c, data)
                    else:
                        self._read(c)
        return new

    @staticmethod
    def readable(c):
        """Whether data (or EOF) waits on c, without consuming it."""
        try:
            c.sock.recv(1, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        except ConnectionResetError:
            pass
        return True

    @staticmethod
    def send(c, data):
        """Sends a few bytes; they always fit in the socket buffer.
        False when the server has reset the connection already."""
        c.t_sent = time.monotonic()
        try:
            n = c.sock.send(data)
        except (BrokenPipeError, ConnectionResetError):
            return False
        if n != len(data):
            raise AssertionError("short send: %d of %d" % (n, len(data)))
        return True

    def _unregister(self, c):
        if c.registered:
            self.sel.unregister(c.sock)
            c.registered = False

    def _read(self, c):
        for _ in range(64):
            try:
                data = c.sock.recv(65536)
            except BlockingIOError:
                return
            except ConnectionResetError:
                c.reset = True
                data = b""
            if not data:
                c.t_eof = time.monotonic()
                self._unregister(c)
                return
            c.nbytes += len(data)
            if c.resp is None:
                c.buf += data
                r = parse_response(c.buf)
                if r is not None:
                    c.resp, c.rest = r[:3], r[3]
                    c.t_resp = time.monotonic()
                    c.buf = b""
            else:
                c.rest += data

    def pump(self, timeout):
        """One selector pass: reads what arrived within timeout."""
        for key, _ in self.sel.select(timeout):
            self._read(key.data)

    def wait(self, cond, timeout, what):
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("timed out after %.1fs waiting for %s"
                                     % (timeout, what))
            self.pump(min(left, 0.05))

    def drop(self, c):
        self._unregister(c)
        c.sock.close()

    def reset_close(self, c):
        self._unregister(c)
        ht.reset_close(c.sock)

    def close_all(self):
        for c in self.clients:
            if c.sock.fileno() >= 0:
                self.drop(c)
        self.clients = []
        self.sel.close()


def timed_get(port, timeout=5.0):
    """(response, seconds) of one request on a new connection."""
    t = time.monotonic()
    resp = ht.get(HOST, port, timeout=timeout)
    return resp, time.monotonic() - t


# --- the tests ---

class Emfile(unittest.TestCase):
    """Case 27: more clients than descriptors."""

    CONF = ("[server]\nworkers = 1\n[http]\nmax_connections = 100000\n"
            "keepalive_timeout = 20s\nheader_timeout = 20s\n")

    def setUp(self):
        if not own_nofile(1000):
            self.skipTest("cannot raise RLIMIT_NOFILE to 1000")

    def test_case27_emfile_500_clients_no_busy_loop(self):
        h, worker = start(self, self.CONF, nofile=64)
        with h:
            base = quiet_fd_count(worker)
            room = 64 - base
            with Flood(h.port) as fl:
                # Each sends a keep-alive request and keeps its
                # connection: the worker runs out of descriptors.
                fl.open(500, data=KEEP)
                h.wait_log(EMFILE_LOG, timeout=10.0)
                fl.wait(lambda: sum(c.resp is not None
                                    for c in fl.clients) >= room - 2,
                        10.0, "the first clients to be served")
                self.assertEqual(fd_count(worker), 64,
                                 "the descriptor limit is not what stops "
                                 "accept")
                served = sum(c.resp is not None for c in fl.clients)
                logged = len(re.findall(EMFILE_LOG, h.log()))
                # The flood waits in the listen queue: no busy loop.
                share = cpu_share(worker, 1.0, fl.pump)
                self.assertLess(share, 0.3, "worker spins on EMFILE: %.0f%% "
                                "of a CPU" % (share * 100))
                # One line per spell of failures, not one per retry.
                retries = len(re.findall(EMFILE_LOG, h.log())) - logged
                self.assertEqual(retries, 0, "logged again while failing")
                self.assertEqual(sum(c.resp is not None
                                     for c in fl.clients), served)
                self.assertLessEqual(served, room)
                self.assertGreater(served, 0)

                # Clients leave once answered: the rest get served.
                def drain():
                    for c in fl.clients:
                        if c.registered and (c.resp is not None or
                                             c.t_eof is not None):
                            fl.drop(c)
                    return all(not c.registered for c in fl.clients)
                fl.wait(drain, 30.0, "all 500 clients to be answered")
                bad = [c.resp[:2] for c in fl.clients
                       if c.resp is not None and not c.ok()]
                self.assertEqual(bad, [])
                ok = sum(c.ok() for c in fl.clients)
                closed = sum(c.resp is None for c in fl.clients)
                self.assertEqual(ok + closed, 500)
                self.assertGreater(ok, served, "nobody served after the "
                                   "first %d" % served)
                print("\n  EMFILE: %d served at first, %.1f%% CPU in 1s; "
                      "then %d answered, %d closed"
                      % (served, share * 100, ok, closed))
            # Service resumes by itself.
            resp, took = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            self.assertEqual(resp.body, GREETING)
            self.assertLess(took, 1.0)
            wait_fds(self, worker, base)
            finish(self, h, worker)


class MaxConnections(unittest.TestCase):
    """Case 27: max_connections is a per-worker limit, exactly, while the
    connections are in the middle of a request (idle ones are reclaimed:
    ReclaimIdle)."""

    def test_case27_max_connections_exact(self):
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "max_connections = 7\nkeepalive_timeout = 20s\n"
                          "header_timeout = 20s\n")
        with h:
            base = quiet_fd_count(worker)
            held = []
            try:
                for i in range(7):
                    s = ht.connect(HOST, h.port)
                    held.append(s)
                    # The next request's start arrives with the first:
                    # read before the answer, it is in progress after.
                    s.sendall(KEEP + KEEP[:-2])
                    resp = ht.Reader(s).response()
                    self.assertEqual(resp.status, 200)
                    self.assertIsNone(resp.header("connection"))
                eighth = ht.connect(HOST, h.port)
                held.append(eighth)
                eighth.sendall(CLOSE)
                ht.assert_quiet(eighth, 0.5)
                self.assertEqual(fd_count(worker), base + 7)
                self.assertEqual(ht.tcp_connections([worker]), 7)
                t = time.monotonic()
                held[0].close()
                resp = ht.Reader(eighth).response()
                took = time.monotonic() - t
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, GREETING)
                self.assertLess(took, 0.5, "answered %.2fs after a slot "
                                "freed" % took)
                # The limit holds again: six kept, the eighth closed by
                # the server, so one more fits and the next waits.
                ht.wait_for(lambda: fd_count(worker) == base + 6, 5.0,
                            what="the eighth connection to be closed")
                ninth = ht.connect(HOST, h.port)
                held.append(ninth)
                ninth.sendall(KEEP + KEEP[:-2])
                self.assertEqual(ht.Reader(ninth).response().status, 200)
                tenth = ht.connect(HOST, h.port)
                held.append(tenth)
                tenth.sendall(CLOSE)
                ht.assert_quiet(tenth, 0.3)
                self.assertEqual(fd_count(worker), base + 7)
                held[1].close()
                self.assertEqual(ht.Reader(tenth).response().status, 200)
            finally:
                for s in held:
                    s.close()
            wait_fds(self, worker, base)
            finish(self, h, worker)


def status_json(port, timeout=5.0):
    """The status server's /status.json."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", "/status.json")
        resp = conn.getresponse()
        if resp.status != 200:
            raise AssertionError("/status.json: %d" % resp.status)
        return json.loads(resp.read())
    finally:
        conn.close()


class ReclaimIdle(unittest.TestCase):
    """At max_connections, idle keep-alive connections are closed, oldest
    first, to admit new clients (as nginx does); connections in the
    middle of a request never are."""

    N = 1000

    def setUp(self):
        if not own_nofile(self.N + 500):
            self.skipTest("cannot raise RLIMIT_NOFILE to %d" % (self.N + 500))

    def test_case27_idle_connections_make_room(self):
        port, sport = ht.free_port(), ht.free_port()
        nofile = nofile_for_child(self.N + 500, self.N + 100)
        if nofile is None:
            self.skipTest("RLIMIT_NOFILE hard limit below %d"
                          % (self.N + 100))
        with child_nofile(nofile):
            h = ht.Hellod(in_mode(
                self, "[server]\nlisten = %s:%d\nworkers = 1\n"
                "[http]\nmax_connections = %d\n"
                "keepalive_timeout = 60s\nheader_timeout = 60s\n"
                "[status]\nlisten = %s:%d\n"
                % (HOST, port, self.N, HOST, sport)), port=port)
        with h:
            worker = ht.wait_for(
                lambda: status_json(sport)["workers"][0]["pid"], 5.0,
                what="the worker")
            base = quiet_fd_count(worker)
            with Flood(h.port) as fl:
                idle = fl.open(self.N, data=KEEP, batch=250, timeout=30.0)
                fl.wait(lambda: all(c.resp is not None for c in idle),
                        20.0, "%d responses" % self.N)
                self.assertTrue(all(c.ok() for c in idle))
                ht.wait_for(lambda: fd_count(worker) == base + self.N, 10.0,
                            what="%d idle connections" % self.N)
                before = status_json(sport)["totals"][
                    "connections_reclaimed"]
                # Each new client is admitted at once, by closing the
                # oldest idle connection; they stay connected.
                new = []
                try:
                    for i in range(5):
                        t = time.monotonic()
                        s = ht.connect(HOST, h.port)
                        new.append(s)
                        s.sendall(KEEP)
                        resp = ht.Reader(s).response()
                        took = time.monotonic() - t
                        self.assertEqual(resp.status, 200)
                        self.assertEqual(resp.body, GREETING)
                        self.assertLess(took, 0.1, "client %d waited %.3fs"
                                        % (i, took))
                finally:
                    for s in new:
                        s.close()
                fl.wait(lambda: sum(c.t_eof is not None for c in idle) >= 5,
                        5.0, "5 idle connections to be closed")
                closed = [i for i, c in enumerate(idle)
                          if c.t_eof is not None]
                self.assertEqual(closed, list(range(5)),
                                 "not the oldest idle connections")
                self.assertTrue(all(not c.rest for c in idle))
                self.assertEqual(status_json(sport)["totals"][
                    "connections_reclaimed"], before + 5)
                # A request in progress is never closed for a new one.
                busy = idle[5:]
                for c in busy:
                    self.assertTrue(fl.send(c, KEEP[:-2]))
                busy += fl.open(5, data=KEEP[:-2])
                ht.wait_for(lambda: fd_count(worker) == base + self.N, 10.0,
                            what="%d connections" % self.N)
                late = ht.connect(HOST, h.port)
                try:
                    late.sendall(CLOSE)
                    ht.assert_quiet(late, 0.5)
                    fl.drop(busy[0])
                    resp = ht.Reader(late).response()
                    self.assertEqual(resp.status, 200)
                finally:
                    late.close()
                self.assertTrue(all(c.t_eof is None for c in busy[1:]))
            wait_fds(self, worker, base)
            self.assertEqual(status_json(sport)["workers"][0]["pid"], worker)
            self.assertEqual(h.stop(), 0, h.log()[-3000:])


class TenThousandIdle(unittest.TestCase):
    """Case 26 at scale: 10,000 concurrent idle keep-alive connections."""

    N = 10000
    KEEPALIVE = 3.0

    def setUp(self):
        if not own_nofile(self.N + 500):
            self.skipTest("cannot raise RLIMIT_NOFILE to %d" % (self.N + 500))

    def test_case26_10000_idle_keepalive(self):
        # 30000, or as many as this container's hard limit allows.
        nofile = nofile_for_child(30000, self.N + 1000)
        if nofile is None:
            self.skipTest("RLIMIT_NOFILE hard limit below %d"
                          % (self.N + 1000))
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "keepalive_timeout = 3s\nheader_timeout = 30s\n"
                          "max_connections = 20000\n", nofile=nofile)
        with h:
            base = quiet_fd_count(worker)
            with Flood(h.port) as fl:
                t0 = time.monotonic()
                # Connect all first (header_timeout is long), then one
                # request on each, so that all are idle at the same time.
                fl.open(self.N, batch=1000, timeout=30.0)
                t_open = time.monotonic() - t0
                ht.wait_for(lambda: fd_count(worker) == base + self.N, 10.0,
                            what="the worker to accept %d" % self.N)
                t1 = time.monotonic()
                for c in fl.clients:
                    self.assertTrue(fl.send(c, KEEP))
                fl.wait(lambda: all(c.resp is not None or
                                    c.t_eof is not None
                                    for c in fl.clients),
                        20.0, "%d responses" % self.N)
                t_req = time.monotonic() - t1
                self.assertEqual(sum(c.ok() for c in fl.clients), self.N)
                first = min(c.t_resp for c in fl.clients)
                # All 10,000 are open and idle at once.
                self.assertLess(time.monotonic() - first, 2.5,
                                "responses spread over %.1fs: the "
                                "connections were not idle together"
                                % (time.monotonic() - first))
                self.assertEqual(fd_count(worker), base + self.N)
                self.assertTrue(all(c.t_eof is None for c in fl.clients))
                # New clients are served promptly meanwhile.
                for i in range(10):
                    resp, took = timed_get(h.port)
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(resp.body, GREETING)
                    self.assertLess(took, 0.5, "request %d took %.2fs"
                                    % (i, took))
                self.assertLess(time.monotonic() - first, self.KEEPALIVE,
                                "too slow to ask during the idle time")
                self.assertTrue(all(c.t_eof is None for c in fl.clients),
                                "idle connections closed early")
                # The server closes each at keepalive_timeout.
                fl.wait(lambda: all(c.t_eof is not None
                                    for c in fl.clients),
                        self.KEEPALIVE + 5.0, "all idle connections to be "
                        "closed")
                # Idle from the response (which the server sent after
                # the request and before the client read it).
                early = min(c.t_eof - c.t_sent for c in fl.clients)
                idle = [c.t_eof - c.t_resp for c in fl.clients]
                self.assertGreater(early, self.KEEPALIVE - 0.05,
                                   "closed early")
                self.assertLess(max(idle), self.KEEPALIVE + 1.5,
                                "closed late")
                self.assertEqual([c.rest for c in fl.clients
                                  if c.rest], [])
                print("\n  10,000 idle (daemon RLIMIT_NOFILE %d): connect "
                      "%.2fs, requests %.2fs, closed %.2f-%.2fs after the "
                      "response was read" % (nofile, t_open, t_req,
                                             min(idle), max(idle)))
            wait_fds(self, worker, base)
            resp, _ = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            finish(self, h, worker)


class Slowloris(unittest.TestCase):
    """Case 25 at scale: 1,000 slowloris connections against async."""

    N = 1000
    HEADER_TIMEOUT = 1.0
    MARGIN = 0.75
    PART = b"GET / HTTP/1.1\r\nHost: slow\r\nX-Slow: "

    def setUp(self):
        if not own_nofile(self.N + 500):
            self.skipTest("cannot raise RLIMIT_NOFILE")

    def test_case25_1000_slowloris(self):
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "header_timeout = 1s\nmax_connections = 5000\n",
                          nofile=10000)
        with h:
            base = quiet_fd_count(worker)
            normal = []          # (start, seconds, ok)
            errors = []

            def normal_clients():
                try:
                    for i in range(20):
                        t = time.monotonic()
                        resp, took = timed_get(h.port)
                        normal.append((t, took, resp.status == 200 and
                                       resp.body == GREETING))
                        time.sleep(0.02)
                except Exception as e:         # reported by the main thread
                    errors.append(repr(e))

            with Flood(h.port) as fl:
                fl.open(self.N, data=self.PART, batch=250)
                self.assertTrue(all(c.t_sent for c in fl.clients))
                th = threading.Thread(target=normal_clients, daemon=True)
                th.start()
                # One byte every 300 ms on each open connection.
                next_tick = time.monotonic() + 0.3
                deadline = (max(c.t_sent for c in fl.clients) +
                            self.HEADER_TIMEOUT + 3.0)
                trickled = 0
                while (any(c.registered for c in fl.clients) and
                       time.monotonic() < deadline):
                    fl.pump(max(0.0, min(0.05,
                                         next_tick - time.monotonic())))
                    if time.monotonic() >= next_tick:
                        next_tick += 0.3
                        for c in fl.clients:
                            if c.registered:
                                try:
                                    c.sock.send(b"s")
                                    trickled += 1
                                except (BrokenPipeError,
                                        ConnectionResetError,
                                        BlockingIOError):
                                    pass
                th.join(10.0)
                self.assertFalse(th.is_alive())
                self.assertEqual(errors, [])
                still = sum(c.registered for c in fl.clients)
                self.assertEqual(still, 0, "%d slowloris connections still "
                                 "open" % still)
                # Closed (no response, or a 408) at header_timeout.
                self.assertEqual([c.rest or c.buf for c in fl.clients
                                  if c.resp is None and c.buf], [])
                self.assertEqual([c.resp[0] for c in fl.clients
                                  if c.resp is not None and
                                  c.resp[0] != 408], [])
                took = [c.t_eof - c.t_sent for c in fl.clients]
                self.assertGreater(min(took), self.HEADER_TIMEOUT - 0.2,
                                   "closed early")
                self.assertLess(max(took), self.HEADER_TIMEOUT + self.MARGIN,
                                "closed late")
                self.assertGreaterEqual(trickled, 2 * self.N,
                                        "the clients did not trickle")
                # The normal clients ran during the attack, promptly.
                self.assertEqual(len(normal), 20)
                self.assertTrue(all(ok for _, _, ok in normal))
                slow = [round(t, 3) for _, t, _ in normal if t >= 0.3]
                self.assertEqual(slow, [], "slow answers beside slowloris")
                last_close = max(c.t_eof for c in fl.clients)
                first_close = min(c.t_eof for c in fl.clients)
                during = sum(t < first_close for t, _, _ in normal)
                self.assertGreaterEqual(during, 10, "only %d normal "
                                        "requests during the attack"
                                        % during)
                self.assertLess(max(t + d for t, d, _ in normal), last_close)
                print("\n  slowloris closed after %.2f-%.2fs; normal "
                      "requests: %d during the attack, max %.3fs"
                      % (min(took), max(took), during,
                         max(d for _, d, _ in normal)))
            wait_fds(self, worker, base)
            finish(self, h, worker)


class ResetAndHalfClose(unittest.TestCase):
    """Cases 9 and 10 at scale: no dead worker, no leaked descriptor or
    memory."""

    N = 1000
    # About half of a 7 KiB request head: the worker must hold it.
    HALF = (b"GET / HTTP/1.1\r\nHost: reset\r\nX-Pad: " + b"p" * 3500)

    def setUp(self):
        if not own_nofile(self.N + 500):
            self.skipTest("cannot raise RLIMIT_NOFILE")

    def test_case09_case10_1000_resets_1000_half_closes(self):
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "keepalive_timeout = 10s\nheader_timeout = 10s\n")
        self.h = h
        with h:
            base = quiet_fd_count(worker)
            # The first round leaves the allocator with a few MiB of
            # freed input buffers; leaks show from the second on.
            self.resets_and_half_closes(worker, base)
            rss = vm_rss_kib(worker)
            self.resets_and_half_closes(worker, base)
            grown = vm_rss_kib(worker) - rss
            if not ht.SANITIZERS:   # ASan keeps freed memory quarantined
                self.assertLess(grown, 2048, "VmRSS grew by %d KiB" % grown)
            resp, took = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            self.assertLess(took, 0.5)
            self.assertEqual(ht.log_problems(h.log()), [])
            finish(self, h, worker)

    def resets_and_half_closes(self, worker, base):
        # Half a request each, all held by the worker, then RST.
        with Flood(self.h.port) as fl:
            fl.open(self.N, data=self.HALF)
            ht.wait_for(lambda: fd_count(worker) == base + self.N,
                        10.0, what="the worker to hold %d" % self.N)
            fl.pump(0.05)
            self.assertEqual([c.nbytes for c in fl.clients if c.nbytes], [])
            for c in fl.clients:
                fl.reset_close(c)
        wait_fds(self, worker, base)
        # A complete request, then SHUT_WR: the 200 still arrives.
        with Flood(self.h.port) as fl:
            for c in fl.open(self.N, data=KEEP):
                c.sock.shutdown(socket.SHUT_WR)
            fl.wait(lambda: all(not c.registered for c in fl.clients),
                    20.0, "answers and EOF on the half-closed ones")
            self.assertEqual(sum(c.ok() for c in fl.clients), self.N)
            self.assertEqual(sum(c.reset for c in fl.clients), 0)
            self.assertEqual([c.rest for c in fl.clients if c.rest], [])
        wait_fds(self, worker, base)

    def test_case10_resets_mid_response(self):
        # 8 MiB answers to clients that do not read: more than the socket
        # buffers take (tcp_wmem max 4 MiB by default), so the worker
        # holds each unsent rest (about 4 MiB) when the client resets.
        # A fixed glibc mmap threshold: each rest is mapped and unmapped,
        # so VmRSS measures leaks, not how the heap happened to fragment.
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "body_padding = 8m\n",
                          env={"MALLOC_MMAP_THRESHOLD_": "131072"})
        with h:
            base = quiet_fd_count(worker)
            rss = None
            for rnd in range(3):
                if rnd == 1:
                    rss = vm_rss_kib(worker)    # after a warm-up round
                with Flood(h.port) as fl:
                    fl.open(40, data=CLOSE, read=False)
                    ht.wait_for(lambda: all(fl.readable(c)
                                            for c in fl.clients),
                                20.0, what="each answer to begin")
                    self.assertEqual(ht.tcp_connections([worker]), 40,
                                     "answers not pending in the worker")
                    for c in fl.clients:
                        fl.reset_close(c)
                wait_fds(self, worker, base)
            grown = vm_rss_kib(worker) - rss
            if not ht.SANITIZERS:   # ASan keeps freed memory quarantined
                self.assertLess(grown, 2048, "VmRSS grew by %d KiB" % grown)
            resp, _ = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            self.assertEqual(len(resp.body), len(GREETING) + 8 * 1024 * 1024)
            self.assertEqual(ht.log_problems(h.log()), [])
            finish(self, h, worker)

    def test_case10_unsent_padding_is_not_copied(self):
        # 40 clients that do not read an 8 MiB answer: the worker keeps
        # only where each one is, and sends the padding from one shared
        # buffer of spaces, so its memory does not grow with the unsent
        # bytes (40 x ~4 MiB if it copied them).
        h, worker = start(self, "[server]\nworkers = 1\n[http]\n"
                          "body_padding = 8m\n")
        with h:
            base = quiet_fd_count(worker)
            rss = vm_rss_kib(worker)
            with Flood(h.port) as fl:
                fl.open(40, data=CLOSE, read=False)
                ht.wait_for(lambda: all(fl.readable(c)
                                        for c in fl.clients),
                            20.0, what="each answer to begin")
                self.assertEqual(ht.tcp_connections([worker]), 40)
                grown = vm_rss_kib(worker) - rss
                if not ht.SANITIZERS:
                    self.assertLess(grown, 4096,
                                    "VmRSS grew by %d KiB" % grown)
                for c in fl.clients:
                    fl.reset_close(c)
            wait_fds(self, worker, base)
            finish(self, h, worker)


# --- the same on the uring workers ---

for _case in (Emfile, MaxConnections, ReclaimIdle, TenThousandIdle, Slowloris,
              ResetAndHalfClose):
    globals()["Uring" + _case.__name__] = type(
        "Uring" + _case.__name__, (_case,), {"MODE": "uring"})
del _case


class SyncMode(unittest.TestCase):
    """The blocking worker under the same abuse."""

    def setUp(self):
        if not own_nofile(1000):
            self.skipTest("cannot raise RLIMIT_NOFILE")

    def test_case27_sync_emfile_no_busy_loop(self):
        h, worker = start(self, "[server]\nmode = sync\n[http]\n"
                          "header_timeout = 10s\n", nofile=64)
        with h:
            base = quiet_fd_count(worker)
            # One connection at a time never exhausts 64 descriptors:
            # 200 queued clients are all served.
            with Flood(h.port) as fl:
                fl.open(200, data=CLOSE)
                fl.wait(lambda: all(not c.registered for c in fl.clients),
                        20.0, "200 answers")
                self.assertEqual(sum(c.ok() for c in fl.clients), 200)
            wait_fds(self, worker, base)
            # No free descriptor below the limit: accept4() fails.
            nums = set(fd_numbers(worker))
            lowest_free = min(set(range(len(nums) + 1)) - nums)
            resource.prlimit(worker, resource.RLIMIT_NOFILE,
                             (lowest_free, 64))
            with Flood(h.port) as fl:
                fl.open(20, data=CLOSE)
                h.wait_log(SYNC_EMFILE_LOG, timeout=5.0)
                logged = len(re.findall(SYNC_EMFILE_LOG, h.log()))
                share = cpu_share(worker, 1.0, fl.pump)
                self.assertLess(share, 0.3, "sync worker spins on EMFILE: "
                                "%.0f%% of a CPU" % (share * 100))
                retries = len(re.findall(SYNC_EMFILE_LOG, h.log())) - logged
                self.assertEqual(retries, 0, "logged again while failing")
                self.assertEqual([c.nbytes for c in fl.clients
                                  if c.nbytes], [])
                # Descriptors again: the waiting clients are served.
                resource.prlimit(worker, resource.RLIMIT_NOFILE, (64, 64))
                fl.wait(lambda: all(not c.registered for c in fl.clients),
                        10.0, "the waiting clients' answers")
                self.assertEqual(sum(c.ok() for c in fl.clients), 20)
                h.wait_log(RECOVERED_LOG, timeout=5.0)
            resp, took = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            self.assertLess(took, 1.0)
            wait_fds(self, worker, base)
            finish(self, h, worker)

    def test_case10_sync_resets(self):
        h, worker = start(self, "[server]\nmode = sync\n[http]\n"
                          "header_timeout = 10s\nbody_padding = 8m\n")
        with h:
            base = quiet_fd_count(worker)
            # Mid-request: queued clients send half a request and reset.
            with Flood(h.port) as fl:
                fl.open(200, data=ResetAndHalfClose.HALF)
                for c in fl.clients:
                    fl.reset_close(c)
            resp, _ = timed_get(h.port)
            self.assertEqual(resp.status, 200)
            wait_fds(self, worker, base)
            rss = vm_rss_kib(worker)
            # Mid-response: the worker is blocked writing 8 MiB (more
            # than the socket buffers take) when the client resets.
            for i in range(20):
                s = ht.connect(HOST, h.port)
                s.sendall(CLOSE)
                self.assertTrue(s.recv(1, socket.MSG_PEEK))
                ht.wait_for(lambda: ht.tcp_connections([worker]) == 1, 5.0,
                            what="the worker to hold the connection")
                ht.reset_close(s)
            # Half-close after a complete request: the answer arrives.
            for i in range(20):
                with ht.connect(HOST, h.port) as s:
                    s.sendall(KEEP)
                    s.shutdown(socket.SHUT_WR)
                    r = ht.Reader(s)
                    resp = r.response()
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(resp.body[:len(GREETING)], GREETING)
                    self.assertEqual(len(resp.body),
                                     len(GREETING) + 8 * 1024 * 1024)
                    self.assertTrue(r.closed(5.0))
                    self.assertEqual(r.buf, b"")
            wait_fds(self, worker, base)
            grown = vm_rss_kib(worker) - rss
            if not ht.SANITIZERS:   # ASan keeps freed memory quarantined
                self.assertLess(grown, 2048, "VmRSS grew by %d KiB" % grown)
            self.assertEqual(ht.log_problems(h.log()), [])
            finish(self, h, worker)


if __name__ == "__main__":
    hellodtest.main()
