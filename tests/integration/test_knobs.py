#!/usr/bin/env python3
"""Per-request knobs on a real socket (HTTP-CASES.md case 39): with
[http] query_knobs = on, ?delay=DURATION waits before answering and
?pad=SIZE pads the greeting, each replacing the configured delay and
body_padding for that request; a malformed or excessive knob is a 400 that
keeps a persistent connection open; with the knobs off the query never
changes the answer.  Every test runs against async mode (one worker, so
that a delay is seen not to block it) and --sync (one blocking worker)."""

import re
import socket
import threading
import time
import unittest

import hellodtest as ht
from hellodtest import Reader, connect, greeting

HOST = "127.0.0.1"
GREETING = greeting(HOST)
# Scheduling slack allowed on top of a delay that must be waited.
MARGIN = 1.0

DATE_RE = (rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
           rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
           rb"\d{4} \d\d:\d\d:\d\d GMT")


def rq(target, method="GET", close=False, version="1.1"):
    """A request head for target."""
    lines = ["%s %s HTTP/%s" % (method, target, version)]
    if version != "1.0":
        lines.append("Host: test")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class KnobsCases:
    """The cases; mixed into one unittest.TestCase per mode."""

    ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.srv = cls.server("query_knobs = on\n")
        cls.port = cls.srv.port

    @classmethod
    def tearDownClass(cls):
        log = cls.srv.log()
        ht.stop_and_close(cls.srv)
        problems = ht.log_problems(log)
        if problems:
            raise AssertionError("warnings in the log: %s" % problems)

    @classmethod
    def server(cls, extra_http, header_timeout="5s"):
        """A server of this class's mode, one worker, with [http]
        additions.  Both modes keep connections alive (sync only when the
        file says so)."""
        return ht.start_hellod("[server]\nworkers = 1\n[http]\n"
                               "keepalive_timeout = 5s\n"
                               "header_timeout = %s\n%s"
                               % (header_timeout, extra_http), args=cls.ARGS)

    # --- helpers ---

    def check_greeting(self, resp, padding=0, head=False, conn=None):
        """resp is exactly the greeting with `padding` spaces after it
        (counted in Content-Length, not sent for HEAD)."""
        self.assertIsNotNone(resp, "no response")
        body = GREETING + b" " * padding
        pat = (rb"HTTP/1\.1 200 OK\r\n"
               rb"Content-Type: text/html\r\n"
               rb"Server: hellod\r\n"
               rb"Date: " + DATE_RE + rb"\r\n"
               rb"Content-Length: " + str(len(body)).encode() + rb"\r\n" +
               (b"Connection: " + conn.encode() + b"\r\n" if conn else b"")
               + rb"\r\n")
        self.assertTrue(re.fullmatch(pat, resp.raw[:len(resp.raw) -
                                                   len(resp.body)], re.S),
                        "not the greeting with %d bytes of padding "
                        "(head=%s, conn=%s): %r"
                        % (padding, head, conn, resp.raw[:300]))
        self.assertEqual(resp.body, b"" if head else body)
        if not head and padding:
            self.assertTrue(resp.body.endswith(b" " * padding))
            self.assertTrue(resp.body[:-padding].endswith(b"</html>"))

    def check_400(self, resp, close=False, head=False):
        """resp is exactly the 400 response, persistent unless close (no
        body when it answers HEAD)."""
        self.assertIsNotNone(resp, "no response, expected 400")
        body = b"400 Bad Request\n"
        pat = (rb"HTTP/1\.1 400 Bad Request\r\n"
               rb"Content-Type: text/plain\r\n"
               rb"Server: hellod\r\n"
               rb"Date: " + DATE_RE + rb"\r\n"
               rb"Content-Length: " + str(len(body)).encode() + rb"\r\n" +
               (rb"Connection: close\r\n" if close else b"") +
               rb"\r\n" + (b"" if head else re.escape(body)))
        self.assertTrue(re.fullmatch(pat, resp.raw, re.S),
                        "not the 400 response (close=%s, head=%s): %r"
                        % (close, head, resp.raw[:300]))

    def timed(self, port, reqs, heads=()):
        """Sends the requests in one write on one connection; returns
        [(response, seconds from the write until it was read)] for each,
        and whether the server then closed."""
        with connect(HOST, port, timeout=10.0) as s:
            r = Reader(s)
            start = time.monotonic()
            s.sendall(b"".join(reqs))
            out = []
            for i in range(len(reqs)):
                resp = r.response(i < len(heads) and heads[i])
                out.append((resp, time.monotonic() - start))
            closed = r.closed(5.0)
            self.assertEqual(r.buf, b"", "bytes after the last response")
        return out, closed

    def assert_delayed(self, took, delay):
        self.assertGreaterEqual(took, delay,
                                "answered after %.3fs, before the delay of "
                                "%.3fs" % (took, delay))
        self.assertLess(took, delay + MARGIN,
                        "answered after %.3fs, delay %.3fs" % (took, delay))

    def assert_at_once(self, took, bound=MARGIN):
        self.assertLess(took, bound, "answered after %.3fs" % took)

    # --- ?delay= ---

    def test_case39_delay(self):
        out, closed = self.timed(self.port, [rq("/?delay=300ms", close=True)])
        self.check_greeting(out[0][0], conn="close")
        self.assert_delayed(out[0][1], 0.3)
        self.assertTrue(closed)
        # HEAD is delayed the same way; a bare number is seconds.
        out, closed = self.timed(
            self.port, [rq("/?delay=0.3", "HEAD"), rq("/?delay=1", "HEAD",
                                                      close=True)],
            heads=(True, True))
        self.check_400(out[0][0], head=True)    # "0.3": no fractions
        self.check_greeting(out[1][0], head=True, conn="close")
        self.assert_delayed(out[1][1], 1.0)

    def test_case39_delay_pipelined_in_order(self):
        # The padding tells the answers apart.  A delay holds the
        # requests behind it: they are answered in order, each delay
        # after the previous answer.
        reqs = [rq("/a?delay=400ms&pad=1"), rq("/b?pad=2"),
                rq("/c?pad=3&delay=200ms"), rq("/d?delay=0ms&pad=4"),
                rq("/e?pad=5", close=True)]
        out, closed = self.timed(self.port, reqs)
        for i, (resp, took) in enumerate(out):
            self.check_greeting(resp, padding=i + 1,
                                conn="close" if i == 4 else None)
        took = [t for _, t in out]
        self.assertGreaterEqual(took[0], 0.4, took)
        self.assertGreaterEqual(took[2], 0.6, took)
        self.assertLess(took[4], 0.6 + MARGIN, took)
        self.assertTrue(closed)

    def test_case39_delayed_answers_kept_while_output_waits(self):
        # A delayed answer decided while earlier answers still wait for
        # a slow reader must not be lost: 40,000 pipelined GETs on a
        # connection with a 4 KiB receive buffer, every 301st delayed
        # and padded by one byte, read in bursts.  Every answer arrives,
        # in order: a lost one would shift the padded ones.
        n, every = 40000, 301
        plain, delayed = rq("/"), rq("/?delay=1ms&pad=1")
        data = b"".join(delayed if i % every == 0 else plain
                        for i in range(n))
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.settimeout(10.0)
        s.connect((HOST, self.port))
        sender = threading.Thread(target=s.sendall, args=(data,),
                                  daemon=True)
        sender.start()
        buf, lengths, reads = bytearray(), [], 0
        deadline = time.monotonic() + 60.0
        try:
            while len(lengths) < n:
                self.assertLess(time.monotonic(), deadline,
                                "%d of %d answers" % (len(lengths), n))
                reads += 1
                if reads % 4 == 0:          # bursts of reads, then a pause
                    time.sleep(0.001)
                chunk = s.recv(65536)
                self.assertTrue(chunk, "closed after %d answers"
                                % len(lengths))
                buf += chunk
                while True:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    m = re.search(rb"\r\nContent-Length: (\d+)\r\n",
                                  bytes(buf[:end + 2]))
                    self.assertIsNotNone(m, bytes(buf[:end]))
                    total = end + 4 + int(m.group(1))
                    if len(buf) < total:
                        break
                    self.assertTrue(buf.startswith(b"HTTP/1.1 200 OK\r\n"))
                    lengths.append(int(m.group(1)))
                    del buf[:total]
        finally:
            s.close()
            sender.join(10.0)
        wrong = [i for i, length in enumerate(lengths)
                 if length != len(GREETING) + (i % every == 0)]
        self.assertEqual(wrong[:5], [], "answers out of place")

    def test_case39_delay_and_other_connections(self):
        with connect(HOST, self.port, timeout=10.0) as a:
            start = time.monotonic()
            a.sendall(rq("/?delay=600ms", close=True))
            ht.assert_quiet(a, 0.05)        # held, not answered early
            resp, took = ht.get(HOST, self.port), time.monotonic() - start
            self.check_greeting(resp, conn="close")
            self.check_other_connection(took)
            r = Reader(a)
            self.check_greeting(r.response(), conn="close")
            self.assert_delayed(time.monotonic() - start, 0.6)

    # --- ?pad= ---

    def test_case39_pad(self):
        with connect(HOST, self.port) as s:
            r = Reader(s)
            s.sendall(rq("/?pad=1k"))
            resp = r.response()
            self.check_greeting(resp, padding=1024)
            self.assertEqual(int(resp.header("content-length")),
                             len(GREETING) + 1024)
            s.sendall(rq("/?pad=1k", "HEAD"))
            resp = r.response(head=True)
            self.check_greeting(resp, padding=1024, head=True)
            self.assertEqual(int(resp.header("content-length")),
                             len(GREETING) + 1024)
            # Nothing of the HEAD's padding comes before the next answer.
            s.sendall(rq("/?pad=512&x=1m") + rq("/?pad=1m") +
                      rq("/?%70ad=1%6B") + rq("/?pad=1k&pad=3") +
                      rq("/?pad=0") + rq("/", close=True))
            self.check_greeting(r.response(), padding=512)
            self.check_greeting(r.response(), padding=1024 * 1024)
            self.check_greeting(r.response(), padding=1024)
            self.check_greeting(r.response(), padding=3)
            self.check_greeting(r.response())
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    # --- 400 ---

    def test_case39_bad_knobs_400_keep_alive(self):
        bad = ["/?delay=11s", "/?delay=10001ms", "/?pad=2m", "/?pad=1048577",
               "/?delay=", "/?pad", "/?pad=1+k", "/?pad=%zz", "/?x=%4",
               "/?pad=%00", "/?delay=1s;pad=2", "/?delay=9999999999ms",
               "/?pad=99999999999999999999", "/?delay=1s&delay=x",
               "/?pad=1k&delay=20s"]
        # One request at a time, then all of them pipelined, on one
        # connection: each is a 400 at once and the next is served.
        with connect(HOST, self.port) as s:
            r = Reader(s)
            for target in bad:
                with self.subTest(target=target):
                    start = time.monotonic()
                    s.sendall(rq(target))
                    self.check_400(r.response())
                    self.assert_at_once(time.monotonic() - start)
                    s.sendall(rq("/?pad=7"))
                    self.check_greeting(r.response(), padding=7)
        reqs = []
        for target in bad:
            reqs += [rq(target), rq("/?pad=2")]
        reqs.append(rq("/?delay=11s", "HEAD", close=True))
        out, closed = self.timed(self.port, reqs,
                                 heads=[False] * (len(reqs) - 1) + [True])
        for i in range(len(bad)):
            self.check_400(out[2 * i][0])
            self.check_greeting(out[2 * i + 1][0], padding=2)
        self.check_400(out[-1][0], close=True, head=True)
        self.assertTrue(closed)
        self.assert_at_once(out[-1][1])

    def test_case39_bad_knob_closes_when_request_does(self):
        out, closed = self.timed(self.port, [rq("/?pad=2m", close=True)])
        self.check_400(out[0][0], close=True)
        self.assertTrue(closed)
        out, closed = self.timed(self.port, [rq("/?pad=2m", version="1.0")])
        self.check_400(out[0][0], close=True)
        self.assertTrue(closed)

    def test_case39_knobs_only_for_greetings(self):
        out, closed = self.timed(
            self.port, [rq("/?delay=5s&pad=1k", "DELETE"),
                        rq("/?pad=%zz", "POST", close=True)])
        for resp, took in out:
            self.assertEqual(resp.status, 405)
            self.assertEqual(resp.body, b"405 Method Not Allowed\n")
        self.assert_at_once(out[-1][1])
        self.assertTrue(closed)

    # --- other configurations ---

    def test_case39_knobs_off(self):
        with self.server("") as h:
            out, closed = self.timed(
                h.port, [rq("/?delay=5s&pad=1m"), rq("/?pad=%zz&delay="),
                         rq("/?delay=5s&pad=1m", "HEAD"),
                         rq("/?pad=99999999999999999999", close=True)],
                heads=(False, False, True, False))
            self.check_greeting(out[0][0])
            self.check_greeting(out[1][0])
            self.check_greeting(out[2][0], head=True)
            self.check_greeting(out[3][0], conn="close")
            self.assert_at_once(out[3][1])
            self.assertTrue(closed)
            self.assertEqual(ht.log_problems(h.log()), [])
            self.assertEqual(h.stop(), 0)

    def test_case39_knob_replaces_configured_delay(self):
        with self.server("query_knobs = on\ndelay = 200ms\n"
                         "body_padding = 100\n") as h:
            # ?delay=0ms: no wait, the configured padding.
            out, _ = self.timed(h.port, [rq("/?delay=0ms", close=True)])
            self.check_greeting(out[0][0], padding=100, conn="close")
            self.assert_at_once(out[0][1], 0.2)
            # ?pad= alone: the configured delay, this padding.
            out, _ = self.timed(h.port, [rq("/?pad=0", close=True)])
            self.check_greeting(out[0][0], conn="close")
            self.assert_delayed(out[0][1], 0.2)
            # No knob: the configuration.
            out, _ = self.timed(h.port, [rq("/?x=1", close=True)])
            self.check_greeting(out[0][0], padding=100, conn="close")
            self.assert_delayed(out[0][1], 0.2)
            # A longer one than configured.
            out, _ = self.timed(h.port, [rq("/?delay=500ms&pad=1",
                                            close=True)])
            self.check_greeting(out[0][0], padding=1, conn="close")
            self.assert_delayed(out[0][1], 0.5)
            self.assertEqual(ht.log_problems(h.log()), [])
            self.assertEqual(h.stop(), 0)

    def test_case39_huge_padding_slow_reader(self):
        # 8 MiB to a client with a small receive buffer that reads 16 KiB
        # at a time with pauses, for longer than header_timeout (the time
        # allowed for each part of a response) in all.
        pad = 8 * 1024 * 1024
        with self.server("query_knobs = on\nquery_max_padding = 8m\n",
                         header_timeout="2s") as h:
            out, _ = self.timed(h.port, [rq("/?pad=8m", "HEAD"),
                                         rq("/?pad=8193k", close=True)],
                                heads=(True,))
            self.check_greeting(out[0][0], padding=pad, head=True)
            self.check_400(out[1][0], close=True)

            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            with s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
                s.settimeout(10.0)
                s.connect((HOST, h.port))
                start = time.monotonic()
                s.sendall(rq("/?pad=8m", close=True))
                time.sleep(1.0)         # a stalled reader, within 2s
                data = bytearray()
                while True:
                    chunk = s.recv(16384)
                    if not chunk:
                        break
                    data += chunk
                    time.sleep(0.005)
                took = time.monotonic() - start
            head, sep, body = bytes(data).partition(b"\r\n\r\n")
            self.assertEqual(sep, b"\r\n\r\n")
            head += b"\r\n"
            self.assertIn(b"\r\nContent-Length: %d\r\n"
                          % (len(GREETING) + pad), head)
            self.assertIn(b"\r\nConnection: close\r\n", head)
            self.assertEqual(len(body), len(GREETING) + pad,
                             "body cut after %d bytes" % len(body))
            self.assertEqual(body[:len(GREETING)], GREETING)
            self.assertEqual(body.count(b" ", len(GREETING)), pad)
            self.assertGreater(took, 2.0, "the reader was not slow")
            self.assertTrue(ht.answers(h.port))
            self.assertEqual(ht.log_problems(h.log()), [])
            self.assertEqual(h.stop(), 0)


class AsyncKnobs(KnobsCases, unittest.TestCase):

    def check_other_connection(self, took):
        # One worker: the timer does not hold it.
        self.assert_at_once(took, 0.5)


class UringKnobs(AsyncKnobs):
    ARGS = ("--uring",)


class SyncKnobs(KnobsCases, unittest.TestCase):
    ARGS = ("--sync",)

    def check_other_connection(self, took):
        # One blocking worker: the other client waits for the sleep.
        self.assertGreaterEqual(took, 0.6, "sync served concurrently")


if __name__ == "__main__":
    ht.main()
