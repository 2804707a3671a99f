#!/usr/bin/env python3
"""HTTP/1.x behaviour of hellod over real loopback sockets: the cases of
HTTP-CASES.md (1-24 and 29), run against async mode (2 workers), uring
mode (2 workers) and sync mode (one blocking worker, keep-alive switched
on by the file).  After
every error case the same workers must still answer a fresh GET."""

import email.utils
import re
import socket
import time
import unittest

import hellodtest as ht
from hellodtest import Reader, connect, greeting

HOST = "127.0.0.1"
HOST6 = "::1"
IPV6 = ht.ipv6_loopback()

DATE_RE = (rb"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d "
           rb"(?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
           rb"\d{4} \d\d:\d\d:\d\d GMT")

REASONS = {
    400: "Bad Request",
    405: "Method Not Allowed",
    414: "URI Too Long",
    431: "Request Header Fields Too Large",
    505: "HTTP Version Not Supported",
}


def rq(line=b"GET / HTTP/1.1", *fields, host=True):
    """A request head: the request line, "Host: test" (unless host is
    false), the given field lines, CRLF line endings."""
    lines = [line] + ([b"Host: test"] if host else []) + list(fields)
    return b"\r\n".join(lines) + b"\r\n\r\n"


REQ = rq()
CLOSE = rq(b"GET / HTTP/1.1", b"Connection: close")


def send_paced(sock, chunks, pause=0.02):
    """Sends the chunks as separate writes, pausing between them so that
    they leave as separate segments (the outcome must not depend on it)."""
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for i, c in enumerate(chunks):
        if i:
            time.sleep(pause)
        sock.sendall(c)


class HttpCases:
    """The cases; mixed into one unittest.TestCase per mode."""

    WORKERS = 2
    CONF = ""

    @classmethod
    def setUpClass(cls):
        cls.port = ht.free_port()
        listen = "%s:%d" % (HOST, cls.port)
        if IPV6:
            cls.port6 = ht.free_port(socket.AF_INET6, HOST6)
            listen += " [%s]:%d" % (HOST6, cls.port6)
        cls.srv = ht.start_hellod("[server]\nlisten = %s\n%s"
                                  % (listen, cls.CONF), port=cls.port)
        try:
            cls.srv.wait_log(r"worker \d+ serving", count=cls.WORKERS)
            cls.pids = sorted(cls.srv.worker_pids())
            if len(cls.pids) != cls.WORKERS:
                raise AssertionError("%d workers, expected %d"
                                     % (len(cls.pids), cls.WORKERS))
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        ht.stop_and_close(cls.srv)

    # --- helpers ---

    def conn(self, host=HOST):
        return connect(host, self.port6 if ":" in host else self.port)

    def send(self, data, chunks=None, heads=(), host=HOST):
        """(responses until the server closes, bytes after the last)."""
        return ht.exchange_all(data, host,
                               self.port6 if ":" in host else self.port,
                               heads, chunks)

    def aux_server(self, extra_http):
        """A second server of this class's mode with [http] additions."""
        return ht.start_hellod("[server]\n" + self.CONF + extra_http)

    def check_date(self, value):
        when = email.utils.parsedate_to_datetime(value.decode())
        # Round trip: weekday, zero padding and GMT must all be exact.
        self.assertEqual(email.utils.format_datetime(when, usegmt=True),
                         value.decode())
        self.assertLess(abs(when.timestamp() - time.time()), 5.0,
                        "Date %s is not now" % value)

    def check_greeting(self, resp, addr=HOST, head=False, conn=None,
                       padding=0):
        """resp is exactly the greeting (all bytes, header order)."""
        self.assertIsNotNone(resp, "no response")
        body = greeting(addr) + b" " * padding
        pat = (rb"HTTP/1\.1 200 OK\r\n"
               rb"Content-Type: text/html\r\n"
               rb"Server: hellod\r\n"
               rb"Date: (" + DATE_RE + rb")\r\n"
               rb"Content-Length: " + str(len(body)).encode() + rb"\r\n" +
               (b"Connection: " + conn.encode() + b"\r\n" if conn else b"") +
               rb"\r\n" + re.escape(b"" if head else body))
        m = re.fullmatch(pat, resp.raw, re.S)
        self.assertTrue(m, "not the expected greeting (conn=%s, head=%s): "
                        "%r" % (conn, head, resp.raw[:400]))
        self.check_date(m.group(1))

    def check_error(self, resp, code, close=True, head=False):
        """resp is exactly the text/plain error response for code (with
        no body when it answers HEAD)."""
        self.assertIsNotNone(resp, "no response, expected %d" % code)
        self.assertEqual(resp.status, code, resp.raw[:300])
        body = ("%d %s\n" % (code, REASONS[code])).encode()
        pat = (rb"HTTP/1\.1 " + re.escape(body[:-1]) + rb"\r\n" +
               (rb"Allow: GET, HEAD\r\n" if code == 405 else b"") +
               rb"Content-Type: text/plain\r\n"
               rb"Server: hellod\r\n"
               rb"Date: (" + DATE_RE + rb")\r\n"
               rb"Content-Length: " + str(len(body)).encode() + rb"\r\n" +
               (rb"Connection: close\r\n" if close else b"") +
               rb"\r\n" + (b"" if head else re.escape(body)))
        m = re.fullmatch(pat, resp.raw, re.S)
        self.assertTrue(m, "not the expected %d response (close=%s): %r"
                        % (code, close, resp.raw[:400]))
        self.check_date(m.group(1))

    def alive(self):
        """A fresh GET is answered, by the same workers as at start, and
        once our sockets are closed the workers hold no connection (no
        leaked descriptor)."""
        self.check_greeting(ht.get(HOST, self.port), conn="close")
        self.assertEqual(sorted(self.srv.worker_pids()), self.pids,
                         "a worker was replaced:\n" + self.srv.log())
        ht.wait_for(lambda: ht.tcp_connections(self.pids) == 0, 3.0,
                    what="the workers to close every connection")

    def expect_error(self, data, code, chunks=None):
        """data gets exactly one `code` response, then the server closes;
        the workers keep serving.  An error answer to HEAD has no body."""
        head = (data or b"".join(chunks)).startswith(b"HEAD ")
        out, rest = self.send(data, chunks, heads=(head,))
        self.assertEqual([r.status for r in out], [code],
                         "for %r" % (data or chunks)[:300])
        self.check_error(out[0], code, head=head)
        self.assertEqual(rest, b"", "bytes after the error response")
        self.alive()

    def expect_statuses(self, data, statuses, heads=(), chunks=None):
        """data gets responses with these statuses, then a close."""
        out, rest = self.send(data, chunks, heads)
        self.assertEqual([r.status for r in out], statuses,
                         "for %r" % (data or chunks)[:300])
        self.assertEqual(rest, b"")
        return out

    def expect_silent_close(self, data, within=1.5):
        """data, then our FIN: the server closes without a byte."""
        with self.conn() as s:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
            got, took = ht.wait_eof(s, 5.0)
        self.assertEqual(got, b"", "response to %r" % data)
        self.assertLess(took, within, "close took %.2fs" % took)

    # --- framing and segmentation ---

    def test_case01_one_byte_writes(self):
        data = rq(b"GET /one/byte?at=a-time HTTP/1.1",
                  b"User-Agent: hellod-test", b"Connection: close")
        with self.conn() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                if i < len(data) - 1:
                    ht.assert_quiet(s, 0.002)   # no early answer
            r = Reader(s)
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")
        self.alive()

    def test_case02_split_at_every_offset(self):
        data = rq(b"GET /split?x=1 HTTP/1.1", b"Accept: */*")
        with self.conn() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            r = Reader(s)
            for off in range(1, len(data)):
                s.sendall(data[:off])
                ht.assert_quiet(s, 0.003)
                s.sendall(data[off:])
                resp = r.response()
                self.check_greeting(resp)
                self.assertEqual(r.buf, b"", "offset %d" % off)
        # And on fresh connections, at a few offsets.
        for off in (1, 3, 4, 5, 15, len(CLOSE) - 4, len(CLOSE) - 1):
            with self.conn() as s:
                send_paced(s, [CLOSE[:off], CLOSE[off:]])
                r = Reader(s)
                self.check_greeting(r.response(), conn="close")
                self.assertTrue(r.closed())

    def test_case03_pipelined_150_in_order(self):
        n = 151
        kinds = [i % 3 for i in range(n)]     # GET, HEAD, DELETE
        reqs = []
        for i, k in enumerate(kinds):
            method = (b"GET", b"HEAD", b"DELETE")[k]
            extra = [b"Connection: close"] if i == n - 1 else []
            reqs.append(rq(method + b" /r%d HTTP/1.1" % i, *extra))
        out = self.expect_statuses(b"".join(reqs),
                                   [(200, 200, 405)[k] for k in kinds],
                                   heads=[k == 1 for k in kinds])
        for i, (k, resp) in enumerate(zip(kinds, out)):
            conn = "close" if i == n - 1 else None
            if k == 2:
                self.check_error(resp, 405, close=False)
            else:
                self.check_greeting(resp, head=k == 1, conn=conn)

    def test_case03_pipelined_1000_beyond_one_batch(self):
        # ~180 KB of responses to 30 KB of requests: more than one write
        # batch and more than one read.
        n = 1000
        data = REQ * (n - 1) + CLOSE
        out = self.expect_statuses(data, [200] * n)
        self.check_greeting(out[0])
        self.check_greeting(out[n // 2])
        self.check_greeting(out[-1], conn="close")

    def test_case04_second_half_later(self):
        first = rq(b"GET /first HTTP/1.1")
        second = rq(b"GET /second HTTP/1.1", b"Connection: close")
        for cut in (1, 10, len(second) // 2, len(second) - 1):
            with self.conn() as s:
                s.sendall(first + second[:cut])
                r = Reader(s)
                self.check_greeting(r.response())  # without the rest
                self.assertEqual(r.buf, b"")
                ht.assert_quiet(s, 0.02)
                s.sendall(second[cut:])
                self.check_greeting(r.response(), conn="close")
                self.assertTrue(r.closed())
                self.assertEqual(r.buf, b"")

    def test_case05_leading_empty_lines(self):
        out = self.expect_statuses(b"\r\n\r\n\r\n" + CLOSE, [200])
        self.check_greeting(out[0], conn="close")
        out = self.expect_statuses(b"\n\n" + CLOSE, [200])
        self.check_greeting(out[0], conn="close")
        # Between pipelined requests too.
        out = self.expect_statuses(REQ + b"\r\n" + CLOSE, [200, 200])
        self.check_greeting(out[1], conn="close")

    def test_case05_lone_crlf_then_eof(self):
        self.expect_silent_close(b"\r\n")
        self.expect_silent_close(b"\r\n\r\n\n")
        self.alive()

    def test_case06_lf_only_line_endings(self):
        out = self.expect_statuses(
            b"GET / HTTP/1.1\nHost: test\nConnection: close\n\n", [200])
        self.check_greeting(out[0], conn="close")
        out = self.expect_statuses(
            b"GET / HTTP/1.1\nHost: test\n\n"
            b"GET / HTTP/1.1\r\nHost: test\nConnection: close\r\n\n",
            [200, 200])
        self.check_greeting(out[0])
        self.check_greeting(out[1], conn="close")

    def test_case07_bare_cr(self):
        for data in (b"GET / HTTP/1.1\rHost: test\r\n\r\n",
                     b"GET /\r HTTP/1.1\r\nHost: test\r\n\r\n",
                     b"GET\r/ HTTP/1.1\r\nHost: test\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: te\rst\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: test\r\nX-A\r: b\r\n\r\n",
                     b"GET / HTTP/1.1\r\nHost: test\r\nX-A: b\r\r\n\r\n"):
            with self.subTest(data=data):
                self.expect_error(data, 400)

    def test_case08_cut_then_eof(self):
        for data in (b"G", b"GET", b"GET / HTTP/1.1",
                     b"GET / HTTP/1.1\r\n", b"GET / HTTP/1.1\r\nHost: te",
                     b"GET / HTTP/1.1\r\nHost: test\r\n",
                     b"GET / HTTP/1.1\r\nHost: test\r\n\r"):
            with self.subTest(data=data):
                self.expect_silent_close(data)
        self.alive()

    def test_case09_half_close_after_request(self):
        for data, n, last in ((REQ, 1, None), (REQ * 3, 3, None),
                              (rq(b"GET / HTTP/1.0", host=False), 1,
                               "close")):
            with self.conn() as s:
                s.sendall(data)
                s.shutdown(socket.SHUT_WR)
                r = Reader(s)
                out = ht.read_responses(r)
                self.assertEqual(len(out), n, data)
                for resp in out[:-1]:
                    self.check_greeting(resp)
                self.check_greeting(out[-1], conn=last)
                self.assertEqual(r.buf, b"")
        self.alive()

    def test_case10_reset_does_not_hurt(self):
        mark = len(self.srv.log())
        # Mid-request.
        s = self.conn()
        s.sendall(b"GET / HTTP/1.1\r\nHost: te")
        ht.assert_quiet(s, 0.05)
        ht.reset_close(s)
        # A complete request, reset before reading the answer.
        s = self.conn()
        s.sendall(REQ)
        ht.reset_close(s)
        # Mid-response: many pipelined requests, reset once answers flow.
        for _ in range(3):
            s = self.conn()
            s.sendall(REQ * 2000)
            s.settimeout(5.0)
            self.assertTrue(s.recv(1, socket.MSG_PEEK))
            ht.reset_close(s)
        # A reset after part of the answers was read.
        s = self.conn()
        s.sendall(REQ * 2000)
        r = Reader(s)
        for _ in range(10):
            self.check_greeting(r.response())
        ht.reset_close(s)
        self.alive()
        self.alive()
        problems = ht.log_problems(self.srv.log()[mark:])
        self.assertEqual(problems, [], "logged above info")

    # --- request line ---

    def test_case11_request_line_too_long(self):
        line = b"GET /" + b"a" * 9000 + b" HTTP/1.1"
        self.expect_error(rq(line), 414)
        # The server must not wait for the end of the line.
        self.expect_error(b"GET /" + b"a" * 9000, 414)
        # A long line that fits is served.
        out = self.expect_statuses(
            rq(b"GET /" + b"a" * 7000 + b" HTTP/1.1", b"Connection: close"),
            [200])
        self.check_greeting(out[0], conn="close")

    def test_case12_head_same_headers_no_body(self):
        out = self.expect_statuses(rq(b"HEAD / HTTP/1.1") + CLOSE,
                                   [200, 200], heads=[True])
        self.check_greeting(out[0], head=True)
        self.check_greeting(out[1], conn="close")
        strip = [(k, v) for k, v in out[0].headers if k != "date"]
        self.assertEqual(strip, [(k, v) for k, v in out[1].headers
                                 if k not in ("date", "connection")])
        out = self.expect_statuses(rq(b"HEAD /x HTTP/1.1",
                                      b"Connection: close"), [200],
                                   heads=[True])
        self.check_greeting(out[0], head=True, conn="close")

    def test_case12_other_methods_405(self):
        for m in (b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH",
                  b"TRACE", b"CONNECT", b"get", b"BREW", b"M-SEARCH"):
            with self.subTest(method=m):
                # 405 keeps the connection: the next request is served.
                out = self.expect_statuses(rq(m + b" / HTTP/1.1") + CLOSE,
                                           [405, 200])
                self.check_error(out[0], 405, close=False)
                self.check_greeting(out[1], conn="close")
        out = self.expect_statuses(
            rq(b"POST /form HTTP/1.1", b"Connection: close"), [405])
        self.check_error(out[0], 405, close=True)
        self.alive()

    def test_case12_malformed_method_400(self):
        for line in (b"G(T / HTTP/1.1", b"GE\x01T / HTTP/1.1",
                     b"G@T / HTTP/1.1", b" GET / HTTP/1.1",
                     b"GET\t/ HTTP/1.1", b"G\xc3\x89T / HTTP/1.1",
                     b"/ HTTP/1.1"):
            with self.subTest(line=line):
                self.expect_error(rq(line), 400)

    def test_case13_http10_closed_unless_keepalive(self):
        out = self.expect_statuses(b"GET / HTTP/1.0\r\n\r\n", [200])
        self.check_greeting(out[0], conn="close")
        with self.conn() as s:
            r = Reader(s)
            for _ in range(3):
                s.sendall(b"GET / HTTP/1.0\r\nConnection: keep-alive"
                          b"\r\n\r\n")
                self.check_greeting(r.response(), conn="keep-alive")
            s.sendall(b"GET / HTTP/1.0\r\nHost: test\r\n\r\n")
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    def test_case13_http11_persistent_unless_close(self):
        with self.conn() as s:
            r = Reader(s)
            for _ in range(3):
                s.sendall(REQ)
                self.check_greeting(r.response())
            ht.assert_quiet(s, 0.05)   # not closed after a 1.1 answer
            s.sendall(CLOSE)
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    def test_case13_http12_as_http11(self):
        with self.conn() as s:
            r = Reader(s)
            s.sendall(rq(b"GET / HTTP/1.2"))
            self.check_greeting(r.response())
            s.sendall(rq(b"GET / HTTP/1.9", b"Connection: close"))
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
        # 1.1 rules, so Host is required.
        self.expect_error(rq(b"GET / HTTP/1.2", host=False), 400)

    def test_case13_major_not_1_is_505(self):
        for v in (b"HTTP/2.0", b"HTTP/3.0", b"HTTP/0.9", b"HTTP/9.9"):
            with self.subTest(version=v):
                self.expect_error(rq(b"GET / " + v), 505)

    def test_case13_bad_versions_400(self):
        for line in (b"GET / HTTP/01.1", b"GET / FOO/1.1", b"GET /",
                     b"GET / HTTP/1", b"GET / HTTP/1.10", b"GET / http/1.1",
                     b"GET / HTTP/1.1 ", b"GET / HTTP/1.x", b"GET / HTTP/11",
                     b"GET / HTTP/ 1.1"):
            with self.subTest(line=line):
                self.expect_error(rq(line), 400)
        # HTTP/0.9 style, no fields at all: still a 400 response.
        self.expect_error(b"GET /\r\n\r\n", 400)
        # A request pipelined after an error is not answered.
        out = self.expect_statuses(rq(b"GET / FOO/1.1") + CLOSE, [400])
        self.check_error(out[0], 400)

    def test_case14_targets_served(self):
        for target in (b"/path/to?q=1&r=%20x", b"http://test/path?q",
                       b"HTTP://TEST:8080/", b"http://test",
                       b"https://[::1]:443/x"):
            with self.subTest(target=target):
                out = self.expect_statuses(
                    rq(b"GET " + target + b" HTTP/1.1",
                       b"Connection: close"), [200])
                self.check_greeting(out[0], conn="close")
        # Other methods take any well-formed target: 405.
        out = self.expect_statuses(rq(b"OPTIONS * HTTP/1.1") +
                                   rq(b"CONNECT test:443 HTTP/1.1") + CLOSE,
                                   [405, 405, 200])
        self.check_error(out[0], 405, close=False)
        self.check_error(out[1], 405, close=False)

    def test_case14_bad_targets_400(self):
        for line in (b"GET * HTTP/1.1", b"HEAD * HTTP/1.1",
                     b"GET test:80 HTTP/1.1", b"GET test HTTP/1.1",
                     b"GET http:/x HTTP/1.1", b"GET /a b HTTP/1.1",
                     b"GET  / HTTP/1.1", b"GET /a\x01b HTTP/1.1",
                     b"GET /a\x00 HTTP/1.1", b"GET /a\x7f HTTP/1.1",
                     b"GET /a\tb HTTP/1.1"):
            with self.subTest(line=line):
                self.expect_error(rq(line), 400)

    # --- header fields ---

    def test_case15_header_section_too_large(self):
        big = [b"X-Pad-%d: %s" % (i, b"p" * 1000) for i in range(9)]
        self.expect_error(rq(b"GET / HTTP/1.1", *big), 431)
        # Over the limit and still unfinished: answered without the end.
        self.expect_error(b"GET / HTTP/1.1\r\nHost: test\r\n" +
                          b"\r\n".join(big) + b"\r\n", 431)
        # 7 KB of fields fit in the default 8 KB.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", *(big[:7] + [b"Connection: close"])),
            [200])
        self.check_greeting(out[0], conn="close")

    def test_case15_max_header_size_setting(self):
        with self.aux_server("max_header_size = 1k\n") as h:
            def statuses(data):
                out, rest = ht.exchange_all(data, HOST, h.port)
                self.assertEqual(rest, b"")
                return [r.status for r in out]
            self.assertEqual(statuses(rq(b"GET /" + b"a" * 1100 +
                                         b" HTTP/1.1")), [414])
            self.assertEqual(statuses(rq(b"GET / HTTP/1.1",
                                         b"X-A: " + b"a" * 1100)), [431])
            self.assertEqual(statuses(rq(b"GET /" + b"a" * 800 +
                                         b" HTTP/1.1",
                                         b"Connection: close")), [200])
            self.assertEqual(h.stop(), 0)

    def test_case16_field_count(self):
        fields = [b"X-F%d: v" % i for i in range(100)]
        # Host + Connection + 98 = 100 fields: served.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Connection: close", *fields[:98]), [200])
        self.check_greeting(out[0], conn="close")
        # Host + 100 = 101 fields: 431.
        self.expect_error(rq(b"GET / HTTP/1.1", *fields), 431)

    def test_case17_field_syntax_400(self):
        for fields in ([b"X-A : b"], [b"Host : test"], [b"X-A\t: b"],
                       [b"X-A: a", b" folded"], [b"X-A: a", b"\tfolded"],
                       [b"X-A: a\x00b"], [b"X\x00A: b"], [b"X-A: \x01"],
                       [b"X-A: a\x7f"], [b"X\x1bA: b"], [b": value"],
                       [b"X-A value"], [b"X A: b"], [b"X-\xc3\xa9: b"]):
            with self.subTest(fields=fields):
                self.expect_error(rq(b"GET / HTTP/1.1", *fields), 400)
        # Tabs and obs-text in values are fine.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"X-A:\tb\tc\t", b"X-B: caf\xc3\xa9",
               b"X-C:", b"Connection: close"), [200])
        self.check_greeting(out[0], conn="close")

    def test_case18_host(self):
        self.expect_error(rq(host=False), 400)
        self.expect_error(rq(b"GET / HTTP/1.1", b"Host: other"), 400)
        self.expect_error(rq(b"GET / HTTP/1.1", b"HOST: test"), 400)
        self.expect_error(rq(b"GET / HTTP/1.0", b"host: test"), 400)
        # HTTP/1.0 needs no Host.
        out = self.expect_statuses(b"GET / HTTP/1.0\r\n\r\n", [200])
        self.check_greeting(out[0], conn="close")

    def test_case19_connection_tokens(self):
        for value in (b"close", b"CLOSE", b"foo, Close", b"foo,close,bar",
                      b"keep-alive, close", b" cLoSe "):
            with self.subTest(value=value):
                out = self.expect_statuses(
                    rq(b"GET / HTTP/1.1", b"Connection: " + value), [200])
                self.check_greeting(out[0], conn="close")
        # Requests pipelined after "Connection: close" are not answered.
        out = self.expect_statuses(CLOSE + REQ + REQ, [200])
        self.check_greeting(out[0], conn="close")
        out = self.expect_statuses(b"GET / HTTP/1.0\r\n\r\n" + REQ, [200])
        self.check_greeting(out[0], conn="close")
        # In a second Connection field.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Connection: foo", b"Connection: close"),
            [200])
        self.check_greeting(out[0], conn="close")
        # Not the token "close": persistent.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Connection: closed, xclose") + CLOSE,
            [200, 200])
        self.check_greeting(out[0])
        # HTTP/1.0 keep-alive in any case, in a list.
        for value in (b"Keep-Alive", b"upgrade, KEEP-ALIVE",
                      b"foo,keep-alive"):
            with self.subTest(value=value):
                out = self.expect_statuses(
                    b"GET / HTTP/1.0\r\nConnection: " + value +
                    b"\r\n\r\n" + CLOSE, [200, 200])
                self.check_greeting(out[0], conn="keep-alive")
                self.check_greeting(out[1], conn="close")

    def test_case19_keepalive_disabled(self):
        # keepalive_timeout = 0: every answer closes the connection.
        conf = self.CONF.replace("keepalive_timeout = 5s",
                                 "keepalive_timeout = 0")
        with ht.start_hellod("[server]\n" + conf) as h:
            for data in (REQ + REQ, rq(b"GET / HTTP/1.0",
                                       b"Connection: keep-alive") + REQ,
                         rq(b"HEAD / HTTP/1.2") + REQ):
                with self.subTest(data=data[:20]):
                    out, rest = ht.exchange_all(data, HOST, h.port,
                                                heads=[b"HEAD" in data[:4]])
                    self.assertEqual([r.status for r in out], [200])
                    self.check_greeting(out[0], conn="close",
                                        head=b"HEAD" in data[:4])
                    self.assertEqual(rest, b"")
            self.assertEqual(h.stop(), 0)

    # --- bodies ---

    def test_case20_te_and_cl(self):
        self.expect_error(rq(b"GET / HTTP/1.1", b"Transfer-Encoding: chunked",
                             b"Content-Length: 5") + b"0\r\n\r\n", 400)
        self.expect_error(rq(b"POST / HTTP/1.1", b"Content-Length: 0",
                             b"Transfer-Encoding: chunked") + b"0\r\n\r\n",
                          400)

    def test_case21_bad_transfer_encoding(self):
        for line, te in ((b"GET / HTTP/1.0", [b"chunked"]),
                         (b"POST / HTTP/1.0", [b"chunked"]),
                         (b"GET / HTTP/1.1", [b"gzip"]),
                         (b"GET / HTTP/1.1", [b"chunked, gzip"]),
                         (b"GET / HTTP/1.1", [b"chunked", b"gzip"]),
                         (b"GET / HTTP/1.1", [b"chunked x"])):
            with self.subTest(line=line, te=te):
                self.expect_error(
                    rq(line, *[b"Transfer-Encoding: " + t for t in te]) +
                    b"0\r\n\r\n", 400)
        # A list ending in chunked is framed as chunked.
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Transfer-Encoding: gzip, Chunked") +
            b"0\r\n\r\n" + CLOSE, [200, 200])
        self.check_greeting(out[1], conn="close")

    def test_case21_empty_transfer_encoding(self):
        # "Transfer-Encoding:" with no coding is present and does not end
        # in chunked: 400 and close (RFC 9112 6.3 rule 4; the contract's
        # "TE not ending in chunked" and "TE+CL").
        for fields in ([b"Transfer-Encoding: ", b"Content-Length: 3"],
                       [b"Transfer-Encoding:"], [b"Transfer-Encoding: ,"]):
            with self.subTest(fields=fields):
                self.expect_error(rq(b"GET / HTTP/1.1", *fields) + b"abc" +
                                  CLOSE, 400)

    def test_case22_bad_content_length(self):
        for cl in ([b"abc"], [b"-1"], [b"+1"], [b"1.5"], [b"0x10"],
                   [b"18446744073709551616"], [b"99999999999999999999999"],
                   [b"1, 2"], [b"1", b"2"], [b""], [b"1 2"], [b","]):
            with self.subTest(cl=cl):
                self.expect_error(
                    rq(b"GET / HTTP/1.1",
                       *[b"Content-Length: " + v for v in cl]), 400)

    def test_case22_error_not_lost_to_reset(self):
        # A rejected request followed by input the server never parses:
        # closing with it unread would send RST, which can destroy the
        # response in flight.  The server must send FIN and keep reading
        # for a moment: a client still sending just after the response
        # is not reset.
        junk = b"x" * (64 * 1024)
        for head in (rq(b"POST / HTTP/1.1", b"Content-Length: abc"),
                     rq(b"GET / HTTP/2.0"),
                     rq(b"GET /" + b"a" * 9000 + b" HTTP/1.1")):
            with self.subTest(head=head[:30]):
                with self.conn() as s:
                    try:
                        s.sendall(head + junk)
                        r = Reader(s)
                        resp = r.response()
                        self.assertIsNotNone(resp)
                        self.assertIn(resp.status, (400, 414, 505))
                        self.check_error(resp, resp.status)
                        self.assertTrue(r.closed())     # FIN seen
                        for i in range(10):     # 0.2 s of further input
                            s.sendall(b"y" * 1024)
                            time.sleep(0.02)
                        err = s.getsockopt(socket.SOL_SOCKET,
                                           socket.SO_ERROR)
                    except (BrokenPipeError, ConnectionResetError) as e:
                        self.fail("reset instead of a lingering close: %r"
                                  % e)
                    self.assertEqual(err, 0, "socket error %d" % err)
        self.alive()

    def test_case23_content_length_body_skipped(self):
        # If the body were parsed as a request, there would be a 405.
        body = rq(b"POST /smuggled HTTP/1.1")
        cl = b"Content-Length: %d" % len(body)
        out = self.expect_statuses(rq(b"GET / HTTP/1.1", cl) + body + CLOSE,
                                   [200, 200])
        self.check_greeting(out[0])
        self.check_greeting(out[1], conn="close")
        out = self.expect_statuses(rq(b"HEAD / HTTP/1.1", cl) + body + CLOSE,
                                   [200, 200], heads=[True])
        self.check_greeting(out[0], head=True)
        out = self.expect_statuses(rq(b"POST / HTTP/1.1", cl) + body + CLOSE,
                                   [405, 200])
        self.check_error(out[0], 405, close=False)
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Content-Length: 0") + CLOSE, [200, 200])
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Content-Length: 0%d" % len(body)) +
            body + CLOSE, [200, 200])
        # The body arriving in pieces, and a large body.
        with self.conn() as s:
            send_paced(s, [rq(b"GET / HTTP/1.1", cl) + body[:3],
                           body[3:] + CLOSE[:2], CLOSE[2:]])
            out = ht.read_responses(Reader(s))
            self.assertEqual([r.status for r in out], [200, 200])
        big = body * 4000
        out = self.expect_statuses(
            rq(b"GET / HTTP/1.1", b"Content-Length: %d" % len(big)) + big +
            CLOSE, [200, 200])
        self.check_greeting(out[1], conn="close")

    def test_case24_chunked_body_skipped(self):
        te = b"Transfer-Encoding: chunked"
        smuggled = rq(b"POST /smuggled HTTP/1.1")
        for body in (b"%x\r\n" % len(smuggled) + smuggled + b"\r\n0\r\n\r\n",
                     b"5;name=value\r\nhello\r\n3 ; x\r\nabc\r\n0\r\n"
                     b"X-Trailer: GET / HTTP/1.1\r\n\r\n",
                     b"000A\r\n0123456789\r\nFf\r\n" + b"x" * 255 +
                     b"\r\n0\r\n\r\n",
                     b"0\r\n\r\n"):
            with self.subTest(body=body[:40]):
                data = rq(b"GET / HTTP/1.1", te) + body + CLOSE
                out = self.expect_statuses(data, [200, 200])
                self.check_greeting(out[0])
                self.check_greeting(out[1], conn="close")
                # Split into pieces.
                with self.conn() as s:
                    n = len(data)
                    send_paced(s, [data[:n // 3], data[n // 3:n // 2],
                                   data[n // 2:]])
                    out = ht.read_responses(Reader(s))
                    self.assertEqual([r.status for r in out], [200, 200])

    def test_case24_malformed_chunks_400(self):
        te = b"Transfer-Encoding: chunked"
        for body in (b"zz\r\n", b"-5\r\nhello\r\n0\r\n\r\n",
                     b"5\r\nhelloXX0\r\n\r\n", b"1" * 17 + b"\r\n",
                     b"5\rhello\r\n0\r\n\r\n",
                     b"\r\n0\r\n\r\n", b"5\r\nhello\r\n0\r\n X: y\r\n\r\n"):
            with self.subTest(body=body):
                out = self.expect_statuses(
                    rq(b"GET / HTTP/1.1", te) + body + CLOSE, [200, 400])
                self.check_greeting(out[0])
                self.check_error(out[1], 400)
                self.alive()

    # --- responses ---

    def test_case29_exact_greeting_ipv4(self):
        with self.conn() as s:
            r = Reader(s)
            s.sendall(REQ)
            self.check_greeting(r.response())
            s.sendall(rq(b"HEAD / HTTP/1.1"))
            self.check_greeting(r.response(head=True), head=True)
            s.sendall(CLOSE)
            self.check_greeting(r.response(), conn="close")
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    @unittest.skipUnless(IPV6, "::1 cannot be bound")
    def test_case29_exact_greeting_ipv6(self):
        with self.conn(HOST6) as s:
            r = Reader(s)
            s.sendall(REQ)
            self.check_greeting(r.response(), addr=HOST6)
            s.sendall(rq(b"HEAD / HTTP/1.1"))
            self.check_greeting(r.response(head=True), addr=HOST6,
                                head=True)
            s.sendall(rq(b"GET / HTTP/1.0", host=False))
            self.check_greeting(r.response(), addr=HOST6, conn="close")
            self.assertTrue(r.closed())
        out, rest = self.send(rq(b"GET / HTTP/2.0"), host=HOST6)
        self.check_error(out[0], 505)

    def test_case29_body_padding(self):
        # 150000 bytes: more than one buffer of spaces per response.
        pad = 150000
        with self.aux_server("body_padding = %d\n" % pad) as h:
            with connect(HOST, h.port) as s:
                r = Reader(s)
                s.sendall(REQ + rq(b"HEAD / HTTP/1.1") + REQ + CLOSE)
                self.check_greeting(r.response(), padding=pad)
                self.check_greeting(r.response(head=True), padding=pad,
                                    head=True)
                self.check_greeting(r.response(), padding=pad)
                self.check_greeting(r.response(), padding=pad,
                                    conn="close")
                self.assertTrue(r.closed())
                self.assertEqual(r.buf, b"")
            # Errors carry no padding.
            out, rest = ht.exchange_all(rq(b"GET / HTTP/2.0"), HOST, h.port)
            self.check_error(out[0], 505)
            self.assertEqual(h.stop(), 0)

    def delayed(self, h, count):
        """count concurrent GETs; returns (elapsed per response)."""
        start = time.monotonic()
        socks = [connect(HOST, h.port) for _ in range(count)]
        try:
            for s in socks:
                s.sendall(CLOSE)
            took = []
            for s in socks:
                self.check_greeting(Reader(s).response(), conn="close")
                took.append(time.monotonic() - start)
            return took
        finally:
            for s in socks:
                s.close()

    def test_delay(self):
        with self.aux_server("delay = 300ms\n") as h:
            took = self.delayed(h, 1)[0]
            self.assertGreaterEqual(took, 0.28)
            self.assertLess(took, 1.5)
            took = self.delayed(h, 2)
            self.check_concurrent_delay(took)
            # A client gone while its response is delayed.
            pids = h.worker_pids()
            s = connect(HOST, h.port)
            s.sendall(REQ * 3)
            ht.reset_close(s)
            took = self.delayed(h, 1)[0]
            self.assertEqual(h.worker_pids(), pids)
            self.assertEqual(ht.log_problems(h.log()), [])
            self.assertEqual(h.stop(), 0)


class AsyncHttp(HttpCases, unittest.TestCase):
    WORKERS = 2
    CONF = ("mode = async\nworkers = 2\n[http]\n"
            "keepalive_timeout = 5s\nheader_timeout = 5s\n")

    def check_concurrent_delay(self, took):
        # Delays overlap: both done in about one delay, not two.
        self.assertGreaterEqual(min(took), 0.28)
        self.assertLess(max(took), 0.55, "delays did not overlap: %s" % took)


class UringHttp(AsyncHttp):
    CONF = ("mode = uring\nworkers = 2\n[http]\n"
            "keepalive_timeout = 5s\nheader_timeout = 5s\n")


class SyncHttp(HttpCases, unittest.TestCase):
    WORKERS = 1
    CONF = ("mode = sync\n[http]\n"
            "keepalive_timeout = 5s\nheader_timeout = 5s\n")

    def check_concurrent_delay(self, took):
        # One blocking worker: the second waits for the first.
        self.assertGreaterEqual(min(took), 0.28)
        self.assertGreaterEqual(max(took), 0.58,
                                "sync served concurrently: %s" % took)


if __name__ == "__main__":
    ht.main()
