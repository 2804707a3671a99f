#!/usr/bin/env python3
"""The status server ([status] listen): its routes and limits, exact
counters across a worker's death, a reload and an upgrade in place (async
and sync), the listen queue, drain_notice and /healthz during reloads,
HAProxy's agent-check answers, a real Prometheus server and promtool, and
the status page in headless Chromium.  Prometheus, promtool, ab and Chromium are optional: the tests
that need them are skipped without them."""

import base64
import fcntl
import html.parser
import json
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
import unittest
import urllib.parse
import urllib.request

import hellodtest as ht
from hellodtest import Reader, connect, free_port, wait_for

HOST = "127.0.0.1"
GREETING = ht.greeting(HOST)
SRCDIR = os.environ.get("SRCDIR") or os.path.normpath(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))

GET = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"
GET_CLOSE = b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
POST = (b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n"
        b"Connection: close\r\n\r\nhello")
# Each is answered 400 by the greeting workers (HTTP-CASES.md 12, 17, 18,
# 22) and by the status server.
MALFORMED = [
    b"G(T / HTTP/1.1\r\nHost: t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : t\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1x\r\n\r\n",
]

SAMPLE_RE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")
LABEL_RE = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


# --- Talking to the status server ---

def request(port, data, head=False, timeout=5.0):
    """Sends data on a new connection to port; returns the response and
    asserts that nothing follows it before the server closes."""
    with connect(HOST, port, timeout) as s:
        s.sendall(data)
        r = Reader(s)
        resp = r.response(head)
        if resp is None:
            raise AssertionError("no response to %r" % data[:80])
        rest, _ = ht.wait_eof(s, timeout)
        if r.buf + rest:
            raise AssertionError("bytes after the response to %r: %r"
                                 % (data[:80], (r.buf + rest)[:200]))
        return resp


def status_get(port, path, method="GET", timeout=5.0):
    return request(port, ("%s %s HTTP/1.1\r\nHost: status\r\n\r\n"
                          % (method, path)).encode(),
                   head=method == "HEAD", timeout=timeout)


class Metrics:
    """One scrape of /metrics: samples by series ("name{labels}" as
    rendered) and the TYPE of every family."""

    def __init__(self, text):
        self.text = text
        self.samples = {}
        self.types = {}
        for line in text.splitlines():
            if line.startswith("# TYPE "):
                _, _, name, typ = line.split(" ")
                self.types[name] = typ
                continue
            if line.startswith("#") or not line:
                continue
            m = SAMPLE_RE.match(line)
            if not m:
                raise AssertionError("bad sample line %r" % line)
            key = m.group(1) + (m.group(2) or "")
            if key in self.samples:
                raise AssertionError("series twice: %r" % key)
            self.samples[key] = float(m.group(3))

    def get(self, name, **labels):
        """The value of the series name{labels} (labels in any order)."""
        want = sorted(labels.items())
        for key, v in self.samples.items():
            n, _, rest = key.partition("{")
            if n == name and sorted(LABEL_RE.findall(rest)) == want:
                return v
        raise KeyError("%s%r not in the scrape" % (name, labels))

    def family(self, name):
        """{labels as a sorted tuple: value} of one family."""
        out = {}
        for key, v in self.samples.items():
            n, _, rest = key.partition("{")
            if n == name:
                out[tuple(sorted(LABEL_RE.findall(rest)))] = v
        return out

    def counters(self):
        """Series of the counter and histogram families that must never
        decrease; the per-worker families restart with their worker."""
        out = {}
        for key, v in self.samples.items():
            name = key.partition("{")[0]
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            typ = self.types.get(name) or self.types.get(base)
            if typ in ("counter", "histogram") and \
                    not name.startswith("hellod_worker_"):
                out[key] = v
        return out

    def code(self, code):
        return self.get("hellod_http_requests_total", code=str(code))

    def requests(self):
        return sum(self.family("hellod_http_requests_total").values())


def scrape(port, timeout=5.0):
    resp = status_get(port, "/metrics", timeout=timeout)
    if resp.status != 200:
        raise AssertionError("/metrics answered %r" % resp.raw[:200])
    return Metrics(resp.body.decode("utf-8"))


def status_json(port, timeout=5.0):
    resp = status_get(port, "/status.json", timeout=timeout)
    if resp.status != 200:
        raise AssertionError("/status.json answered %r" % resp.raw[:200])
    return json.loads(resp.body.decode("utf-8"))


def health(port, timeout=5.0):
    resp = status_get(port, "/healthz", timeout=timeout)
    return resp.status, resp.body


def wait_idle(port, timeout=5.0):
    """Until no greeting connection is open: a worker closing one lingers
    a moment after the client saw the end of its response."""
    wait_for(lambda: sum(scrape(port).family(
        "hellod_connections").values()) == 0, timeout,
        what="no connection left open")


def assert_monotonic(test, before, after, what=""):
    """No counter of `before` (a Metrics) is missing or lower in
    `after`."""
    b, a = before.counters(), after.counters()
    test.assertTrue(b, "no counters in the scrape")
    for key, v in b.items():
        test.assertIn(key, a, "%s: %s disappeared" % (what, key))
        test.assertGreaterEqual(a[key], v, "%s: %s went from %s to %s"
                                % (what, key, v, a[key]))


# --- Starting hellod with a status listener ---

class Server:
    """hellod with a greeting listener (port) and a status listener
    (sport).  Ready once /healthz says ok and `workers` workers serve, as
    seen by the status server: no greeting request is made, so every
    counter starts at 0.  add_cleanup: a test's addCleanup or a class's
    addClassCleanup."""

    def __init__(self, add_cleanup, conf="", status_conf="", args=(),
                 workers=1, exe=None):
        self.port = free_port()
        self.sport = free_port()
        self.workers = workers
        text = ("[server]\nlisten = %s:%d\nworkers = %d\n%s\n"
                "[status]\nlisten = %s:%d\n%s\n"
                % (HOST, self.port, workers, conf, HOST, self.sport,
                   status_conf))
        saved = ht.HELLOD
        if exe is not None:
            ht.HELLOD = exe
        try:
            self.h = ht.Hellod(text, args=args, port=self.port, ready=False)
        finally:
            ht.HELLOD = saved
        add_cleanup(self.h.close)
        self.wait_serving()

    def wait_serving(self, generation=None, timeout=10.0):
        # Until a generation's workers have all reported, the figure of
        # the one before it may stand: its workers must have logged that
        # they serve, which they do after their report.
        logged = r"worker \d+ serving \(generation %s," % generation

        def up():
            if self.h.proc.poll() is not None:
                raise AssertionError("hellod exited with %s:\n%s"
                                     % (self.h.proc.returncode,
                                        self.h.log()))
            if generation is not None and len(re.findall(
                    logged, self.h.log())) < self.workers:
                return False
            try:
                if health(self.sport, 1.0) != (200, b"ok\n"):
                    return False
                s = status_json(self.sport, 1.0)
            except (OSError, AssertionError):
                return False
            return s["workers_serving"] == self.workers and \
                len(s["workers"]) == self.workers and \
                all(w["pid"] > 0 for w in s["workers"]) and \
                (generation is None or s["generation"] == generation)
        wait_for(up, timeout, what="%d workers serving (generation %s)"
                 % (self.workers, generation))

    def log(self):
        return self.h.log()


class BoundedLoad(ht.LoadGenerator):
    """LoadGenerator that stops by itself after max_requests answers or
    max_seconds, whichever comes first."""

    def __init__(self, host, port, max_requests, max_seconds, **kw):
        super().__init__(host, port, **kw)
        self.max_requests = max_requests
        self.timer = threading.Timer(max_seconds, self.stopping.set)
        self.timer.daemon = True

    def start(self):
        self.timer.start()
        return super().start()

    def stop(self, timeout=None):
        self.timer.cancel()
        super().stop(timeout)

    def _count(self, attr):
        super()._count(attr)
        if self.ok >= self.max_requests:
            self.stopping.set()


class Traffic:
    """Greeting requests sent one connection at a time or pipelined, with
    every response checked; counts what the server must have counted."""

    def __init__(self, test, port):
        self.test = test
        self.port = port
        self.codes = {}
        self.bytes = 0
        self.connections = 0

    def _took(self, resps):
        self.connections += 1
        for r in resps:
            self.codes[r.status] = self.codes.get(r.status, 0) + 1
            self.bytes += len(r.raw)

    def gets(self, n, per_conn=1):
        """n GETs, per_conn pipelined on each connection."""
        while n > 0:
            k = min(n, per_conn)
            resps, rest = ht.exchange_all(GET * (k - 1) + GET_CLOSE,
                                          HOST, self.port)
            self.test.assertEqual(rest, b"")
            self.test.assertEqual(len(resps), k)
            for r in resps:
                self.test.assertEqual(r.status, 200, r.raw[:200])
                self.test.assertEqual(r.body, GREETING)
            self._took(resps)
            n -= k

    def posts(self, n):
        for _ in range(n):
            resps, _ = ht.exchange_all(POST, HOST, self.port)
            self.test.assertEqual([r.status for r in resps], [405])
            self._took(resps)

    def malformed(self, which):
        for data in which:
            resps, _ = ht.exchange_all(data, HOST, self.port)
            self.test.assertEqual([r.status for r in resps], [400],
                                  "%r: %r" % (data, resps and
                                              resps[0].raw[:200]))
            self._took(resps)


class Scraper:
    """A thread scraping /metrics back to back (at most max_scrapes, at
    most max_seconds) to check that no counter ever decreases and that
    the status server never fails to answer, whatever happens meanwhile."""

    def __init__(self, port, max_scrapes=3000, max_seconds=60.0):
        self.port = port
        self.max_scrapes = max_scrapes
        self.deadline = time.monotonic() + max_seconds
        self.stopping = threading.Event()
        self.scrapes = []
        self.errors = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopping.is_set() and \
                len(self.scrapes) < self.max_scrapes and \
                time.monotonic() < self.deadline:
            try:
                self.scrapes.append(scrape(self.port))
            except (OSError, AssertionError, ValueError) as e:
                self.errors.append(repr(e))
            self.stopping.wait(0.002)

    def __enter__(self):
        self.thread.start()
        self.wait_more(2)
        return self

    def wait_more(self, n):
        """Until n more scrapes are done (around an event)."""
        target = len(self.scrapes) + n
        wait_for(lambda: len(self.scrapes) >= target or self.errors, 10.0,
                 what="%d more background scrapes" % n)

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10.0)

    def check(self, test):
        test.assertFalse(self.thread.is_alive(), "the scraper did not stop")
        test.assertEqual(self.errors, [], "failed scrapes")
        test.assertGreater(len(self.scrapes), 10, "too few scrapes")
        for i in range(1, len(self.scrapes)):
            assert_monotonic(test, self.scrapes[i - 1], self.scrapes[i],
                             "background scrape %d" % i)


# --- 1. Routes and limits ---

class Routes(unittest.TestCase):
    """The status server's answers, on one server (async, 2 workers,
    header_timeout 1s)."""

    @classmethod
    def setUpClass(cls):
        cls.srv = Server(cls.addClassCleanup,
                         "[http]\nheader_timeout = 1s\n", workers=2)

    def test_metrics(self):
        resp = status_get(self.srv.sport, "/metrics")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.header("content-type").startswith(
            "text/plain; version=0.0.4"), resp.header("content-type"))
        self.assertEqual(resp.header("connection"), "close")
        self.assertEqual(resp.header("cache-control"), "no-store")
        m = Metrics(resp.body.decode("utf-8"))
        for name in ("hellod_http_requests_total",
                     "hellod_http_response_bytes_total",
                     "hellod_connections_accepted_total",
                     "hellod_connections", "hellod_worker_http_requests_total",
                     "hellod_accept_pauses_total",
                     "hellod_http_request_duration_seconds",
                     "hellod_listen_queue_length",
                     "hellod_listen_queue_limit",
                     "hellod_worker_restarts_total", "hellod_reloads_total",
                     "hellod_reload_failures_total",
                     "hellod_config_generation",
                     "hellod_start_time_seconds", "hellod_workers",
                     "hellod_workers_serving", "hellod_draining",
                     "hellod_build_info"):
            self.assertIn(name, m.types)
        self.assertEqual(m.get("hellod_workers"), 2)
        self.assertEqual(m.get("hellod_workers_serving"), 2)
        self.assertEqual(m.get("hellod_draining"), 0)
        self.assertEqual(m.get("hellod_config_generation"), 1)
        self.assertEqual(len(m.family("hellod_worker_http_requests_total")),
                         2)
        # One listen queue per SO_REUSEPORT socket of the greeting address.
        listener = "%s:%d" % (HOST, self.srv.port)
        self.assertEqual(sorted(m.family("hellod_listen_queue_limit")),
                         [(("listener", listener), ("socket", "0")),
                          (("listener", listener), ("socket", "1"))])
        info = m.family("hellod_build_info")
        self.assertEqual(len(info), 1, info)
        (labels, v), = info.items()
        labels = dict(labels)
        self.assertEqual((labels["mode"], v), ("async", 1))
        self.assertRegex(labels["version"], r"^\d+\.\d+")
        start = m.get("hellod_start_time_seconds")
        self.assertLess(abs(start - time.time()), 120)

    def test_status_json(self):
        resp = status_get(self.srv.sport, "/status.json")
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.header("content-type"), "application/json")
        s = json.loads(resp.body.decode("utf-8"))
        self.assertEqual(s["mode"], "async")
        self.assertEqual(s["generation"], 1)
        self.assertIs(s["draining"], False)
        self.assertEqual(s["workers_configured"], 2)
        self.assertEqual(s["workers_serving"], 2)
        self.assertEqual([w["worker"] for w in s["workers"]], [0, 1])
        # The master's children: the two workers and the status server.
        children = self.srv.h.worker_pids()
        self.assertEqual(len(children), 3)
        for w in s["workers"]:
            self.assertIn(w["pid"], children)
        self.assertEqual(len(s["listeners"]), 2)
        self.assertEqual([li["kind"] for li in s["listeners"]],
                         ["plain", "plain"])

    def test_json_has_the_figures_of_metrics(self):
        t = Traffic(self, self.srv.port)
        t.gets(12, per_conn=4)
        t.posts(2)
        t.malformed(MALFORMED[:1])
        # Quiet, so that the gauges hold still between the two readings.
        wait_idle(self.srv.sport)
        m = scrape(self.srv.sport)
        s = status_json(self.srv.sport)
        tot = s["totals"]
        for code, n in tot["requests_by_code"].items():
            self.assertEqual(m.code(code), n, code)
        self.assertEqual(tot["requests"], m.requests())
        self.assertEqual(tot["response_bytes"],
                         m.get("hellod_http_response_bytes_total"))
        self.assertEqual(tot["connections_accepted"],
                         m.get("hellod_connections_accepted_total"))
        for reason, n in tot["accept_pauses"].items():
            self.assertEqual(m.get("hellod_accept_pauses_total",
                                   reason=reason), n)
        for state, n in tot["connections"].items():
            self.assertEqual(m.get("hellod_connections", state=state), n)
        d = tot["request_duration_seconds"]
        self.assertEqual(d["count"], m.get(
            "hellod_http_request_duration_seconds_count"))
        self.assertAlmostEqual(d["sum"], m.get(
            "hellod_http_request_duration_seconds_sum"), places=9)
        for le, n in d["buckets"].items():
            self.assertEqual(m.get(
                "hellod_http_request_duration_seconds_bucket", le=le), n)
        self.assertEqual(s["start_time_seconds"],
                         m.get("hellod_start_time_seconds"))
        self.assertEqual(s["generation"], m.get("hellod_config_generation"))
        self.assertEqual(s["worker_restarts"],
                         m.get("hellod_worker_restarts_total"))
        self.assertEqual(s["reloads"], m.get("hellod_reloads_total"))
        self.assertEqual(s["reload_failures"],
                         m.get("hellod_reload_failures_total"))
        for w in s["workers"]:
            self.assertEqual(w["requests"], m.get(
                "hellod_worker_http_requests_total", worker=str(w["worker"])))
            self.assertEqual(w["connections_accepted"], m.get(
                "hellod_worker_connections_accepted_total",
                worker=str(w["worker"])))
        for li in s["listeners"]:
            labels = dict(listener=li["listener"], socket=str(li["socket"]))
            self.assertEqual(li["queue_length"], m.get(
                "hellod_listen_queue_length", **labels))
            self.assertEqual(li["queue_limit"], m.get(
                "hellod_listen_queue_limit", **labels))

    def test_page(self):
        resp = status_get(self.srv.sport, "/")
        self.assertEqual(resp.status, 200)
        self.assertTrue(resp.header("content-type").startswith("text/html"))
        page = resp.body.decode("utf-8")
        self.assertTrue(page.startswith("<!DOCTYPE html>"))
        for needle in ("id='total-rps'", "id='total-requests'",
                       "id='workers'", "'worker-rps'", "/status.json"):
            self.assertIn(needle, page)

    def test_healthz(self):
        resp = status_get(self.srv.sport, "/healthz")
        self.assertEqual((resp.status, resp.body), (200, b"ok\n"))
        self.assertTrue(resp.header("content-type").startswith(
            "text/plain"))

    def test_errors(self):
        for path in ("/nope", "/metrics/", "/healthz/x", "/status",
                     "//metrics"):
            resp = status_get(self.srv.sport, path)
            self.assertEqual(resp.status, 404, path)
        # A query does not change the route.
        self.assertEqual(status_get(self.srv.sport,
                                    "/healthz?x=1").status, 200)
        for path in ("/metrics", "/healthz", "/"):
            resp = status_get(self.srv.sport, path, method="POST")
            self.assertEqual(resp.status, 405, path)
            self.assertEqual(resp.header("allow"), "GET, HEAD")
        for data in MALFORMED + [b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc"
                                 b"\x03\x03garbage\r\n\r\n"]:
            data = data.replace(b"GET / ", b"GET /metrics ")
            resp = request(self.srv.sport, data)
            self.assertEqual(resp.status, 400, data)
        big = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX: " + b"x" * 9000 + \
            b"\r\n\r\n"
        self.assertEqual(request(self.srv.sport, big).status, 431)

    def test_head(self):
        for path, typ in (("/metrics", "text/plain; version=0.0.4"),
                          ("/status.json", "application/json"),
                          ("/", "text/html"), ("/healthz", "text/plain")):
            h = status_get(self.srv.sport, path, method="HEAD")
            self.assertEqual(h.status, 200, path)
            self.assertEqual(h.body, b"")
            self.assertTrue(h.header("content-type").startswith(typ))
            self.assertGreater(int(h.header("content-length")), 0)
        g = status_get(self.srv.sport, "/")
        h = status_get(self.srv.sport, "/", method="HEAD")
        self.assertEqual(int(h.header("content-length")), len(g.body))
        h = status_get(self.srv.sport, "/healthz", method="HEAD")
        self.assertEqual(h.header("content-length"), "3")
        self.assertEqual(status_get(self.srv.sport, "/nope",
                                    method="HEAD").status, 404)

    def test_status_requests_not_counted(self):
        before = scrape(self.srv.sport)
        for path in ("/metrics", "/status.json", "/", "/healthz", "/nope"):
            for method in ("GET", "HEAD", "POST"):
                status_get(self.srv.sport, path, method=method)
        request(self.srv.sport, MALFORMED[0])
        after = scrape(self.srv.sport)
        self.assertEqual(before.counters(), after.counters())
        self.assertEqual(
            before.family("hellod_worker_http_requests_total"),
            after.family("hellod_worker_http_requests_total"))
        # The greeting requests are.
        t = Traffic(self, self.srv.port)
        t.gets(3)
        self.assertEqual(scrape(self.srv.sport).code(200),
                         before.code(200) + 3)

    def test_slowloris_closed_at_header_timeout(self):
        data = b"GET /metrics HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"s" * 100
        with connect(HOST, self.srv.sport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            got = None
            # One byte every 50 ms; at most len(data) bytes, about 5 s.
            for i in range(len(data)):
                try:
                    s.sendall(data[i:i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    got = b""
                    break
                s.settimeout(0.05)
                try:
                    chunk = s.recv(4096)
                except socket.timeout:
                    continue
                except ConnectionResetError:
                    chunk = b""
                rest, _ = ht.wait_eof(s, 2.0) if chunk else (b"", 0)
                got = chunk + rest
                break
            took = time.monotonic() - start
        self.assertIsNotNone(got, "the slow client was never closed")
        self.assertGreater(i, 3)
        self.assertGreaterEqual(took, 0.9, "closed too early")
        self.assertLess(took, 2.0, "closed too late")
        self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 408 "),
                        got[:200])
        # And it still serves.
        self.assertEqual(health(self.srv.sport), (200, b"ok\n"))


class SilentClients(unittest.TestCase):
    """1,000 connections held open on the status listener, half silent
    and half trickling a head, never keep /healthz from answering: a
    balancer's health check gets its answer within 100 ms."""

    N = 1000

    def test_healthz_answers_beside_1000_idle_connections(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard < self.N + 200:
            self.skipTest("RLIMIT_NOFILE hard limit %d" % hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        self.addCleanup(resource.setrlimit, resource.RLIMIT_NOFILE,
                        (soft, hard))
        srv = Server(self.addCleanup, "[http]\nheader_timeout = 60s\n")
        held = []
        self.addCleanup(lambda: [s.close() for s in held])
        for i in range(self.N):
            s = socket.create_connection((HOST, srv.sport), timeout=5.0)
            if i % 2:
                s.sendall(b"GET /metrics HTTP/1.1\r\nHost: t\r\n")
            held.append(s)
        worst = 0.0
        for i in range(10):
            t = time.monotonic()
            self.assertEqual(health(srv.sport), (200, b"ok\n"))
            worst = max(worst, time.monotonic() - t)
        self.assertLess(worst, 0.1, "/healthz took %.3fs" % worst)
        # The greeting is unaffected, and the server is still whole.
        self.assertEqual(ht.get(HOST, srv.port).status, 200)
        self.assertEqual(srv.h.stop(), 0)


class StuckSyncWorker(unittest.TestCase):

    def test_status_answers_while_the_sync_worker_is_stuck(self):
        srv = Server(self.addCleanup, "[http]\nheader_timeout = 5s\n",
                     args=["--sync"])
        with connect(HOST, srv.port) as stuck:
            # The one worker took the silent client and waits for its
            # head.
            wait_for(lambda: scrape(srv.sport).get(
                "hellod_connections", state="reading") == 1, 3.0,
                what="the worker to hold the silent client")
            for path in ("/healthz", "/metrics", "/status.json", "/"):
                t = time.monotonic()
                resp = status_get(srv.sport, path, timeout=1.0)
                took = time.monotonic() - t
                self.assertEqual(resp.status, 200, path)
                self.assertLess(took, 1.0, path)
            self.assertEqual(health(srv.sport), (200, b"ok\n"))
            m = scrape(srv.sport)
            self.assertEqual(m.get("hellod_worker_connections", worker="0",
                                   state="reading"), 1)
            # A greeting client waits meanwhile in the listen queue.
            with connect(HOST, srv.port) as waiting:
                waiting.sendall(GET_CLOSE)
                wait_for(lambda: scrape(srv.sport).get(
                    "hellod_listen_queue_length",
                    listener="%s:%d" % (HOST, srv.port), socket="0") == 1,
                    3.0, what="the second client in the listen queue")
                stuck.close()
                resp = Reader(waiting).response()
                self.assertEqual(resp.status, 200)
        self.assertEqual(srv.h.stop(), 0, srv.log())


# --- 2. Exact counts across a respawn, a reload and an upgrade ---

class CountCases:
    ARGS = ()
    WORKERS = 2
    MODE = "async"

    def setUp(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        # The master runs from a copy, replaced before SIGUSR2.
        self.exe = os.path.join(d.name, "hellod")
        shutil.copy2(ht.HELLOD, self.exe)

    def replace_exe(self):
        tmp = self.exe + ".new"
        shutil.copy2(ht.HELLOD, tmp)
        os.rename(tmp, self.exe)

    def scrape_after(self, srv, last, what):
        m = scrape(srv.sport)
        assert_monotonic(self, last, m, what)
        return m

    def test_exact_counts(self):
        # keepalive_timeout is set for the sync mode too (its default
        # there is 0), so that requests are pipelined in both modes.
        srv = Server(self.addCleanup, "shutdown_timeout = 5s\n[http]\n"
                     "keepalive_timeout = 5s\n", args=self.ARGS,
                     workers=self.WORKERS, exe=self.exe)
        sport = srv.sport
        t = Traffic(self, srv.port)
        m = scrape(sport)
        self.assertEqual(m.requests(), 0)
        self.assertEqual(m.get("hellod_connections_accepted_total"), 0)
        self.assertEqual(m.family("hellod_build_info").popitem()[0][0],
                         ("mode", self.MODE))
        start_time = m.get("hellod_start_time_seconds")

        with Scraper(sport) as bg:
            t.gets(40)
            t.gets(40, per_conn=10)
            t.posts(3)
            t.malformed(MALFORMED[:2])
            m = self.scrape_after(srv, m, "before the kill")
            self.assertEqual(m.code(200), 80)

            # A worker dies and is respawned.
            s = status_json(sport)
            victim = s["workers"][0]["pid"]
            bg.wait_more(2)
            os.kill(victim, signal.SIGKILL)
            srv.h.wait_log(r"worker 0 \(pid %d\) killed by signal 9"
                           % victim)
            bg.wait_more(2)

            def respawned():
                s = status_json(sport)
                return s["worker_restarts"] == 1 and \
                    s["workers_serving"] == self.WORKERS and \
                    s["workers"][0]["pid"] not in (0, victim)
            wait_for(respawned, 10.0, what="worker 0 to be respawned")
            m = self.scrape_after(srv, m, "after the kill")
            self.assertEqual((m.code(200), m.code(405), m.code(400)),
                             (80, 3, 2))

            t.gets(30)
            t.gets(30, per_conn=15)
            t.posts(2)
            t.malformed(MALFORMED[2:3])
            m = self.scrape_after(srv, m, "before the reload")

            # A reload: a new generation, and a new status server.
            bg.wait_more(2)
            srv.h.kill(signal.SIGHUP)
            srv.h.wait_log(r"reloaded: generation 2, ")
            bg.wait_more(2)
            srv.wait_serving(generation=2)
            srv.h.wait_log(r"previous generation finished")
            m = self.scrape_after(srv, m, "after the reload")
            self.assertEqual((m.code(200), m.code(405), m.code(400)),
                             (140, 5, 3))
            self.assertEqual(sum(m.family(
                "hellod_worker_http_requests_total").values()), 0)

            t.gets(20)
            t.gets(40, per_conn=20)
            t.posts(2)
            t.malformed(MALFORMED[3:])
            m = self.scrape_after(srv, m, "after the last requests")
        bg.check(self)

        self.assertEqual(t.codes, {200: 200, 405: 7, 400: 5})
        by_code = {int(dict(k)["code"]): v for k, v in
                   m.family("hellod_http_requests_total").items() if v}
        self.assertEqual(by_code, {200: 200, 405: 7, 400: 5})
        self.assertEqual(m.get("hellod_worker_restarts_total"), 1)
        self.assertEqual(m.get("hellod_reloads_total"), 1)
        self.assertEqual(m.get("hellod_reload_failures_total"), 0)
        self.assertEqual(m.get("hellod_config_generation"), 2)
        self.assertEqual(m.get("hellod_workers"), self.WORKERS)
        self.assertEqual(m.get("hellod_workers_serving"), self.WORKERS)
        self.assertEqual(m.get("hellod_draining"), 0)
        self.assertEqual(m.get("hellod_start_time_seconds"), start_time)
        self.assertEqual(m.get("hellod_connections_accepted_total"),
                         t.connections)
        self.assertEqual(m.get("hellod_http_response_bytes_total"), t.bytes)
        self.assertEqual(m.get("hellod_http_request_duration_seconds_count"),
                         212)
        self.assertEqual(m.get("hellod_http_request_duration_seconds_bucket",
                               le="+Inf"), 212)
        wait_idle(sport)
        # The workers of generation 2 answered what came after the
        # reload.
        self.assertEqual(sum(m.family(
            "hellod_worker_http_requests_total").values()), 64)

        # An upgrade in place keeps every counter and the start time.
        before = m
        with Scraper(sport) as bg:
            self.replace_exe()
            bg.wait_more(2)
            srv.h.kill(signal.SIGUSR2)
            srv.h.wait_log(r"upgrade: executing ")
            bg.wait_more(2)
            srv.wait_serving(generation=3)
            srv.h.wait_log(r"previous generation finished", count=2)
            m = self.scrape_after(srv, before, "after the upgrade")
        bg.check(self)
        self.assertEqual(m.counters(), before.counters())
        self.assertEqual(m.get("hellod_start_time_seconds"), start_time)
        self.assertEqual(m.get("hellod_config_generation"), 3)
        self.assertEqual(m.get("hellod_worker_restarts_total"), 1)
        self.assertEqual(m.get("hellod_reloads_total"), 1)
        self.assertEqual(m.get("hellod_workers_serving"), self.WORKERS)
        self.assertEqual(sum(m.family(
            "hellod_worker_http_requests_total").values()), 0)
        # The new image counts on.
        t.gets(10)
        m = self.scrape_after(srv, m, "after the upgrade's requests")
        self.assertEqual(m.code(200), 210)
        self.assertEqual(m.get("hellod_http_response_bytes_total"), t.bytes)
        self.assertEqual(m.get("hellod_connections_accepted_total"),
                         t.connections)
        self.assertEqual(sum(m.family(
            "hellod_worker_http_requests_total").values()), 10)
        problems = ht.log_problems(srv.log())
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("worker 0 (pid %d) killed by signal 9" % victim,
                      problems[0])
        self.assertEqual(srv.h.stop(), 0, srv.log())


class AsyncCounts(CountCases, unittest.TestCase):
    pass


class UringCounts(CountCases, unittest.TestCase):
    ARGS = ("--uring",)
    MODE = "uring"


class SyncCounts(CountCases, unittest.TestCase):
    ARGS = ("--sync",)
    WORKERS = 1
    MODE = "sync"


# --- 3. The listen queue ---

class ListenQueue(unittest.TestCase):

    def test_queue_of_a_stuck_sync_worker(self):
        ab = shutil.which("ab")
        if ab is None:
            self.skipTest("ab (ApacheBench, Debian package apache2-utils) "
                          "is not installed")
        srv = Server(self.addCleanup,
                     "backlog = 64\n[http]\nheader_timeout = 10s\n",
                     args=["--sync"])
        labels = dict(listener="%s:%d" % (HOST, srv.port), socket="0")

        def qlen():
            return scrape(srv.sport).get("hellod_listen_queue_length",
                                         **labels)
        m = scrape(srv.sport)
        self.assertEqual(m.get("hellod_listen_queue_length", **labels), 0)
        self.assertEqual(m.get("hellod_listen_queue_limit", **labels), 64)

        with connect(HOST, srv.port) as stuck:
            wait_for(lambda: scrape(srv.sport).get(
                "hellod_connections", state="reading") == 1, 3.0,
                what="the worker to hold the silent client")
            p = subprocess.Popen([ab, "-c10", "-n10", "-s", "10",
                                  "http://%s:%d/" % (HOST, srv.port)],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT,
                                 universal_newlines=True)
            try:
                # ab 2.3 opens one connection and waits for its answer
                # before it opens the others: at least that one waits.
                wait_for(lambda: qlen() >= 1, 5.0,
                         what="hellod_listen_queue_length >= 1")
                s = status_json(srv.sport)
                self.assertGreaterEqual(s["listeners"][0]["queue_length"],
                                        1)
                self.assertEqual(s["listeners"][0]["queue_limit"], 64)
                self.assertEqual(s["totals"]["requests"], 0)
            finally:
                stuck.close()
                try:
                    out, _ = p.communicate(timeout=15.0)
                except subprocess.TimeoutExpired:
                    p.kill()
                    out, _ = p.communicate()
                    self.fail("ab did not finish:\n%s" % out)
        self.assertEqual(p.returncode, 0, out)
        self.assertRegex(out, r"Complete requests:\s+10\n")
        self.assertRegex(out, r"Failed requests:\s+0\n")
        wait_for(lambda: qlen() == 0, 5.0,
                 what="hellod_listen_queue_length back to 0")
        m = scrape(srv.sport)
        self.assertEqual(m.code(200), 10)
        self.assertEqual(m.requests(), 10)
        self.assertEqual(srv.h.stop(), 0, srv.log())


# --- 4. drain_notice, /healthz and the agent ---

class Agent(unittest.TestCase):
    """[status] agent_listen on loopback: the line HAProxy's agent-check
    reads, for each state of the service, and its counter."""

    def setUp(self):
        self.aport = free_port()
        self.asked = {}

    def server(self, conf="", status_conf="", workers=1):
        return Server(self.addCleanup, conf, "agent_listen = %s:%d\n%s"
                      % (HOST, self.aport, status_conf), workers=workers)

    def agent(self):
        """One exchange: the agent sends one line, then closes."""
        with connect(HOST, self.aport, 5.0) as s:
            data, _ = ht.wait_eof(s, 5.0)
        line = data.decode("ascii")
        self.assertRegex(line, r"\A(up ready( \d+%)?|drain|down)\n\Z")
        state = line.split()[0]
        self.asked[state] = self.asked.get(state, 0) + 1
        return line

    def until(self, want, timeout=5.0):
        wait_for(lambda: self.agent() == want, timeout,
                 what="the agent to say %r" % want)

    def counted(self, srv):
        m = scrape(srv.sport)
        return {k: int(m.get("hellod_agent_answers_total", state=k))
                for k in ("up", "drain", "down")}

    def test_weight_follows_open_connections(self):
        srv = self.server("[http]\nmax_connections = 10\n")
        self.assertEqual(self.agent(), "up ready 100%\n")
        socks = []
        for n, want in ((5, "up ready 50%\n"), (10, "up ready 1%\n")):
            while len(socks) < n:
                s = connect(HOST, srv.port)
                self.addCleanup(s.close)
                s.sendall(GET)
                self.assertEqual(Reader(s).response().status, 200)
                socks.append(s)
            self.until(want)
        for s in socks:
            s.close()
        self.until("up ready 100%\n")
        self.assertEqual(self.counted(srv),
                         {"up": self.asked["up"], "drain": 0, "down": 0})
        self.assertEqual(srv.h.stop(), 0, srv.log())

    def test_down_while_no_worker_serves(self):
        # Crashes in a row back the respawn off: 0, 0.1, 0.2, 0.4, 0.8,
        # then 1.6 s without a worker, when the agent must say "down".
        srv = self.server()
        for delay in ("0.0", "0.1", "0.2", "0.4", "0.8", "1.6"):
            # The master's view, not the log: the new worker's "serving"
            # line may not be written yet when the master counts it.
            pid = status_json(srv.sport, 1.0)["workers"][0]["pid"]
            os.kill(pid, signal.SIGKILL)
            srv.h.wait_log(r"worker 0 \(pid %d\) killed by signal 9; "
                           r"respawning in %ss" % (pid, delay), 5.0)
            if delay == "1.6":
                self.assertEqual(self.agent(), "down\n", srv.log())
                self.assertEqual(health(srv.sport, 1.0),
                                 (503, b"no workers\n"))
            srv.wait_serving()
        self.until("up ready 100%\n")
        self.assertEqual(self.counted(srv), {"up": self.asked["up"],
                                             "drain": 0, "down": 1})
        self.assertEqual(srv.h.stop(), 0, srv.log())

    def test_drain_from_the_stop(self):
        srv = self.server("shutdown_timeout = 5s\n",
                          "drain_notice = 1500ms\n")
        self.assertEqual(self.agent(), "up ready 100%\n")
        t0 = time.monotonic()
        srv.h.kill(signal.SIGTERM)
        self.until("drain\n", 1.0)
        while time.monotonic() - t0 < 1.0:
            self.assertEqual(self.agent(), "drain\n")
        self.assertEqual(srv.h.wait_exit(10.0), 0, srv.log())
        self.assertEqual(self.asked.get("down", 0), 0)


class DrainNotice(unittest.TestCase):

    def test_healthz_503_while_still_serving(self):
        srv = Server(self.addCleanup, "shutdown_timeout = 5s\n",
                     "drain_notice = 1500ms\n", workers=2)
        keep = connect(HOST, srv.port)
        self.addCleanup(keep.close)
        kr = Reader(keep)
        keep.sendall(GET)
        self.assertEqual(kr.response().status, 200)

        t0 = time.monotonic()
        srv.h.kill(signal.SIGTERM)
        wait_for(lambda: health(srv.sport, 1.0) == (503, b"draining\n"),
                 0.2, interval=0.005, what="/healthz to answer 503")
        turned = time.monotonic() - t0
        # The workers serve on as before for the notice: new connections
        # and a kept-alive one, back to back until 1.2 s into the notice
        # (at most 2000 rounds).
        served = 0
        while time.monotonic() - t0 < 1.2 and served < 2000:
            r = ht.get(HOST, srv.port)
            self.assertEqual((r.status, r.body), (200, GREETING))
            keep.sendall(GET)
            r = kr.response()
            self.assertEqual(r.status, 200)
            self.assertNotEqual((r.header("connection") or "").lower(),
                                "close", "closed during the notice")
            self.assertEqual(health(srv.sport), (503, b"draining\n"))
            served += 1
        self.assertGreaterEqual(served, 5)
        m = scrape(srv.sport)
        self.assertEqual(m.get("hellod_draining"), 1)
        self.assertEqual(m.get("hellod_workers_serving"), 2)
        self.assertIsNone(srv.h.proc.poll(), "exited during the notice")
        keep.close()
        rc = srv.h.wait_exit(10.0)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, srv.log())
        self.assertLess(turned, 0.2)
        self.assertGreaterEqual(took, 1.5, "stopped before the notice "
                                "ended")
        self.assertLess(took, 4.0)
        log = srv.log()
        self.assertIn("draining: /healthz answers 503 for 1500ms before "
                      "the stop", log)
        self.assertLess(log.index("draining: /healthz"),
                        log.index("stopping gracefully"))
        self.assertEqual(ht.log_problems(log), [])

    def test_no_notice_stops_at_once(self):
        srv = Server(self.addCleanup, "", "drain_notice = 0\n", workers=2)
        t0 = time.monotonic()
        srv.h.kill(signal.SIGTERM)
        rc = srv.h.wait_exit(5.0)
        took = time.monotonic() - t0
        self.assertEqual(rc, 0, srv.log())
        self.assertLess(took, 1.0)
        self.assertNotIn("draining:", srv.log())

    def test_reload_under_load_never_fails_healthz(self):
        srv = Server(self.addCleanup, "shutdown_timeout = 5s\n",
                     "drain_notice = 1s\n", workers=2)
        # The poller runs in a process of its own, so that it polls as
        # fast as the status server answers, load threads or not.
        poller = Poller(srv.sport)
        self.addCleanup(poller.close)
        load = BoundedLoad(HOST, srv.port, 200000, 30.0, clients=8)
        load.start()
        try:
            wait_for(lambda: load.ok >= 200, 10.0, what="the load to run")
            for gen in (2, 3, 4, 5, 6):
                before = load.ok
                poller.wait_more(3)
                ht.reload_and_wait(srv.h, gen, 2)
                poller.wait_more(3)
                srv.h.wait_log(r"previous generation finished",
                               count=gen - 1)
                poller.wait_more(3)
                wait_for(lambda: load.ok >= before + 200, 10.0,
                         what="requests after reload %d" % gen)
        finally:
            load.stop()
            poller.close()
        self.assertEqual(load.failures, 0, load.summary())
        self.assertEqual(poller.returncode, 0)
        answers = {}
        for a in poller.answers:
            answers[a] = answers.get(a, 0) + 1
        self.assertEqual(list(answers), ["200 'ok\\n'"], answers)
        self.assertGreater(len(poller.answers), 45)
        m = scrape(srv.sport)
        self.assertEqual(m.get("hellod_reloads_total"), 5)
        self.assertEqual(m.get("hellod_config_generation"), 6)
        self.assertEqual(m.get("hellod_draining"), 0)
        self.assertEqual(srv.h.stop(), 0, srv.log())


# Polls /healthz on 127.0.0.1:argv[1] back to back, at most argv[2] times
# for at most argv[3] seconds, until its standard input closes; prints
# one line per poll: the status and the body, or the connection error.
HEALTH_POLLER = r"""
import select, socket, sys, time
port, limit = int(sys.argv[1]), int(sys.argv[2])
deadline = time.monotonic() + float(sys.argv[3])
req = b"GET /healthz HTTP/1.1\r\nHost: poller\r\n\r\n"
for _ in range(limit):
    if time.monotonic() > deadline or \
            select.select([sys.stdin], [], [], 0)[0]:
        break
    try:
        with socket.create_connection(("127.0.0.1", port), 2.0) as s:
            s.sendall(req)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        print(head.split(b" ")[1].decode("latin-1"), repr(body.decode()),
              flush=True)
    except (OSError, IndexError) as e:
        print("error", repr(e), flush=True)
"""


class Poller:
    """HEALTH_POLLER in a process of its own; answers: its lines so far."""

    def __init__(self, port, limit=100000, seconds=60.0):
        self.p = subprocess.Popen(
            [sys.executable, "-c", HEALTH_POLLER, str(port), str(limit),
             str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            universal_newlines=True)
        self.answers = []
        self.returncode = None
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.p.stdout:
            self.answers.append(line.rstrip("\n"))

    def wait_more(self, n, timeout=10.0):
        target = len(self.answers) + n
        wait_for(lambda: len(self.answers) >= target, timeout,
                 what="%d more /healthz polls" % n)

    def close(self):
        if self.returncode is not None:
            return
        self.p.stdin.close()
        try:
            self.returncode = self.p.wait(10.0)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.returncode = self.p.wait(5.0)
        self.thread.join(5.0)
        self.p.stdout.close()


# --- 5. Prometheus ---

def http_json(url, timeout=5.0):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return json.loads(r.read().decode("utf-8"))


class Prometheus(unittest.TestCase):

    def test_prometheus_scrapes_exact_count(self):
        prom = shutil.which("prometheus")
        if prom is None:
            self.skipTest("prometheus (Debian package prometheus) is not "
                          "installed")
        srv = Server(self.addCleanup, workers=2)
        n = 137
        t = Traffic(self, srv.port)
        t.gets(57)
        t.gets(80, per_conn=8)
        self.assertEqual(scrape(srv.sport).code(200), n)

        d = tempfile.TemporaryDirectory(prefix="hellod-prom-")
        self.addCleanup(d.cleanup)
        conf = os.path.join(d.name, "prometheus.yml")
        with open(conf, "w") as f:
            f.write("global:\n"
                    "  scrape_interval: 1s\n"
                    "  scrape_timeout: 1s\n"
                    "  evaluation_interval: 1s\n"
                    "scrape_configs:\n"
                    "  - job_name: hellod\n"
                    "    static_configs:\n"
                    "      - targets: ['%s:%d']\n" % (HOST, srv.sport))
        pport = free_port()
        plog = open(os.path.join(d.name, "prometheus.log"), "wb")
        self.addCleanup(plog.close)
        p = subprocess.Popen(
            [prom, "--config.file=" + conf,
             "--storage.tsdb.path=" + os.path.join(d.name, "data"),
             "--web.listen-address=%s:%d" % (HOST, pport)],
            stdout=plog, stderr=subprocess.STDOUT, cwd=d.name)

        def kill():
            if p.poll() is None:
                p.kill()
                p.wait(5)
        self.addCleanup(kill)

        def plog_text():
            with open(plog.name, "rb") as f:
                return f.read().decode("utf-8", "replace")[-3000:]
        base = "http://%s:%d" % (HOST, pport)
        query = base + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'sum(hellod_http_requests_total{code="200"})'})

        def scraped():
            if p.poll() is not None:
                raise AssertionError("prometheus exited with %s:\n%s"
                                     % (p.returncode, plog_text()))
            try:
                r = http_json(query)
            except OSError:
                return None
            self.assertEqual(r["status"], "success", r)
            res = r["data"]["result"]
            return res and res[0]["value"][1]
        value = wait_for(scraped, 30.0, interval=0.2,
                         what="Prometheus to scrape hellod")
        self.assertEqual(value, str(n))
        up = http_json(base + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'up{job="hellod"}'}))["data"]["result"]
        self.assertEqual([r["value"][1] for r in up], ["1"])
        targets = http_json(base + "/api/v1/targets")["data"]
        self.assertEqual([(tg["health"], tg["lastError"]) for tg in
                          targets["activeTargets"]], [("up", "")])
        # Prometheus' own scrapes are not counted.
        self.assertEqual(scrape(srv.sport).code(200), n)

        p.send_signal(signal.SIGTERM)
        try:
            rc = p.wait(15.0)
        except subprocess.TimeoutExpired:
            self.fail("prometheus did not stop:\n%s" % plog_text())
        self.assertEqual(rc, 0, plog_text())
        self.assertEqual(srv.h.stop(), 0, srv.log())

    def test_promtool_check_metrics_of_a_busy_server(self):
        promtool = shutil.which("promtool")
        if promtool is None:
            self.skipTest("promtool (Debian package prometheus) is not "
                          "installed")
        srv = Server(self.addCleanup, "[http]\nheader_timeout = 5s\n",
                     workers=2)
        t = Traffic(self, srv.port)
        t.posts(2)
        t.malformed(MALFORMED)
        load = BoundedLoad(HOST, srv.port, 100000, 20.0, clients=20)
        load.start()
        slow = connect(HOST, srv.port)
        self.addCleanup(slow.close)
        try:
            wait_for(lambda: load.ok >= 500, 10.0, what="the load to run")
            text = status_get(srv.sport, "/metrics").body
        finally:
            load.stop()
        self.assertEqual(load.failures, 0, load.summary())
        self.assertGreater(Metrics(text.decode()).code(200), 0)
        p = subprocess.run([promtool, "check", "metrics"], input=text,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30.0)
        self.assertEqual((p.returncode, p.stdout), (0, b""),
                         p.stdout.decode("utf-8", "replace"))
        slow.close()
        self.assertEqual(srv.h.stop(), 0, srv.log())


# --- 6. The status page in Chromium ---

class Dom(html.parser.HTMLParser):
    """Text of the elements with an id, of the table cells by class, and
    of the cells of each tr.worker row, from the page's DOM."""

    def __init__(self):
        super().__init__()
        self.by_id = {}
        self.rows = []
        self.cells = {}         # class of a td: [its text, ...]
        self.stack = []         # (tag, id, class) of open elements

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "worker" in (a.get("class") or "").split():
            self.rows.append({"data-worker": a.get("data-worker")})
        if tag in ("meta", "br", "link", "img", "input"):
            return
        self.stack.append((tag, a.get("id"), a.get("class")))
        if a.get("id"):
            self.by_id[a["id"]] = ""
        if tag == "td":
            for cls in (a.get("class") or "").split():
                self.cells.setdefault(cls, []).append("")

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        for tag, id_, cls in self.stack:
            if id_:
                self.by_id[id_] += data
        if self.stack and self.stack[-1][0] == "td":
            for cls in (self.stack[-1][2] or "").split():
                self.cells[cls][-1] += data
                if cls.startswith("worker-") and self.rows:
                    row = self.rows[-1]
                    row[cls] = row.get(cls, "") + data


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def high_fd(fd):
    """fd moved to a number of 10 or more."""
    new = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return new


class Cdp:
    """Headless Chromium driven over --remote-debugging-pipe: DevTools
    protocol messages, NUL-terminated JSON, written to its descriptor 3
    and read from its descriptor 4."""

    FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking",
             "--disable-component-update", "--disable-sync",
             "--disable-extensions", "--remote-debugging-pipe"]

    def __init__(self, exe, user_dir):
        to_r, self.to_w = os.pipe()
        self.from_r, from_w = os.pipe()
        # Above 4, so that the two dup2() below cannot clobber each other.
        to_r, from_w = high_fd(to_r), high_fd(from_w)
        # Chromium wants the pipe on descriptors 3 and 4: a small Python
        # trampoline puts them there and executes it (no preexec_fn while
        # threads run).
        tramp = ("import os, sys\n"
                 "os.dup2(%d, 3)\nos.dup2(%d, 4)\n"
                 "os.close(%d)\nos.close(%d)\n"
                 "os.execv(sys.argv[1], sys.argv[1:])\n"
                 % (to_r, from_w, to_r, from_w))
        self.errf = tempfile.TemporaryFile()
        self.p = subprocess.Popen(
            [sys.executable, "-c", tramp, exe] + self.FLAGS +
            ["--user-data-dir=" + user_dir, "about:blank"],
            pass_fds=(to_r, from_w), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=self.errf,
            start_new_session=True, cwd=user_dir)
        os.close(to_r)
        os.close(from_w)
        self.buf = b""
        self.last_id = 0
        self.session = None

    def stderr(self):
        self.errf.seek(0)
        return self.errf.read().decode("utf-8", "replace")[-3000:]

    def _message(self, deadline):
        while b"\0" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no answer from chromium:\n"
                                     + self.stderr())
            if select.select([self.from_r], [], [], left)[0]:
                chunk = os.read(self.from_r, 1 << 20)
                if not chunk:
                    raise AssertionError("chromium closed its pipe:\n"
                                         + self.stderr())
                self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg.decode("utf-8"))

    def call(self, method, params=None, session=True, timeout=20.0):
        self.last_id += 1
        msg = {"id": self.last_id, "method": method,
               "params": params or {}}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self.to_w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            r = self._message(deadline)
            if r.get("id") == self.last_id:
                if "error" in r:
                    raise AssertionError("%s: %r" % (method, r["error"]))
                return r["result"]

    def open(self, url, width, height):
        targets = self.call("Target.getTargets")["targetInfos"]
        page = [t for t in targets if t["type"] == "page"][0]
        self.session = self.call("Target.attachToTarget", {
            "targetId": page["targetId"], "flatten": True})["sessionId"]
        self.call("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1,
            "mobile": False})
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression,
                                           "returnByValue": True})
        if "exceptionDetails" in r:
            raise AssertionError("%s: %r" % (expression,
                                             r["exceptionDetails"]))
        return r["result"].get("value")

    def screenshot(self):
        return base64.b64decode(self.call("Page.captureScreenshot",
                                          {"format": "png"})["data"])

    def close(self):
        if self.p.poll() is None:
            try:
                self.call("Browser.close", session=False, timeout=5.0)
                self.p.wait(10.0)
            except (AssertionError, OSError, subprocess.TimeoutExpired):
                pass
        if self.p.poll() is None:
            os.killpg(self.p.pid, signal.SIGKILL)
            self.p.wait(5.0)
        os.close(self.to_w)
        os.close(self.from_r)
        self.errf.close()


class Chromium(unittest.TestCase):

    def test_status_page_shows_rates(self):
        exe = shutil.which("chromium")
        if exe is None:
            self.skipTest("chromium (Debian package chromium) is not "
                          "installed")
        srv = Server(self.addCleanup, workers=2)
        t = Traffic(self, srv.port)
        t.posts(3)
        t.malformed(MALFORMED[:2])
        d = tempfile.TemporaryDirectory(prefix="hellod-chromium-")
        self.addCleanup(d.cleanup)
        browser = Cdp(exe, d.name)
        self.addCleanup(browser.close)
        load = BoundedLoad(HOST, srv.port, 500000, 40.0, clients=8)
        load.start()
        try:
            wait_for(lambda: load.ok >= 500, 10.0, what="the load to run")
            browser.open("http://%s:%d/" % (HOST, srv.sport), 1200, 900)
            last = [None]

            def rates_shown():
                try:
                    # Empty while about:blank is still the document.
                    text = browser.evaluate(
                        "document.getElementById('workers') ? "
                        "document.documentElement.outerHTML : ''")
                except AssertionError as e:
                    if "context" in str(e).lower():
                        return False    # evaluated mid-navigation
                    raise
                if not text:
                    return False
                dom = Dom()
                dom.feed(text)
                last[0] = dom
                return number(dom.by_id.get("total-rps", "")) and \
                    len(dom.rows) == 2 and \
                    all(number(r.get("worker-rps", "")) for r in dom.rows)
            try:
                # The page reads /status.json every second; rates need
                # two readings.
                wait_for(rates_shown, 15.0, interval=0.25,
                         what="the page to show request rates")
            except AssertionError as e:
                raise AssertionError("%s: %r %r" % (e, last[0] and
                                                    last[0].by_id,
                                                    last[0] and
                                                    last[0].rows))
            dom = last[0]
            if os.environ.get("HELLOD_SCREENSHOT"):
                # Only on request: make check never writes the tree.
                path = os.path.join(SRCDIR, "docs", "status-page.png")
                png = browser.screenshot()
                self.assertTrue(png.startswith(b"\x89PNG\r\n"))
                with open(path, "wb") as f:
                    f.write(png)
        finally:
            load.stop()
        self.assertEqual(load.failures, 0, load.summary())
        ids = dom.by_id
        self.assertEqual(ids.get("error"), "")
        self.assertEqual(ids.get("state"), "serving")
        self.assertEqual(ids.get("mode"), "async")
        self.assertEqual(ids.get("generation"), "1")
        self.assertEqual(ids.get("workers-serving"), "2 / 2")
        self.assertEqual(ids.get("restarts"), "0")
        self.assertGreater(number(ids["total-rps"]), 0)
        self.assertGreater(number(ids.get("total-requests", "")) or 0, 500)
        self.assertEqual([r["data-worker"] for r in dom.rows], ["0", "1"])
        s = status_json(srv.sport)
        for r, w in zip(dom.rows, s["workers"]):
            self.assertGreater(number(r["worker-rps"]), 0, r)
            self.assertEqual(int(r["worker-pid"]), w["pid"])
            self.assertGreater(int(r["worker-requests"]), 0)
        self.assertEqual(dom.cells.get("code-405"), ["3"])
        self.assertEqual(dom.cells.get("code-400"), ["2"])
        self.assertEqual(len(dom.cells.get("listener-addr", [])), 2)
        self.assertEqual(srv.h.stop(), 0, srv.log())

if __name__ == "__main__":
    ht.main()
