#!/usr/bin/env python3
"""The answers for scripts and the faults, against real clients on
loopback, in async mode, with --uring and with --sync: [http] endpoints
(GET /ip, GET /json, negotiation on "/" by Accept and User-Agent), [http]
identity (the X-Served-By header), the fault knobs (?status=, ?close=, ?reset=,
?delay_body=) and their counters.  With both keys off every path still
greets, byte for byte as before, whatever the client."""

import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest
import urllib.request

import hellodtest as ht
from hellodtest import Reader, connect, greeting

HOST = "127.0.0.1"
GREETING = greeting(HOST)
HOSTNAME = socket.gethostname()
DATE_RE = (rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
           rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
           rb"\d{4} \d\d:\d\d:\d\d GMT")
CURL = shutil.which("curl")
WGET = shutil.which("wget")


def rq(target, method="GET", headers=(), close=False):
    lines = ["%s %s HTTP/1.1" % (method, target), "Host: test"]
    lines += list(headers)
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def one(port, target, method="GET", headers=()):
    with connect(HOST, port) as s:
        s.sendall(rq(target, method, headers, close=True))
        return Reader(s).response(head=method == "HEAD")


def curl(port, path, *opts):
    """(exit status, stdout bytes) of curl -s."""
    p = subprocess.run([CURL, "-s", "--max-time", "10"] + list(opts)
                       + ["http://%s:%d%s" % (HOST, port, path)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20)
    return p.returncode, p.stdout


class Cases:
    ARGS = ()
    MODE = "async"

    @classmethod
    def setUpClass(cls):
        cls.status_port = ht.free_port()
        port = ht.free_port()
        # [status] listen is a listen line too: [server] names its own.
        cls.srv = ht.start_hellod(
            "[server]\nlisten = %s:%d\nworkers = 1\n[http]\nkeepalive_timeout = 5s\n"
            "endpoints = on\nidentity = on\nquery_knobs = on\n"
            "query_max_delay = 2s\n"
            "[proxy]\ntrusted = 127.0.0.1/32 10.9.0.0/16\n"
            "header = x-forwarded-for\n"
            "[status]\nlisten = %s:%d\n" % (HOST, port, HOST,
                                             cls.status_port),
            args=cls.ARGS, port=port)
        cls.port = cls.srv.port
        cls.plain = ht.start_hellod("[server]\nworkers = 1\n[http]\n"
                                    "keepalive_timeout = 5s\n",
                                    args=cls.ARGS)

    @classmethod
    def tearDownClass(cls):
        for h in (cls.srv, cls.plain):
            log = h.log()
            ht.stop_and_close(h)
            problems = ht.log_problems(log)
            if problems:
                raise AssertionError("warnings in the log: %s" % problems)

    # --- defaults unchanged ---

    def test_defaults_greet_everyone(self):
        pat = re.compile(rb"HTTP/1\.1 200 OK\r\nContent-Type: text/html\r\n"
                         rb"Server: hellod\r\nDate: " + DATE_RE +
                         rb"\r\nContent-Length: " +
                         str(len(GREETING)).encode() +
                         rb"\r\nConnection: close\r\n\r\n" +
                         re.escape(GREETING) + rb"$")
        for path in ("/", "/ip", "/json", "/ip?status=500&reset=1"):
            for hdrs in ((), ("User-Agent: curl/8.5.0",),
                         ("Accept: application/json",),
                         ("Accept: text/plain", "User-Agent: Wget/1.21")):
                r = one(self.plain.port, path, headers=hdrs)
                self.assertRegex(r.raw, pat, (path, hdrs))
        if CURL:
            rc, out = curl(self.plain.port, "/json", "-H",
                           "Accept: application/json")
            self.assertEqual((rc, out), (0, GREETING))

    # --- clients ---

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_curl(self):
        self.assertEqual(curl(self.port, "/"), (0, b"127.0.0.1\n"))
        self.assertEqual(curl(self.port, "/", "-H", "Accept: */*"),
                         (0, b"127.0.0.1\n"))
        self.assertEqual(curl(self.port, "/ip"), (0, b"127.0.0.1\n"))
        self.assertEqual(curl(self.port, "/ip?x=1&y"), (0, b"127.0.0.1\n"))
        self.assertEqual(curl(self.port, "/", "-H", "Accept: text/html"),
                         (0, GREETING))
        self.assertEqual(curl(self.port, "/", "-H", "Accept: text/html;q=x"),
                         (0, GREETING))
        rc, out = curl(self.port, "/", "-H", "Accept: application/json")
        self.assertEqual(json.loads(out)["client"], HOST)
        rc, out = curl(self.port, "/json")
        self.check_json(json.loads(out), requests=1)
        # Browsers and HTTPie/xh by their User-Agent.
        self.assertEqual(curl(self.port, "/", "-A", "Mozilla/5.0 (X11)",
                              "-H", "Accept: text/html,*/*;q=0.8"),
                         (0, GREETING))
        self.assertEqual(curl(self.port, "/", "-A", "Mozilla/5.0 (X11)"),
                         (0, GREETING))
        for ua in ("HTTPie/3.2.2", "xh/0.22.0", "fetch libfetch/2.0"):
            self.assertEqual(curl(self.port, "/", "-A", ua),
                             (0, b"127.0.0.1\n"), ua)

    @unittest.skipUnless(WGET, "wget is not installed")
    def test_wget(self):
        def wget(path, *opts):
            p = subprocess.run([WGET, "-q", "-O", "-", "-T", "10", "-t", "1"]
                               + list(opts) + ["http://%s:%d%s"
                                               % (HOST, self.port, path)],
                               stdout=subprocess.PIPE, timeout=20)
            return p.returncode, p.stdout
        self.assertEqual(wget("/"), (0, b"127.0.0.1\n"))
        self.assertEqual(wget("/ip"), (0, b"127.0.0.1\n"))
        rc, out = wget("/json")
        self.check_json(json.loads(out), requests=1)
        self.assertEqual(wget("/", "--header=Accept: text/html"),
                         (0, GREETING))

    def test_urllib(self):
        base = "http://%s:%d" % (HOST, self.port)

        def fetch(path, accept=None):
            req = urllib.request.Request(base + path)
            if accept:
                req.add_header("Accept", accept)
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, dict(r.headers), r.read()
        # Python-urllib is not a command-line client: the greeting.
        st, hd, body = fetch("/")
        self.assertEqual((st, body), (200, GREETING))
        self.assertEqual(hd["Vary"], "Accept, User-Agent")
        self.assertEqual(hd["Cache-Control"], "no-store")
        st, hd, body = fetch("/", "text/plain")
        self.assertEqual(body, b"127.0.0.1\n")
        self.assertEqual(hd["Content-Type"], "text/plain")
        st, hd, body = fetch("/", "application/json;q=0.9, text/html;q=0.1")
        self.assertEqual(hd["Content-Type"], "application/json")
        self.check_json(json.loads(body), requests=1)
        st, hd, body = fetch("/ip")
        self.assertEqual(body, b"127.0.0.1\n")
        st, hd, body = fetch("/json")
        self.check_json(json.loads(body), requests=1)

    def check_json(self, j, requests, client=HOST, source="peer",
                   keepalive=0):
        self.assertEqual(set(j), {"client", "peer", "source", "forwarded",
                                  "proxy", "server", "connection"})
        self.assertEqual(j["client"], client)
        self.assertEqual(j["peer"], HOST)
        self.assertEqual(j["source"], source)
        self.assertEqual(j["forwarded"]["header"], "x-forwarded-for")
        self.assertIsNone(j["proxy"])
        s = j["server"]
        self.assertEqual(s["host"], HOSTNAME)
        self.assertIn(s["pid"], self.srv.worker_pids())
        self.assertEqual(s["worker"], 0)
        self.assertEqual(s["generation"], 1)
        self.assertEqual(s["mode"], self.MODE)
        self.assertEqual(s["listener"],
                         {"address": "%s:%d" % (HOST, self.port),
                          "kind": "plain"})
        c = j["connection"]
        self.assertEqual(c["requests"], requests)
        self.assertIsNone(c["tls"])
        if keepalive:
            self.assertEqual(c["keepalive_left"], keepalive)
        return j

    def test_json_keepalive_and_head(self):
        with connect(HOST, self.port) as s:
            r = Reader(s)
            for n in (1, 2, 3):
                s.sendall(rq("/json?ignored=1"))
                resp = r.response()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("content-type"),
                                 "application/json")
                self.assertEqual(resp.header("cache-control"), "no-store")
                self.assertTrue(resp.body.endswith(b"}\n"))
                self.check_json(json.loads(resp.body), requests=n,
                                keepalive=5)
            s.sendall(rq("/json", close=True))
            j = json.loads(r.response().body)
            self.assertEqual(j["connection"]["requests"], 4)
            self.assertEqual(j["connection"]["keepalive_left"], 0)
        for path in ("/ip", "/json", "/ip?a=b"):
            get = one(self.port, path)
            head = one(self.port, path, "HEAD")
            self.assertEqual(head.status, 200)
            self.assertEqual(head.body, b"")
            self.assertEqual(head.header("content-length"),
                             get.header("content-length"), path)

    def test_forwarded(self):
        r = one(self.port, "/json",
                headers=("X-Forwarded-For: 203.0.113.7, 10.9.1.1, 10.9.2.2",))
        j = json.loads(r.body)
        self.assertEqual(j["client"], "203.0.113.7")
        self.assertEqual(j["peer"], HOST)
        self.assertEqual(j["source"], "x-forwarded-for")
        self.assertEqual(j["forwarded"], {"header": "x-forwarded-for",
                                          "hops": 3, "trusted": 2})
        r = one(self.port, "/ip", headers=("X-Forwarded-For: 198.51.100.2",))
        self.assertEqual(r.body, b"198.51.100.2\n")

    def test_identity(self):
        r = one(self.port, "/", headers=("User-Agent: Mozilla/5.0",))
        self.assertEqual(r.header("x-served-by"),
                         "%s worker 0 generation 1" % HOSTNAME)
        self.assertEqual(r.header("vary"), "Accept, User-Agent")
        r = one(self.plain.port, "/")
        self.assertIsNone(r.header("x-served-by"))
        self.assertIsNone(r.header("vary"))
        self.assertIsNone(r.header("cache-control"))

    @unittest.skipUnless(CURL and shutil.which("openssl"),
                         "curl or openssl is not installed")
    def test_json_tls(self):
        with tempfile.TemporaryDirectory(prefix="hellod-tls-") as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", key, "-out", cert, "-days", "2",
                            "-subj", "/CN=localhost"], check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=30)
            port, tport = ht.free_port(), ht.free_port()
            h = ht.start_hellod(
                "[server]\nlisten = %s:%d\ntls_listen = %s:%d\n"
                "workers = 1\n[http]\nendpoints = on\n[tls]\n"
                "certificate = %s\ncertificate_key = %s\n"
                % (HOST, port, HOST, tport, cert, key), args=self.ARGS,
                port=port)
            try:
                for opts, proto in (((), "TLSv1.3"),
                                    (("--tls-max", "1.2"), "TLSv1.2")):
                    p = subprocess.run(
                        [CURL, "-sk", "--max-time", "10"] + list(opts) +
                        ["https://%s:%d/json" % (HOST, tport)],
                        stdout=subprocess.PIPE, timeout=20)
                    j = json.loads(p.stdout)
                    self.assertEqual(j["connection"]["tls"]["protocol"],
                                     proto)
                    self.assertTrue(j["connection"]["tls"]["cipher"])
                    self.assertEqual(j["server"]["listener"],
                                     {"address": "%s:%d" % (HOST, tport),
                                      "kind": "tls"})
                p = subprocess.run([CURL, "-s", "--max-time", "10",
                                    "http://%s:%d/json" % (HOST, port)],
                                   stdout=subprocess.PIPE, timeout=20)
                self.assertIsNone(json.loads(p.stdout)["connection"]["tls"])
            finally:
                ht.stop_and_close(h)

    # --- faults ---

    def test_status(self):
        for code, reason in ((503, "Service Unavailable"), (201, "Created"),
                             (302, "Found"), (418, ""), (599, "")):
            r = one(self.port, "/x?status=%d" % code)
            self.assertEqual((r.status, r.reason), (code, reason))
            self.assertEqual(r.body, GREETING)
        r = one(self.port, "/x?status=503&pad=10")
        self.assertEqual(r.body, GREETING + b" " * 10)
        for code in (204, 304):
            with connect(HOST, self.port) as s:
                s.sendall(rq("/x?status=%d" % code) + rq("/x"))
                rd = Reader(s)
                r = rd.response(head=True)
                self.assertEqual(r.status, code)
                if code == 204:
                    self.assertIsNone(r.header("content-length"))
                else:
                    self.assertEqual(r.header("content-length"),
                                     str(len(GREETING)))
                # Nothing was sent as a body: the next answer follows.
                r = rd.response()
                self.assertEqual((r.status, r.body), (200, GREETING))
        # Out of range: a 400 that keeps the connection.
        with connect(HOST, self.port) as s:
            rd = Reader(s)
            for bad in ("199", "600", "20", "2x0", ""):
                s.sendall(rq("/?status=" + bad))
                self.assertEqual(rd.response().status, 400, bad)
            s.sendall(rq("/x"))
            self.assertEqual(rd.response().body, GREETING)
        if CURL:
            p = subprocess.run([CURL, "-s", "-o", "/dev/null", "-w",
                                "%{http_code}", "http://%s:%d/?status=503"
                                % (HOST, self.port)],
                               stdout=subprocess.PIPE, timeout=20)
            self.assertEqual(p.stdout, b"503")

    def test_close(self):
        with connect(HOST, self.port) as s:
            rd = Reader(s)
            s.sendall(rq("/x"))
            self.assertIsNone(rd.response().header("connection"))
            s.sendall(rq("/x?close=1"))
            r = rd.response()
            self.assertEqual(r.header("connection"), "close")
            self.assertEqual(r.body, GREETING)
            self.assertTrue(rd.closed(5.0))

    @unittest.skipUnless(CURL, "curl is not installed")
    def test_reset(self):
        p = subprocess.run([CURL, "-s", "-S", "--max-time", "10",
                            "http://%s:%d/?reset=1&status=500&delay=1s"
                            % (HOST, self.port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=20)
        self.assertEqual(p.returncode, 56, p.stderr)
        self.assertIn(b"reset by peer", p.stderr)
        self.assertEqual(p.stdout, b"")
        with connect(HOST, self.port) as s:
            s.sendall(rq("/?reset=1"))
            with self.assertRaises(ConnectionResetError):
                while s.recv(4096):
                    pass
        self.assertTrue(ht.answers(self.port))

    def test_reset_pipelined(self):
        # What precedes the reset is sent whole, then RST.
        with connect(HOST, self.port) as s:
            s.sendall(rq("/ip") + rq("/?reset=1") + rq("/ip"))
            r = Reader(s)
            first = r.response()
            self.assertEqual(first.status, 200)
            self.assertEqual(first.body, HOST.encode() + b"\n")
            with self.assertRaises(ConnectionResetError):
                while s.recv(4096):
                    pass

    def test_delay_body_pipelined(self):
        # A delayed answer, then one whose body waits, then one behind
        # them: in order, on the same connection.
        with connect(HOST, self.port) as s:
            t0 = time.monotonic()
            s.sendall(rq("/?delay=200ms") + rq("/?delay_body=300ms") +
                      rq("/ip", close=True))
            r = Reader(s)
            a, b, c = r.response(), r.response(), r.response()
            took = time.monotonic() - t0
            self.assertEqual([a.status, b.status, c.status], [200] * 3)
            self.assertEqual(b.body, a.body)
            self.assertEqual(c.body, HOST.encode() + b"\n")
            self.assertGreaterEqual(took, 0.45)
            self.assertTrue(r.closed())

    def test_delay_body(self):
        with connect(HOST, self.port) as s:
            s.sendall(rq("/x?delay_body=600ms", headers=(
                "User-Agent: Mozilla/5.0",)))
            t0 = time.monotonic()
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = s.recv(65536)
                self.assertTrue(data)
                buf += data
            t_head = time.monotonic() - t0
            head, body = buf.split(b"\r\n\r\n", 1)
            self.assertEqual(body, b"", "the body came with the head")
            while len(body) < len(GREETING):
                data = s.recv(65536)
                self.assertTrue(data)
                body += data
            t_body = time.monotonic() - t0
            self.assertLess(t_head, 0.4)
            self.assertGreaterEqual(t_body, 0.55)
            self.assertEqual(body, GREETING)
            self.assertIn(b"Content-Length: %d" % len(GREETING), head)
            # The connection goes on.
            s.sendall(rq("/x", headers=("User-Agent: Mozilla/5.0",)))
            r = Reader(s).response()
            self.assertEqual(r.body, GREETING)
        # Over query_max_delay: 400.
        self.assertEqual(one(self.port, "/?delay_body=3s").status, 400)

    def test_fault_metrics(self):
        one(self.port, "/?status=500")
        one(self.port, "/?close=1")
        m = ht.get(HOST, self.status_port, "/metrics").body.decode()
        for kind in ("status", "close"):
            v = re.search(r'^hellod_faults_total\{kind="%s"\} (\d+)$' % kind,
                          m, re.M)
            self.assertIsNotNone(v, kind)
            self.assertGreaterEqual(int(v.group(1)), 1)
        j = json.loads(ht.get(HOST, self.status_port, "/status.json").body)
        self.assertGreaterEqual(j["totals"]["faults"]["status"], 1)


class AsyncEndpoints(Cases, unittest.TestCase):
    pass


class UringEndpoints(Cases, unittest.TestCase):
    ARGS = ("--uring",)
    MODE = "uring"

    def test_json_tls(self):
        self.skipTest("mode = uring refuses TLS listeners")


class SyncEndpoints(Cases, unittest.TestCase):
    ARGS = ("--sync",)
    MODE = "sync"


if __name__ == "__main__":
    ht.main()
