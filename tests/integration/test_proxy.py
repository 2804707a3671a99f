#!/usr/bin/env python3
"""The client address behind proxies (HTTP-CASES.md 30-38): the PROXY
protocol on `proxy_listen` addresses (v1 and v2, whole, split, one byte
at a time, pipelined, refused, too slow), a PROXY header on a plain
listener, the forwarded headers of `[proxy] header` walked through
`[proxy] trusted`, header text that must never reach the greeting or the
access log, the access log's client and peer, reload and configuration
errors.  Every test of the shared part runs in AsyncProxy (2 workers) and
SyncProxy (--sync)."""

import json
import os
import re
import signal
import socket
import struct
import tempfile
import threading
import time
import unittest

import hellodtest as ht
from hellodtest import Reader, connect, greeting

HOST = "127.0.0.1"

# A PROXY v1 line; the source is what the greeting names.
V1 = b"PROXY TCP4 192.0.2.10 198.51.100.1 4711 80\r\n"
V1_SRC = "192.0.2.10"

# PROXY v2 (HAProxy doc/proxy-protocol.txt 2.2).
SIG = b"\r\n\r\n\x00\r\nQUIT\n"
V2_LOCAL = 0x20
V2_PROXY = 0x21
AF_UNSPEC = 0x00
TCP4 = 0x11
TCP6 = 0x21
UNIX_STREAM = 0x31


def v1(src, dst, sport, dport, proto=b"TCP4"):
    return b"PROXY %s %s %s %d %d\r\n" % (proto, src.encode(), dst.encode(),
                                          sport, dport)


def v2(ver_cmd=V2_PROXY, fam=TCP4, body=b"", length=None):
    """A v2 header: signature, ver_cmd, fam, length (that of body unless
    given), body (address block and TLVs)."""
    n = len(body) if length is None else length
    return SIG + struct.pack("!BBH", ver_cmd, fam, n) + body


def inet4(src, dst="198.51.100.1", sport=4711, dport=80):
    return (socket.inet_pton(socket.AF_INET, src) +
            socket.inet_pton(socket.AF_INET, dst) +
            struct.pack("!HH", sport, dport))


def inet6(src, dst="2001:db8:1::1", sport=4711, dport=443):
    return (socket.inet_pton(socket.AF_INET6, src) +
            socket.inet_pton(socket.AF_INET6, dst) +
            struct.pack("!HH", sport, dport))


def unix_block(src=b"/run/client.sock", dst=b"/run/hellod.sock"):
    return src.ljust(108, b"\0") + dst.ljust(108, b"\0")


def tlv(kind, value):
    return struct.pack("!BH", kind, len(value)) + value


# ALPN, AUTHORITY, a NOOP padding, and a custom type.
TLVS = (tlv(0x01, b"http/1.1") + tlv(0x02, b"www.example.com") +
        tlv(0x04, b"\0" * 7) + tlv(0xE0, b"GET / HTTP/1.1\r\n\r\n"))

# SSL (client 0x07: SSL, certificate in the connection and the session;
# verify 0) with VERSION, CN, CIPHER, SIG_ALG and KEY_ALG sub-TLVs.
SSL_TLV = tlv(0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3") +
              tlv(0x22, b"client.example") +
              tlv(0x23, b"TLS_AES_256_GCM_SHA384") +
              tlv(0x24, b"RSA-SHA256") + tlv(0x25, b"RSA2048"))
UNIQUE_ID = tlv(0x05, b"u" * 128)        # the most it may carry

# The largest v2 header taken, fixed part and TLVs included.
V2_MAX = 4096


def crc32c(data):
    """CRC32C (Castagnoli), bit by bit."""
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
    return crc ^ 0xFFFFFFFF


def v2_crc(ver_cmd=V2_PROXY, fam=TCP4, before=b"", after=b"", flip=False):
    """A v2 header whose block is before, a CRC32C TLV, after; its value
    computed over the whole header (wrong with flip)."""
    head = v2(ver_cmd, fam, before + tlv(0x03, b"\0" * 4) + after)
    at = 16 + len(before) + 3
    crc = crc32c(head) ^ (1 if flip else 0)
    return head[:at] + struct.pack("!I", crc) + head[at + 4:]


# Everything HAProxy may send at once, a request in a TLV's value, and a
# CRC32C over it all.
ALL_TLVS = (tlv(0x01, b"h2") + tlv(0x02, b"www.example.com") + UNIQUE_ID +
            SSL_TLV + tlv(0x04, b"") + tlv(0xE0, b"GET /tlv HTTP/1.1\r\n"
                                           b"Host: t\r\n\r\n"))


def rq(path="/", *fields, close=True, method=b"GET"):
    lines = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: test"]
    lines += list(fields)
    if close:
        lines.append(b"Connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


REQ = rq()

ADDR_REASON = ("invalid address '%s' (expected IPv4:PORT or [IPv6]:PORT, "
               "port 1-65535)")

COMBINED_RE = (r'(?P<client>\S+) - - \[\d\d/[A-Z][a-z]{2}/\d{4}:'
               r'\d\d:\d\d:\d\d [+-]\d{4}\] "(?P<request>[^"]*)" '
               r'(?P<status>\d{3}) (?P<bytes>\d+) "(?P<ref>[^"]*)" '
               r'"(?P<ua>[^"]*)"(?: "(?P<peer>[^"]*)")?')


def xff(*values, name=b"X-Forwarded-For"):
    """Field lines of the given header, one per value."""
    return [name + b": " + v.encode("latin-1") for v in values]


class ProxyCases:
    """The shared cases; mixed into one TestCase per mode."""

    ARGS = []
    WORKERS = 2
    TRUSTED = "127.0.0.1 10.0.0.0/8 2001:db8:ffff::/48"

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="hellod-proxy-")
        cls.access = os.path.join(cls.tmp.name, "access.log")
        cls.port = ht.free_port()
        cls.pport = ht.free_port()
        cls.pport2 = ht.free_port()
        cls.srv = cls.start(
            "[server]\nlisten = %s:%d\n"
            "proxy_listen = %s:%d\nproxy_listen = %s:%d\n"
            "[http]\nheader_timeout = 1s\nkeepalive_timeout = 5s\n"
            "[proxy]\ntrusted = %s\nheader = x-forwarded-for\n"
            "[log]\naccess_log = %s\n"
            % (HOST, cls.port, HOST, cls.pport, HOST, cls.pport2,
               cls.TRUSTED, cls.access), port=cls.port)
        try:
            cls.pids = sorted(cls.srv.worker_pids())
            if len(cls.pids) != cls.WORKERS:
                raise AssertionError("%d workers, expected %d"
                                     % (len(cls.pids), cls.WORKERS))
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            ht.stop_and_close(cls.srv)
        finally:
            cls.tmp.cleanup()

    @classmethod
    def start(cls, conf, port=None, workers=None, host=HOST):
        """A server of this class's mode, ready and with its workers
        serving (async and uring: `workers`, or the class's number)."""
        workers = 1 if cls.MODE == "sync" else workers or cls.WORKERS
        conf = conf.replace("[server]\n", "[server]\nworkers = %d\n"
                            % workers, 1)
        h = ht.Hellod(conf, args=cls.ARGS, port=port, host=host,
                      ready=False)
        try:
            h.wait_ready()
            h.wait_log(r"worker \d+ serving", count=workers)
        except BaseException:
            h.close()
            raise
        return h

    def aux(self, proxy="", header="x-forwarded-for", extra=""):
        """Another server of this mode with a PROXY listener (h.pport)
        and the given [proxy] settings."""
        pport = ht.free_port()
        conf = ("[server]\nproxy_listen = %s:%d\n"
                "[http]\nheader_timeout = 2s\nkeepalive_timeout = 5s\n"
                "[proxy]\n%sheader = %s\n%s"
                % (HOST, pport, proxy, header, extra))
        h = self.start(conf)
        h.pport = pport
        return h

    # --- helpers ---

    def check_greeting(self, resp, addr, head=False):
        self.assertIsNotNone(resp, "no response, expected the greeting "
                             "for %s" % addr)
        self.assertEqual(resp.status, 200, resp.raw[:300])
        body = greeting(addr)
        self.assertEqual(resp.body, b"" if head else body,
                         "expected the greeting for %s" % addr)
        self.assertEqual(resp.header("content-type"), "text/html")
        self.assertEqual(resp.header("content-length"), str(len(body)))

    def served(self, data, addr, port=None):
        """data on a fresh connection gets exactly one greeting naming
        addr, then the server closes."""
        out, rest = ht.exchange_all(data, HOST, port or self.pport)
        self.assertEqual(len(out), 1, "for %r: %r" % (
            data[:200], [r.raw[:200] for r in out]))
        self.check_greeting(out[0], addr)
        self.assertEqual(rest, b"")

    def refused(self, data, half_close=False, port=None):
        """data on a fresh connection to a PROXY listener: closed without
        a single byte, promptly."""
        with connect(HOST, port or self.pport) as s:
            try:
                s.sendall(data)
                if half_close:
                    s.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass
            got, took = ht.wait_eof(s, 5.0)
        self.assertEqual(got, b"", "response to %r" % data[:200])
        self.assertLess(took, 0.9, "closed only after %.2fs (%r)"
                        % (took, data[:200]))

    def alive(self):
        """The same workers still serve: a PROXY connection names its
        source, a plain one its peer, and no connection is left open."""
        self.served(V1 + REQ, V1_SRC)
        self.served(REQ, HOST, port=self.port)
        self.assertEqual(sorted(self.srv.worker_pids()), self.pids,
                         "a worker was replaced:\n" + self.srv.log())
        ht.wait_for(lambda: ht.tcp_connections(self.pids) == 0, 3.0,
                    what="the workers to close every connection")

    def walk(self, values, addr, name=b"X-Forwarded-For", port=None,
             prefix=b""):
        """A request with one field line per value (after prefix, a PROXY
        header, on the PROXY listener) is greeted as addr."""
        data = prefix + rq("/", *xff(*values, name=name))
        if port is None:
            port = self.pport if prefix else self.port
        self.served(data, addr, port=port)

    def access_lines(self, path, method="GET"):
        """The access log lines of requests for path (a unique path),
        waited for."""
        def lines():
            try:
                with open(self.access, "rb") as f:
                    text = f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                return None
            found = [l for l in text.splitlines()
                     if '"%s %s HTTP/1.1"' % (method, path) in l]
            return found or None
        return ht.wait_for(lines, 5.0, what="the access log line for "
                           + path)

    # --- 30: valid headers ---

    def test_case30_v1_tcp4(self):
        self.served(V1 + REQ, V1_SRC)
        self.served(v1("192.0.2.255", "127.0.0.1", 65535, 65535) + REQ,
                    "192.0.2.255")
        self.served(v1("192.0.2.0", "0.0.0.0", 0, 0) + REQ, "192.0.2.0")
        # The other PROXY listener of the same configuration.
        self.served(V1 + REQ, V1_SRC, port=self.pport2)

    def test_case30_v1_tcp6(self):
        self.served(v1("2001:db8::1", "2001:db8::2", 4711, 443, b"TCP6")
                    + REQ, "2001:db8::1")
        # Printed by inet_ntop, not echoed.
        self.served(v1("2001:0DB8:0:0:0:0:0:00a1", "::1", 1, 2, b"TCP6")
                    + REQ, "2001:db8::a1")
        # An IPv4-mapped source prints as IPv4.
        self.served(v1("::ffff:192.0.2.9", "::ffff:127.0.0.1", 1, 2,
                       b"TCP6") + REQ, "192.0.2.9")

    def test_case30_v1_unknown(self):
        for head in (b"PROXY UNKNOWN\r\n",
                     b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff "
                     b"65535 65535\r\n",
                     b"PROXY UNKNOWN 192.0.2.1 anything at all\r\n"):
            with self.subTest(head=head):
                self.served(head + REQ, HOST)

    def test_case30_v1_length_limit_107(self):
        # The longest line is 107 bytes, CRLF included.
        src = "2001:0db8:0000:0000:0000:0000:0000:00b1"
        dst = "2001:0db8:0000:0000:0000:0000:192.0.22.100"
        line = v1(src, dst, 65535, 65535, b"TCP6")
        self.assertEqual(len(line), 107)
        self.served(line + REQ, "2001:db8::b1")
        unknown = b"PROXY UNKNOWN " + b"x" * 91 + b"\r\n"
        self.assertEqual(len(unknown), 107)
        self.served(unknown + REQ, HOST)
        # One byte more: refused, whatever the line says.
        line = v1(src, "2001:0db8:0000:0000:0000:0000:192.0.222.100",
                  65535, 65535, b"TCP6")
        self.assertEqual(len(line), 108)
        self.refused(line + REQ)
        self.refused(b"PROXY UNKNOWN " + b"x" * 92 + b"\r\n" + REQ)
        self.alive()

    def test_case30_v2_inet(self):
        self.served(v2(body=inet4("192.0.2.20")) + REQ, "192.0.2.20")
        self.served(v2(fam=TCP6, body=inet6("2001:db8::20")) + REQ,
                    "2001:db8::20")
        self.served(v2(fam=TCP6, body=inet6("::ffff:192.0.2.21")) + REQ,
                    "192.0.2.21")

    def test_case30_v2_local_unspec_unix_keep_the_peer(self):
        for head in (v2(V2_LOCAL, AF_UNSPEC),
                     v2(V2_LOCAL, TCP4, inet4("192.0.2.30")),
                     v2(V2_LOCAL, TCP6, inet6("2001:db8::30")),
                     v2(V2_PROXY, AF_UNSPEC),
                     v2(V2_PROXY, AF_UNSPEC, tlv(0x04, b"\x01\x02\x03")),
                     v2(V2_PROXY, UNIX_STREAM, unix_block()),
                     v2(V2_PROXY, UNIX_STREAM, unix_block() + TLVS)):
            with self.subTest(head=head[12:20]):
                self.served(head + REQ, HOST)

    def test_case30_v2_tlvs(self):
        head = v2(body=inet4("192.0.2.40") + TLVS)
        # The TLVs (one of them holds request bytes) belong to the
        # header, never parsed as a request.
        self.served(head + REQ, "192.0.2.40")
        self.served(v2(fam=TCP6, body=inet6("2001:db8::40") + TLVS) + REQ,
                    "2001:db8::40")
        # The TLVs arrive in later writes than the address block: no
        # answer before the header's last byte.
        addr_end = 16 + 12
        for cuts in ((addr_end,), (addr_end, addr_end + 5),
                     (addr_end + 3, len(head)),
                     (addr_end, len(head) - 1)):
            with self.subTest(cuts=cuts):
                bounds = (0,) + cuts + (len(head + REQ),)
                data = head + REQ
                chunks = [data[a:b] for a, b in zip(bounds, bounds[1:])]
                with connect(HOST, self.pport) as s:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    for c in chunks[:-1]:
                        s.sendall(c)
                        ht.assert_quiet(s, 0.02)
                    s.sendall(chunks[-1])
                    r = Reader(s)
                    self.check_greeting(r.response(), "192.0.2.40")
                    self.assertTrue(r.closed())
                    self.assertEqual(r.buf, b"")

    def test_case30_v2_tlv_kinds(self):
        # Each kind of TLV, alone and all at once, then two pipelined
        # requests: two greetings, nothing read from the TLVs.
        reqs = rq("/1", close=False) + REQ
        a4, a6 = inet4("192.0.2.42"), inet6("2001:db8::42")
        for head, addr in (
                (v2(body=a4 + tlv(0x01, b"h2")), "192.0.2.42"),
                (v2(body=a4 + tlv(0x02, b"www.example.com")), "192.0.2.42"),
                (v2(body=a4 + UNIQUE_ID), "192.0.2.42"),
                (v2(body=a4 + SSL_TLV), "192.0.2.42"),
                (v2(body=a4 + tlv(0x04, b"") + tlv(0x04, b"\0" * 300)),
                 "192.0.2.42"),
                (v2_crc(before=a4), "192.0.2.42"),
                (v2_crc(before=a4 + tlv(0x01, b"h2"), after=ALL_TLVS),
                 "192.0.2.42"),
                (v2_crc(fam=TCP6, before=a6, after=ALL_TLVS),
                 "2001:db8::42"),
                (v2_crc(fam=AF_UNSPEC, after=ALL_TLVS), HOST),
                (v2_crc(V2_LOCAL, AF_UNSPEC), HOST),
                (v2_crc(V2_LOCAL, AF_UNSPEC, flip=True), HOST)):
            with self.subTest(head=head[12:40]):
                out, rest = ht.exchange_all(head + reqs, HOST, self.pport)
                self.assertEqual(len(out), 2, [r.raw[:100] for r in out])
                for resp in out:
                    self.check_greeting(resp, addr)
                self.assertEqual(rest, b"")

    def test_case30_v2_tlv_block_up_to_4096(self):
        # A header of exactly V2_MAX bytes over several writes is taken,
        # none of its TLV value read as a request.
        body = inet4("192.0.2.41")
        pad = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n" * 200
        value = pad[:V2_MAX - 16 - len(body) - 3]
        head = v2(body=body + tlv(0x04, value))
        self.assertEqual(len(head), V2_MAX)
        with connect(HOST, self.pport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for a, b in ((0, 1000), (1000, 2000), (2000, V2_MAX - 1)):
                s.sendall(head[a:b])
                ht.assert_quiet(s, 0.02)
            s.sendall(head[V2_MAX - 1:] + REQ)
            r = Reader(s)
            out = ht.read_responses(r)
        self.assertEqual(len(out), 1, [x.raw[:100] for x in out])
        self.check_greeting(out[0], "192.0.2.41")
        # One byte more, or the largest length the field holds: refused
        # at the length, before the TLVs arrive.
        self.refused(v2(body=body + tlv(0x04, value + b"x")) + REQ)
        self.refused(head[:14] + b"\x0f\xf1")
        self.refused(v2(body=body, length=0xFFFF))
        self.refused(v2(V2_LOCAL, AF_UNSPEC, length=0xFFFF))
        self.alive()

    def split_every_offset(self, data, addr):
        """data on one fresh connection per offset, in two writes; no
        byte and no close before the second."""
        for off in range(1, len(data)):
            with connect(HOST, self.pport) as s:
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                s.sendall(data[:off])
                try:
                    ht.assert_quiet(s, 0.003)
                except AssertionError as e:
                    self.fail("offset %d of %r: %s" % (off, data, e))
                s.sendall(data[off:])
                r = Reader(s)
                resp = r.response()
                self.check_greeting(resp, addr)
                self.assertTrue(r.closed(), "offset %d" % off)
                self.assertEqual(r.buf, b"", "offset %d" % off)

    def test_case30_v1_split_at_every_offset(self):
        self.split_every_offset(v1("192.0.2.50", "198.51.100.1", 4711, 80)
                                + REQ, "192.0.2.50")
        self.alive()

    def test_case30_v2_split_at_every_offset(self):
        self.split_every_offset(
            v2(body=inet4("192.0.2.51") + tlv(0x02, b"a.example"))
            + REQ, "192.0.2.51")
        self.alive()

    def one_byte_at_a_time(self, data, addr):
        with connect(HOST, self.pport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                if i < len(data) - 1:
                    ht.assert_quiet(s, 0.002)
            r = Reader(s)
            self.check_greeting(r.response(), addr)
            self.assertTrue(r.closed())
            self.assertEqual(r.buf, b"")

    def test_case30_v1_one_byte_at_a_time(self):
        self.one_byte_at_a_time(
            v1("2001:db8::52", "2001:db8::1", 4711, 80, b"TCP6") + REQ,
            "2001:db8::52")

    def test_case30_v2_one_byte_at_a_time(self):
        self.one_byte_at_a_time(
            v2(fam=TCP6, body=inet6("2001:db8::53") + tlv(0x01, b"h2"))
            + REQ, "2001:db8::53")

    def test_case30_v2_tlvs_split_at_every_offset(self):
        # TLVs of every kind, a CRC32C over them, a request in a TLV's
        # value: one greeting whatever the split.
        self.split_every_offset(
            v2_crc(before=inet4("192.0.2.55") + tlv(0x01, b"h2"),
                   after=SSL_TLV + tlv(0xE0, b"GET / HTTP/1.1\r\n\r\n"))
            + REQ, "192.0.2.55")
        self.alive()

    def test_case30_v2_tlvs_one_byte_at_a_time(self):
        # Then two pipelined requests, still one byte at a time.
        data = (v2_crc(fam=TCP6, before=inet6("2001:db8::56"),
                       after=ALL_TLVS) + rq("/1", close=False) + REQ)
        with connect(HOST, self.pport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for i in range(len(data)):
                s.sendall(data[i:i + 1])
                if i < len(data) - len(REQ) - 1:
                    ht.assert_quiet(s, 0.001)
            r = Reader(s)
            out = ht.read_responses(r)
        self.assertEqual(len(out), 2, [x.raw[:100] for x in out])
        for resp in out:
            self.check_greeting(resp, "2001:db8::56")
        self.assertEqual(r.buf, b"")

    def test_case30_pipelined_after_the_header(self):
        reqs = rq("/1", close=False) + rq("/2", close=False,
                                          method=b"HEAD") + rq("/3")
        for head, addr in ((V1, V1_SRC),
                           (v2(body=inet4("192.0.2.54") + TLVS),
                            "192.0.2.54")):
            with self.subTest(addr=addr):
                with connect(HOST, self.pport) as s:
                    s.sendall(head + reqs)
                    r = Reader(s)
                    out = ht.read_responses(r, heads=(False, True, False))
                self.assertEqual(len(out), 3)
                self.check_greeting(out[0], addr)
                self.check_greeting(out[1], addr, head=True)
                self.check_greeting(out[2], addr)
                self.assertEqual(out[2].header("connection"), "close")
                self.assertEqual(r.buf, b"")
        # Many: more response bytes than one write batch (64 KB).
        n = 500
        with connect(HOST, self.pport) as s:
            s.sendall(V1 + rq("/", close=False) * (n - 1) + REQ)
            r = Reader(s)
            out = ht.read_responses(r)
        self.assertEqual(len(out), n)
        for resp in out:
            self.check_greeting(resp, V1_SRC)
        self.assertEqual(r.buf, b"")
        # Keep-alive: later requests on the connection keep the source.
        with connect(HOST, self.pport) as s:
            r = Reader(s)
            s.sendall(V1 + rq("/a", close=False))
            self.check_greeting(r.response(), V1_SRC)
            s.sendall(rq("/b", close=False))
            self.check_greeting(r.response(), V1_SRC)
            # A second PROXY line is no header any more: it is a bad
            # request.
            s.sendall(v1("192.0.2.99", "127.0.0.1", 1, 2) + REQ)
            resp = r.response()
            self.assertEqual(resp.status, 400)
            self.assertTrue(r.closed())

    # --- 31: refused ---

    BAD_V1 = [
        b"GET / HTTP/1.1\r\nHost: test\r\n\r\n",          # no header
        b"\r\nPROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n",    # not first
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\n",      # bare LF
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80 \r\n",
        b"PROXY TCP4  192.0.2.1 127.0.0.1 1234 80\r\n",   # double spaces
        b"PROXY  TCP4 192.0.2.1 127.0.0.1 1234 80\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1  1234 80\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 01234 80\r\n",   # leading zeros
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 080\r\n",
        b"PROXY TCP4 192.0.2.01 127.0.0.1 1234 80\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 65536 80\r\n",   # port range
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 99999\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 -1 80\r\n",
        b"PROXY TCP4 2001:db8::1 127.0.0.1 1234 80\r\n",  # wrong family
        b"PROXY TCP6 192.0.2.1 ::1 1234 80\r\n",
        b"PROXY TCP6 2001:db8::1 127.0.0.1 1234 80\r\n",
        b"PROXY TCP6 fe80::1%eth0 ::1 1234 80\r\n",
        b"PROXY TCP4 192.0.2.256 127.0.0.1 1234 80\r\n",
        b"PROXY TCP4 192.0.2 127.0.0.1 1234 80\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234\r\n",       # a field short
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80 5\r\n",  # one too many
        b"PROXY TCP5 192.0.2.1 127.0.0.1 1234 80\r\n",
        b"PROXY UDP4 192.0.2.1 127.0.0.1 1234 80\r\n",
        b"PROXY UNKNOWNX\r\n",
        b"PROXY UNKNOWN\n",
        b"PROXY UNKNOWN 192.0.2.1 127.0.0.1 1 2\n",
        b"PROXY UNKNOWN\r\r\n",
        b"PROXY\r\n",
        b"proxy TCP4 192.0.2.1 127.0.0.1 1234 80\r\n",
        b"PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\0\r\n",
        b"PROXY TCP4 192.0.2.1\0 127.0.0.1 1234 80\r\n",
        b"PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 "
        b"ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255 65535 65535\r\n",
        b"PROXY UNKNOWN " + b"x" * 200 + b"\r\n",          # over 107
    ]

    BAD_V2 = [
        v2(0x11, TCP4, inet4("192.0.2.1")),               # version 1
        v2(0x31, TCP4, inet4("192.0.2.1")),               # version 3
        v2(0x22, TCP4, inet4("192.0.2.1")),               # command 2
        v2(0x2F, TCP4, inet4("192.0.2.1")),
        v2(V2_PROXY, TCP4, inet4("192.0.2.1"), length=11),  # short
        v2(V2_PROXY, TCP4, inet4("192.0.2.1")[:8]),
        v2(V2_PROXY, TCP6, inet4("192.0.2.1") + b"\0" * 23),
        v2(V2_PROXY, UNIX_STREAM, unix_block()[:100]),
        v2(V2_PROXY, 0x41, inet4("192.0.2.1")),           # no family
        v2(V2_PROXY, 0x15, inet4("192.0.2.1")),           # no transport
        b"\r\n\r\n\x00\r\nQUIX\n" + v2(body=inet4("192.0.2.1"))[12:],
        b"\r\n\r\n\x00\r\nQUIT\r" + v2(body=inet4("192.0.2.1"))[12:],
    ]

    # TLVs that do not tile the block, break their type's rule, or fail
    # the CRC32C; headers over V2_MAX.
    BAD_V2_TLVS = [
        v2(body=inet4("192.0.2.1") + tlv(0x04, b"abc")[:-1]),  # overrun
        v2(body=inet4("192.0.2.1") + tlv(0x01, b"h2") + b"\x04"),
        v2(body=inet4("192.0.2.1") + tlv(0x01, b"h2") + b"\x04\x00"),
        v2(body=inet4("192.0.2.1") + tlv(0x01, b"h2")[:4]),
        v2(V2_PROXY, AF_UNSPEC, tlv(0x02, b"a.example")[:-1]),
        v2(V2_PROXY, AF_UNSPEC, b"\x01\x02\x03\x04"),  # not TLVs
        v2_crc(before=inet4("192.0.2.1"), flip=True),       # wrong CRC32C
        v2_crc(before=inet4("192.0.2.1"), after=ALL_TLVS, flip=True),
        v2_crc(fam=AF_UNSPEC, after=tlv(0x03, b"\0" * 4)),  # two CRC32C
        v2(body=inet4("192.0.2.1") + tlv(0x03, b"abc")),     # 3 bytes
        v2(body=inet4("192.0.2.1") + tlv(0x05, b"u" * 129)),  # UNIQUE_ID
        v2(body=inet4("192.0.2.1") + tlv(0x20, b"\x07\0\0\0")),  # SSL
        v2(body=inet4("192.0.2.1") +
           tlv(0x20, b"\x07\0\0\0\0" + tlv(0x21, b"TLSv1.3")[:-1])),
        v2(body=inet4("192.0.2.1") + tlv(0x04, b"\0" * (V2_MAX - 30))),
    ]

    GARBAGE = [
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\xaa" * 40,
        b"\x00" * 64,
        bytes(range(256)),
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b" PROXY TCP4 192.0.2.1 127.0.0.1 1234 80\r\n",
    ]

    def test_case31_malformed_v1_refused(self):
        for data in self.BAD_V1:
            with self.subTest(data=data):
                self.refused(data + REQ)
        self.alive()

    def test_case31_malformed_v2_refused(self):
        for data in self.BAD_V2:
            with self.subTest(data=data):
                self.refused(data + REQ)
        self.alive()

    def test_case31_malformed_v2_tlvs_refused(self):
        # In one write with a request after it, and one byte at a time:
        # closed without a byte, the request never answered.
        for data in self.BAD_V2_TLVS:
            with self.subTest(data=data[12:40]):
                self.refused(data + REQ)
        for data in self.BAD_V2_TLVS[:2] + self.BAD_V2_TLVS[5:7]:
            with self.subTest(trickled=data[12:40]):
                with connect(HOST, self.pport) as s:
                    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    try:
                        for i in range(len(data)):
                            s.sendall(data[i:i + 1])
                        s.sendall(REQ)
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    got, _ = ht.wait_eof(s, 5.0)
                self.assertEqual(got, b"")
        self.alive()

    def test_case31_garbage_refused(self):
        for data in self.GARBAGE:
            with self.subTest(data=data[:20]):
                self.refused(data)
        self.alive()

    def test_case31_cut_off_then_eof(self):
        full1 = v1("192.0.2.1", "127.0.0.1", 1234, 80) + REQ
        full2 = v2(body=inet4("192.0.2.1") + TLVS) + REQ
        cuts = [b"", full1[:1], full1[:6], full1[:20], full1[:38],
                full1[:39], full2[:1], full2[:12], full2[:15], full2[:16],
                full2[:27], full2[:30]]
        for data in cuts:
            with self.subTest(data=data):
                self.refused(data, half_close=True)
        # The header whole, the request cut: no answer either.
        for data in (full1[:45], full2[:len(full2) - 5]):
            with self.subTest(data=data):
                self.refused(data, half_close=True)
        self.alive()

    def test_case31_access_log_has_no_refused_request(self):
        self.refused(rq("/refused-no-header-%s" % self.MODE))
        self.served(V1 + rq("/after-refused-%s" % self.MODE), V1_SRC)
        self.access_lines("/after-refused-%s" % self.MODE)
        with open(self.access) as f:
            self.assertNotIn("/refused-no-header-", f.read())

    def test_case31_warning_once_per_spell(self):
        # One worker, so that the spell is that worker's.
        pport = ht.free_port()
        h = self.start("[server]\nproxy_listen = %s:%d\n"
                       "[http]\nkeepalive_timeout = 5s\n" % (HOST, pport),
                       workers=1)
        try:
            warn = (r"\[warn\].*closing connections without a valid PROXY "
                    r"header \(first from 127\.0\.0\.1\)")
            again = r"\[info\].*PROXY headers are valid again"
            for data in (REQ, self.BAD_V1[3], self.BAD_V2[0],
                         self.GARBAGE[0], self.BAD_V1[9]):
                self.refused(data, port=pport)
            self.served(V1 + REQ, V1_SRC, port=pport)
            h.wait_log(again)
            log = h.log()
            self.assertEqual(len(re.findall(warn, log)), 1, log)
            self.assertEqual(len(re.findall(again, log)), 1, log)
            # Good ones in a row: nothing more.
            for i in range(3):
                self.served(V1 + REQ, V1_SRC, port=pport)
            # A second spell: one more warning, then one more "again".
            for data in (self.BAD_V2[4], REQ):
                self.refused(data, port=pport)
            self.served(v2(body=inet4("192.0.2.60")) + REQ, "192.0.2.60",
                        port=pport)
            h.wait_log(again, count=2)
            log = h.log()
            self.assertEqual(len(re.findall(warn, log)), 2, log)
            self.assertEqual(len(re.findall(again, log)), 2, log)
            self.assertEqual(len(ht.log_problems(log)), 2, log)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_case31_cut_off_header_is_warned(self):
        # A header cut off by the client's EOF, or by header_timeout, is
        # an invalid header like a malformed one: it starts a spell.  A
        # connection closed before its first byte is not counted.
        pport = ht.free_port()
        h = self.start("[server]\nproxy_listen = %s:%d\n"
                       "[http]\nheader_timeout = 1s\n" % (HOST, pport),
                       workers=1)
        warn = (r"\[warn\].*closing connections without a valid PROXY "
                r"header \(first from 127\.0\.0\.1\)")
        again = r"\[info\].*PROXY headers are valid again"

        def spells(n, what):
            # The worker logs before it closes, and it closed before the
            # good connection that follows was made: no wait needed.
            log = h.log()
            self.assertEqual((len(re.findall(warn, log)),
                              len(re.findall(again, log))), (n, n),
                             "%s:\n%s" % (what, log))
        try:
            self.refused(b"", half_close=True, port=pport)
            self.served(V1 + REQ, V1_SRC, port=pport)
            spells(0, "a connection closed before its first byte")
            # The last: cut within its TLVs.
            for n, cut in enumerate((V1[:20], v2(body=inet4("192.0.2.1"))
                                     [:20], v2(body=inet4("192.0.2.1") +
                                               TLVS)[:40]), 1):
                self.refused(cut, half_close=True, port=pport)
                self.served(V1 + REQ, V1_SRC, port=pport)
                spells(n, "a header cut off by EOF: %r" % cut)
            with connect(HOST, pport) as s:
                s.sendall(V1[:20])
                got, _ = ht.wait_eof(s, 5.0)
            self.assertEqual(got, b"")
            self.served(V1 + REQ, V1_SRC, port=pport)
            spells(4, "a header cut off by header_timeout")
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    # --- 32: too slow ---

    def test_case32_header_trickled_past_header_timeout(self):
        data = V1 + REQ
        with connect(HOST, self.pport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            closed_at = None
            got = b""
            # One byte every 100 ms: the 44-byte header would take 4.4 s.
            for i in range(len(V1)):
                try:
                    s.sendall(data[i:i + 1])
                    s.settimeout(0.1)
                    got = s.recv(4096)
                except socket.timeout:
                    self.assertLess(time.monotonic() - start, 3.0,
                                    "still open")
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    got = b""
                if got:
                    break
                closed_at = time.monotonic()
                break
        self.assertEqual(got, b"", "bytes before the close")
        self.assertIsNotNone(closed_at, "not closed")
        self.assertLess(i, len(V1) - 1, "the header was complete")
        took = closed_at - start
        self.assertGreaterEqual(took, 0.8, "closed too early")
        self.assertLess(took, 1.6, "closed too late")
        self.alive()

    def test_case32_silent_connection_closed(self):
        with connect(HOST, self.pport) as s:
            got, took = ht.wait_eof(s, 8.0)
        self.assertEqual(got, b"")
        self.assertGreaterEqual(took, 0.8)
        if self.MODE != "sync":
            # defer_accept: about a second in the kernel first (up to 3 s
            # after a lost SYN-ACK retransmission), then header_timeout.
            self.assertLess(took, 1.0 + 3.6)
        else:
            self.assertLess(took, 1.6)

    def test_case32_header_and_head_share_header_timeout(self):
        # The header at once, the request head only later: the head must
        # still be whole within header_timeout of the connection's start.
        with connect(HOST, self.pport) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            s.sendall(V1)
            ht.assert_quiet(s, 0.7)
            s.sendall(REQ[:10])
            got, _ = ht.wait_eof(s, 5.0)
            took = time.monotonic() - start
        self.assertEqual(got, b"")
        self.assertGreaterEqual(took, 0.8)
        self.assertLess(took, 1.5, "the head got a header_timeout of its "
                        "own after the PROXY header (closed after %.2fs)"
                        % took)

    # --- 33: a PROXY header on a plain listener ---

    def test_case33_proxy_header_on_plain_listener_is_400(self):
        for head in (V1, v1("2001:db8::1", "::1", 1, 2, b"TCP6"),
                     b"PROXY UNKNOWN\r\n", v2(body=inet4("192.0.2.1"))):
            with self.subTest(head=head[:20]):
                out, rest = ht.exchange_all(head + REQ, HOST, self.port)
                self.assertEqual([r.status for r in out], [400])
                self.assertNotIn(b"192.0.2", out[0].raw)
                self.assertEqual(rest, b"")
        self.alive()

    # --- 34: X-Forwarded-For ---

    def test_case34_xff_walk(self):
        cases = [
            # c and b trusted: a
            (["203.0.113.1, 10.0.0.2, 10.0.0.3"], "203.0.113.1"),
            # only c trusted: b
            (["203.0.113.1, 198.51.100.2, 10.0.0.3"], "198.51.100.2"),
            # the rightmost untrusted: itself
            (["10.0.0.1, 198.51.100.2"], "198.51.100.2"),
            # all trusted: the leftmost
            (["10.0.0.1, 10.0.0.2"], "10.0.0.1"),
            (["203.0.113.1"], "203.0.113.1"),
            # no spaces, tabs
            (["203.0.113.1,10.0.0.2,10.0.0.3"], "203.0.113.1"),
            (["203.0.113.1 ,\t10.0.0.2 "], "203.0.113.1"),
            # IPv6, trusted and not, and mapped IPv4
            (["2001:db8::99, 2001:db8:ffff::1"], "2001:db8::99"),
            (["203.0.113.1, ::ffff:10.0.0.3"], "203.0.113.1"),
            (["::ffff:192.0.2.33"], "192.0.2.33"),
            (["2001:DB8:0:0::0099"], "2001:db8::99"),
            # ports
            (["203.0.113.9:4711"], "203.0.113.9"),
            (["[2001:db8::7]:80"], "2001:db8::7"),
            (["[2001:db8::7]"], "2001:db8::7"),
            (["203.0.113.9:4711, 10.0.0.2:80, [2001:db8:ffff::2]:443"],
             "203.0.113.9"),
        ]
        for values, addr in cases:
            with self.subTest(values=values):
                self.walk(values, addr)

    def test_case34_xff_field_lines_joined_in_order(self):
        cases = [
            (["203.0.113.1", "10.0.0.2, 10.0.0.3"], "203.0.113.1"),
            (["203.0.113.1, 198.51.100.2", "10.0.0.3"], "198.51.100.2"),
            (["198.51.100.2", "203.0.113.1"], "203.0.113.1"),
            (["203.0.113.1", "198.51.100.2"], "198.51.100.2"),
            (["203.0.113.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
             "203.0.113.1"),
        ]
        for values, addr in cases:
            with self.subTest(values=values):
                self.walk(values, addr)
        # The name in any case.
        data = rq("/", b"x-forwarded-for: 203.0.113.1",
                  b"X-FORWARDED-FOR: 10.0.0.2")
        self.served(data, "203.0.113.1", port=self.port)

    def test_case34_xff_many_field_lines(self):
        # Every field line counts, not only the last few.
        self.walk(["203.0.113.1"] + ["10.0.0.%d" % i for i in range(1, 21)],
                  "203.0.113.1")
        self.walk(["203.0.113.1"] + ["10.0.0.%d, 10.1.0.%d" % (i, i)
                                     for i in range(1, 41)], "203.0.113.1")

    def test_case34_xff_long_list(self):
        self.walk(["203.0.113.1, " + ", ".join(
            "10.%d.%d.1" % (i // 200, i % 200) for i in range(600))],
            "203.0.113.1")

    def test_case34_xff_stops_at_non_address(self):
        cases = [
            (["203.0.113.1, unknown, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, _hidden, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, garbage, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, , 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1,,10.0.0.3"], "10.0.0.3"),
            # the rightmost element not an address: the peer stays
            (["203.0.113.1, unknown"], HOST),
            (["203.0.113.1, 10.0.0.3,"], HOST),
            ([""], HOST),
            (["unknown"], HOST),
            # an untrusted address left of it is never reached
            (["unknown, 198.51.100.2, 10.0.0.3"], "198.51.100.2"),
            # bad ports and brackets
            (["203.0.113.1, 10.0.0.2:", "10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 10.0.0.2:65536, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 10.0.0.2:80:90, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, [10.0.0.2]:80, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, [2001:db8::7, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 2001:db8::7]:80, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 10.0.0.2/8, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 010.0.0.2, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, 10.0.0.2 10.0.0.4, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1, fe80::1%eth0, 10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1", "unknown", "10.0.0.3"], "10.0.0.3"),
            (["203.0.113.1", "", "10.0.0.3"], "10.0.0.3"),
        ]
        for values, addr in cases:
            with self.subTest(values=values):
                self.walk(values, addr)

    def test_case34_proxy_source_trusted_continues_into_xff(self):
        head = v1("10.1.2.3", "127.0.0.1", 4711, 80)
        self.walk(["203.0.113.5"], "203.0.113.5", prefix=head)
        self.walk(["203.0.113.5, 198.51.100.6, 10.9.9.9"], "198.51.100.6",
                  prefix=head)
        self.walk(["unknown"], "10.1.2.3", prefix=head)
        self.walk(["203.0.113.5"], "203.0.113.5",
                  prefix=v2(fam=TCP6, body=inet6("2001:db8:ffff::5")))
        # An untrusted PROXY source: the header is not walked.
        self.walk(["203.0.113.5"], "192.0.2.1",
                  prefix=v1("192.0.2.1", "127.0.0.1", 4711, 80))
        # LOCAL keeps the peer, which is trusted: the header is walked.
        self.walk(["203.0.113.5"], "203.0.113.5", prefix=v2(V2_LOCAL))

    # --- 35: untrusted peers ---

    def test_case35_spoofed_xff_from_untrusted_peer(self):
        h = self.aux("trusted = 10.0.0.0/8\n")
        try:
            for values in (["1.2.3.4"], ["1.2.3.4, 10.0.0.1"],
                           ["10.0.0.1"]):
                with self.subTest(values=values):
                    self.walk(values, HOST, port=h.port)
            # A PROXY header from a peer outside `trusted` is parsed, not
            # believed, and its forwarded header is not walked either.
            self.served(v1("192.0.2.1", "127.0.0.1", 4711, 80) + REQ, HOST,
                        port=h.pport)
            self.served(v1("10.1.2.3", "127.0.0.1", 4711, 80) +
                        rq("/", *xff("203.0.113.5")), HOST, port=h.pport)
            self.served(v2(body=inet4("192.0.2.1")) + REQ, HOST,
                        port=h.pport)
            # It must still be a valid header.
            self.refused(b"PROXY TCP4 192.0.2.1 127.0.0.1 1 080\r\n" + REQ,
                         port=h.pport)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_case35_empty_trusted_believes_proxy_listen_only(self):
        h = self.aux("")
        try:
            self.served(V1 + REQ, V1_SRC, port=h.pport)
            self.served(v2(fam=TCP6, body=inet6("2001:db8::61")) + REQ,
                        "2001:db8::61", port=h.pport)
            # Trusting nobody: no forwarded header is walked.
            self.served(V1 + rq("/", *xff("203.0.113.5")), V1_SRC,
                        port=h.pport)
            self.walk(["1.2.3.4"], HOST, port=h.port)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_case35_header_none(self):
        h = self.aux("trusted = 127.0.0.1 10.0.0.0/8\n", header="none")
        try:
            for name in (b"X-Forwarded-For", b"X-Real-IP", b"Forwarded"):
                value = "for=1.2.3.4" if name == b"Forwarded" else "1.2.3.4"
                with self.subTest(name=name):
                    self.walk([value], HOST, name=name, port=h.port)
                    self.walk([value], V1_SRC, name=name, port=h.pport,
                              prefix=V1)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    # --- 36: Forwarded ---

    def test_case36_forwarded(self):
        h = self.aux("trusted = %s\n" % self.TRUSTED, header="forwarded")
        try:
            cases = [
                (["for=192.0.2.60;proto=http;by=203.0.113.43"], "192.0.2.60"),
                (['For="[2001:db8:cafe::17]:4711"'], "2001:db8:cafe::17"),
                (['for="[2001:db8:cafe::17]"'], "2001:db8:cafe::17"),
                (['for="192.0.2.61:4711"'], "192.0.2.61"),
                (["FOR=192.0.2.62"], "192.0.2.62"),
                (["proto=https;FoR=192.0.2.63;host=example.com"],
                 "192.0.2.63"),
                (["for=192.0.2.64 ; proto=http"], "192.0.2.64"),
                # several elements: walked from the right
                (["for=192.0.2.43, for=198.51.100.17;by=10.0.0.9, "
                  "for=10.0.0.7"], "198.51.100.17"),
                (["for=192.0.2.43, for=10.0.0.8, for=10.0.0.7"],
                 "192.0.2.43"),
                (["for=192.0.2.43,for=10.0.0.7"], "192.0.2.43"),
                # several field lines, in order
                (["for=192.0.2.43", "for=10.0.0.7"], "192.0.2.43"),
                (["for=198.51.100.17", "for=192.0.2.43"], "192.0.2.43"),
                (["for=192.0.2.43", "for=198.51.100.17"], "198.51.100.17"),
                (["for=192.0.2.43, for=10.0.0.8", "for=10.0.0.7"],
                 "192.0.2.43"),
                # quoted strings with escapes and commas
                (['for="192.0.2.6\\5"'], "192.0.2.65"),
                (['for="\\[2001:db8:cafe::\\66]:\\80"'],
                 "2001:db8:cafe::66"),
                (['for=192.0.2.66;ext="a,b\\"c;d=e", for=10.0.0.7'],
                 "192.0.2.66"),
                (['for=10.0.0.5;ext=",", for=10.0.0.7'], "10.0.0.5"),
                # a mapped address prints as IPv4
                (['for="[::ffff:192.0.2.67]"'], "192.0.2.67"),
            ]
            for values, addr in cases:
                with self.subTest(values=values):
                    self.walk(values, addr, name=b"Forwarded", port=h.port)
            # Through the PROXY listener too.
            self.walk(["for=192.0.2.68"], "192.0.2.68", name=b"Forwarded",
                      prefix=v1("10.1.2.3", "127.0.0.1", 1, 2),
                      port=h.pport)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_case36_forwarded_malformed_element_stops(self):
        h = self.aux("trusted = %s\n" % self.TRUSTED, header="forwarded")
        try:
            stops = [
                "for=unknown", "for=_hidden", "for=\"_hidden\"", "for=",
                "for", "garbage", "by=10.0.0.1",
                "for=192.0.2.1;for=192.0.2.2", "for=192.0.2.1;FOR=10.0.0.1",
                "for=[2001:db8:cafe::17]", "for=\"2001:db8:cafe::17\"",
                "for=192.0.2.1:80", "for=\"[2001:db8::1\"",
                "for=\"192.0.2.1\"x", "for=192.0.2.1 x", "=192.0.2.1",
                "for=192.0.2.1=", "for=192.0.2.1;proto", "for=\"\"",
                "for=\"192.0.2.1\\x\"", "for=\"192.0.2.1 \"",
                "for = 192.0.2.1",
            ]
            for bad in stops:
                with self.subTest(bad=bad):
                    # Left of trusted ones: the walk stops right of it.
                    self.walk(["for=192.0.2.99, %s, for=10.0.0.7" % bad],
                              "10.0.0.7", name=b"Forwarded", port=h.port)
                    # Rightmost: the peer stays.
                    self.walk(["for=192.0.2.99, " + bad], HOST,
                              name=b"Forwarded", port=h.port)
            # An unterminated quoted-string runs to the end of its field
            # line, commas included: one malformed element.
            for bad in ('for="192.0.2.1', 'for="192.0.2.1\\"'):
                with self.subTest(bad=bad):
                    self.walk(["for=10.0.0.6, %s, for=10.0.0.7" % bad], HOST,
                              name=b"Forwarded", port=h.port)
                    # It does not reach into the next line.
                    self.walk(["for=192.0.2.99, " + bad, "for=10.0.0.7"],
                              "10.0.0.7", name=b"Forwarded", port=h.port)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_case36_forwarded_empty_parameters_accepted(self):
        # forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
        h = self.aux("trusted = %s\n" % self.TRUSTED, header="forwarded")
        try:
            self.walk([";for=192.0.2.70"], "192.0.2.70", name=b"Forwarded",
                      port=h.port)
            self.walk(["for=192.0.2.71;;proto=http"], "192.0.2.71",
                      name=b"Forwarded", port=h.port)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    # --- 37: X-Real-IP ---

    def test_case37_x_real_ip(self):
        h = self.aux("trusted = 127.0.0.1 10.0.0.0/8\n", header="x-real-ip")
        try:
            cases = [
                (["192.0.2.70"], "192.0.2.70"),
                (["2001:db8::70"], "2001:db8::70"),
                (["[2001:db8::70]:80"], "2001:db8::70"),
                (["192.0.2.70:8080"], "192.0.2.70"),
                (["10.0.0.70"], "10.0.0.70"),      # no recursion
                (["192.0.2.70, 192.0.2.71"], HOST),  # a list: ignored
                (["10.0.0.70, 192.0.2.71"], HOST),
                (["192.0.2.70", "192.0.2.71"], HOST),  # two lines
                (["unknown"], HOST),
                ([""], HOST),
                (["192.0.2.70 x"], HOST),
            ]
            for values, addr in cases:
                with self.subTest(values=values):
                    self.walk(values, addr, name=b"X-Real-IP", port=h.port)
            # X-Forwarded-For means nothing here.
            self.walk(["192.0.2.72"], HOST, port=h.port)
            self.walk(["192.0.2.73"], "192.0.2.73", name=b"X-Real-IP",
                      prefix=v1("10.1.2.3", "127.0.0.1", 1, 2),
                      port=h.pport)
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    # --- 38: header text never reaches the greeting or the log ---

    def test_case38_header_text_never_echoed(self):
        mark = "/case38-%s" % self.MODE
        hostile = [
            "<script>alert(1)</script>",
            "1.2.3.4<b>",
            "<b>1.2.3.4",
            "1.2.3.4\t<i>",
            "203.0.113.1" + "0" * 3000,
            "1.2.3.4" * 500,
            "%3Cscript%3E",
            "1.2.3.4\xff\xfe",
            "\"1.2.3.4\"",
            "1.2.3.4;<script>",
        ]
        for i, bad in enumerate(hostile):
            with self.subTest(bad=bad[:30]):
                data = rq("%s-%d" % (mark, i),
                          *xff("%s, 10.0.0.3" % bad))
                out, rest = ht.exchange_all(data, HOST, self.port)
                self.assertEqual(len(out), 1)
                self.check_greeting(out[0], "10.0.0.3")
                self.assertEqual(rest, b"")
        # Control bytes in a field value are a bad request.
        for bad in ("1.2.3.4\x00", "\x001.2.3.4", "1.2.3.4\x01<script>",
                    "1.2.3.4\x7f"):
            with self.subTest(bad=bad):
                out, rest = ht.exchange_all(
                    rq(mark + "-ctl", *xff(bad + ", 10.0.0.3")), HOST,
                    self.port)
                self.assertEqual([r.status for r in out], [400])
                self.assertNotIn(b"1.2.3.4", out[0].raw)
        lines = self.access_lines("%s-%d" % (mark, len(hostile) - 1))
        with open(self.access, "rb") as f:
            text = f.read()
        for word in (b"<script>", b"<b>", b"<i>", b"1.2.3.4", b"\xff"):
            self.assertNotIn(word, text)
        for i in range(len(hostile)):
            line = self.access_lines("%s-%d" % (mark, i))[0]
            m = re.fullmatch(COMBINED_RE, line)
            self.assertTrue(m, line)
            self.assertEqual(m.group("client"), "10.0.0.3")
            self.assertEqual(m.group("peer"), HOST)
        self.assertTrue(lines)
        self.alive()

    def test_ipv6_peer(self):
        if not ht.ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        host6 = "::1"
        port = ht.free_port(socket.AF_INET6, host6)
        pport = ht.free_port(socket.AF_INET6, host6)
        h = self.start("[server]\nlisten = [::1]:%d\nproxy_listen = "
                       "[::1]:%d\n[http]\nkeepalive_timeout = 5s\n"
                       "[proxy]\ntrusted = ::1 2001:db8:ffff::/48\n"
                       "header = x-forwarded-for\n" % (port, pport),
                       port=port, host=host6, workers=1)
        try:
            def one(data, p):
                out, rest = ht.exchange_all(data, host6, p)
                self.assertEqual(len(out), 1)
                return out[0]
            self.check_greeting(one(REQ, port), host6)
            self.check_greeting(one(rq("/", *xff(
                "203.0.113.1, 2001:db8:ffff::2, ::1")), port), "203.0.113.1")
            self.check_greeting(one(V1 + REQ, pport), V1_SRC)
            self.check_greeting(one(v2(V2_LOCAL) + REQ, pport), host6)
            self.check_greeting(one(v2(V2_LOCAL) + rq("/", *xff(
                "2001:db8::5")), pport), "2001:db8::5")
            with connect(host6, pport) as s:
                s.sendall(REQ)
                got, _ = ht.wait_eof(s, 5.0)
            self.assertEqual(got, b"")
            h.wait_log(r"\[warn\].*closing connections without a valid "
                       r"PROXY header \(first from ::1\)")
            self.check_greeting(one(V1 + REQ, pport), V1_SRC)
            h.wait_log(r"PROXY headers are valid again")
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    # --- access log ---

    def test_access_log_combined(self):
        path = "/log-combined-proxy-%s" % self.MODE
        self.served(V1 + rq(path, b"User-Agent: pt/1", b"Referer: /r"),
                    V1_SRC)
        line = self.access_lines(path)
        self.assertEqual(len(line), 1)
        m = re.fullmatch(COMBINED_RE, line[0])
        self.assertTrue(m, line)
        self.assertEqual(m.group("client"), V1_SRC)
        self.assertEqual(m.group("request"), "GET %s HTTP/1.1" % path)
        self.assertEqual(m.group("status"), "200")
        self.assertEqual(m.group("bytes"), str(len(greeting(V1_SRC))))
        self.assertEqual(m.group("ref"), "/r")
        self.assertEqual(m.group("ua"), "pt/1")
        self.assertEqual(m.group("peer"), HOST)

        # A plain request: the client is the peer; no peer field.
        path = "/log-combined-plain-%s" % self.MODE
        self.served(rq(path), HOST, port=self.port)
        line = self.access_lines(path)[0]
        m = re.fullmatch(COMBINED_RE, line)
        self.assertTrue(m, line)
        self.assertEqual(m.group("client"), HOST)
        self.assertIsNone(m.group("peer"), line)
        self.assertTrue(line.endswith('"-" "-"'), line)

        # LOCAL keeps the peer: no peer field either.
        path = "/log-combined-local-%s" % self.MODE
        self.served(v2(V2_LOCAL) + rq(path), HOST)
        line = self.access_lines(path)[0]
        self.assertTrue(line.endswith('"-" "-"'), line)

        # Through X-Forwarded-For, an IPv6 client.
        path = "/log-combined-xff-%s" % self.MODE
        self.served(rq(path, *xff("[2001:db8::80]:1, 10.0.0.2")),
                    "2001:db8::80", port=self.port)
        m = re.fullmatch(COMBINED_RE, self.access_lines(path)[0])
        self.assertEqual((m.group("client"), m.group("peer")),
                         ("2001:db8::80", HOST))

        # An error response is logged with the PROXY source too.
        path = "/log-combined-405-%s" % self.MODE
        out, _ = ht.exchange_all(V1 + rq(path, method=b"DELETE"), HOST,
                                 self.pport)
        self.assertEqual([r.status for r in out], [405])
        line = self.access_lines(path, "DELETE")[0]
        m = re.fullmatch(COMBINED_RE, line)
        self.assertTrue(m, line)
        self.assertEqual((m.group("client"), m.group("status"),
                          m.group("peer")), (V1_SRC, "405", HOST))

    def test_access_log_json(self):
        tmp = tempfile.TemporaryDirectory(prefix="hellod-proxy-json-")
        self.addCleanup(tmp.cleanup)
        log = os.path.join(tmp.name, "access.json")
        h = self.aux("trusted = 127.0.0.1 10.0.0.0/8\n",
                     extra="[log]\naccess_log = %s\naccess_format = json\n"
                     % log)
        try:
            self.served(v1("2001:db8::90", "::1", 1, 2, b"TCP6") +
                        rq("/json-proxy", b"User-Agent: pt/2"),
                        "2001:db8::90", port=h.pport)
            self.served(rq("/json-plain"), HOST, port=h.port)
            self.served(rq("/json-xff", *xff("192.0.2.91")), "192.0.2.91",
                        port=h.port)

            def entries():
                try:
                    with open(log) as f:
                        got = [json.loads(l) for l in f.read().splitlines()
                               if "/json-" in l]
                except FileNotFoundError:
                    return None
                return got if len(got) == 3 else None
            got = {e["request"]: e for e in ht.wait_for(
                entries, 5.0, what="three json lines")}
            e = got["GET /json-proxy HTTP/1.1"]
            self.assertEqual(sorted(e), sorted([
                "time", "client", "peer", "request", "status",
                "body_bytes_sent", "http_referer", "http_user_agent"]))
            self.assertEqual((e["client"], e["peer"], e["status"],
                              e["body_bytes_sent"], e["http_user_agent"]),
                             ("2001:db8::90", HOST, 200,
                              len(greeting("2001:db8::90")), "pt/2"))
            e = got["GET /json-plain HTTP/1.1"]
            self.assertEqual((e["client"], e["peer"]), (HOST, HOST))
            e = got["GET /json-xff HTTP/1.1"]
            self.assertEqual((e["client"], e["peer"]), ("192.0.2.91", HOST))
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()

    def test_reload_keeps_proxy_listener(self):
        pport = ht.free_port()
        conf = ("[server]\nshutdown_timeout = 5s\n"
                "proxy_listen = %s:%d\n[http]\nkeepalive_timeout = 5s\n"
                "[proxy]\ntrusted = 127.0.0.1\n" % (HOST, pport))
        h = self.start(conf)
        n = self.WORKERS
        stop = threading.Event()
        counts = {"ok": 0, "bad": []}
        lock = threading.Lock()

        def client():
            while not stop.is_set():
                try:
                    out, rest = ht.exchange_all(
                        V1 + REQ, HOST, pport, timeout=5.0)
                    good = (len(out) == 1 and out[0].status == 200 and
                            out[0].body == greeting(V1_SRC))
                except (OSError, AssertionError) as e:
                    good, out = False, e
                with lock:
                    if good:
                        counts["ok"] += 1
                    elif len(counts["bad"]) < 10:
                        counts["bad"].append(repr(out)[:200])
                    else:
                        counts["bad"].append(None)

        threads = [threading.Thread(target=client, daemon=True)
                   for _ in range(4)]
        try:
            ht.generation_serving(h, 1, n)
            for t in threads:
                t.start()
            ht.wait_for(lambda: counts["ok"] >= 50, 10.0,
                        what="PROXY requests before the reload")
            for gen in (2, 3):
                before = counts["ok"]
                ht.reload_and_wait(h, gen, n)
                ht.wait_for(lambda: counts["ok"] >= before + 100, 10.0,
                            what="PROXY requests after reload %d" % gen)
            stop.set()
            for t in threads:
                t.join(10.0)
            self.assertEqual(counts["bad"], [], h.log())
            # Still a PROXY listener: a plain request is refused.
            with connect(HOST, pport) as s:
                s.sendall(REQ)
                got, _ = ht.wait_eof(s, 5.0)
            self.assertEqual(got, b"")
            # A reload that changes `trusted` applies: 127.0.0.1 is no
            # longer believed.
            h.write_conf(conf.replace("trusted = 127.0.0.1",
                                      "trusted = 10.0.0.0/8"), n)
            ht.reload_and_wait(h, 4, n)
            ht.wait_for(lambda: ht.exchange_all(V1 + REQ, HOST, pport)[0][0]
                        .body == greeting(HOST), 10.0,
                        what="the new trust to apply")
            for _ in range(10):
                out, _ = ht.exchange_all(V1 + REQ, HOST, pport)
                self.assertEqual(out[0].body, greeting(HOST))
            # A broken [proxy] keeps the running configuration.
            with open(h.conf_path, "a") as f:
                f.write("header = via\n")
            h.kill(signal.SIGHUP)
            h.wait_log(r"reload failed, keeping the running configuration"
                       r": .*\[proxy\] header: invalid header 'via'")
            out, _ = ht.exchange_all(V1 + REQ, HOST, pport)
            self.assertEqual(out[0].body, greeting(HOST))
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            stop.set()
            h.close()

    def test_reload_finishes_a_partial_header(self):
        # A reload (or a graceful stop) lets a connection that is part
        # way through its PROXY header finish, as it lets a request head
        # that has begun: nothing in flight is cut (case 28).
        pport = ht.free_port()
        h = self.start("[server]\nshutdown_timeout = 5s\n"
                       "proxy_listen = %s:%d\n[http]\nheader_timeout = 5s\n"
                       % (HOST, pport))
        n = self.WORKERS
        try:
            ht.generation_serving(h, 1, n)
            for gen, cut in ((2, 20), (3, len(V1) + 5)):
                with self.subTest(cut=cut):
                    ht.wait_for(lambda: ht.tcp_connections(
                        h.worker_pids()) == 0, 5.0, what="no connection")
                    with connect(HOST, pport) as s:
                        s.sendall((V1 + REQ)[:cut])
                        # Taken by a worker of the running generation.
                        ht.wait_for(lambda: ht.tcp_connections(
                            h.worker_pids()) > 0, 5.0, what="the accept")
                        ht.reload_and_wait(h, gen, n)
                        s.sendall((V1 + REQ)[cut:])
                        r = Reader(s)
                        try:
                            resp = r.response()
                        except ConnectionResetError:
                            resp = None
                        self.assertIsNotNone(resp, "cut at the reload:\n"
                                             + h.log())
                        self.check_greeting(resp, V1_SRC)
                        self.assertEqual(resp.header("connection"), "close")
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()


class AsyncProxy(ProxyCases, unittest.TestCase):
    ARGS = []
    WORKERS = 2
    MODE = "async"


class UringProxy(ProxyCases, unittest.TestCase):
    ARGS = ["--uring"]
    WORKERS = 2
    MODE = "uring"


class SyncProxy(ProxyCases, unittest.TestCase):
    ARGS = ["--sync"]
    WORKERS = 1
    MODE = "sync"


class ProxyConfig(unittest.TestCase):
    """Reload keeps PROXY listeners; configuration errors; the command
    line."""

    def conf(self, text):
        fd, path = tempfile.mkstemp(prefix="hellod-proxy-", suffix=".conf")
        with os.fdopen(fd, "w") as f:
            f.write(text)
        self.addCleanup(os.unlink, path)
        return path

    def test_config_errors(self):
        user = ht.default_user()
        base = "[server]\nlisten = 127.0.0.1:8080\n%s" % user
        n = base.count("\n")
        cases = [
            (base + "[proxy]\ntrusted = 10.0.0.0/33\n", n + 2,
             "[proxy] trusted: invalid network '10.0.0.0/33' "
             "(prefix length 0-32)"),
            (base + "[proxy]\nheader = none\ntrusted = 127.0.0.1 "
             "2001:db8::/129\n", n + 3,
             "[proxy] trusted: invalid network '2001:db8::/129' "
             "(prefix length 0-128)"),
            (base + "[proxy]\ntrusted = 10.0.0.1/8\n", n + 2,
             "[proxy] trusted: invalid network '10.0.0.1/8' (bits past "
             "the prefix are set: 10.0.0.0/8?)"),
            (base + "[proxy]\ntrusted = localhost\n", n + 2,
             "[proxy] trusted: invalid network 'localhost' (expected "
             "ADDRESS or ADDRESS/BITS)"),
            (base + "[proxy]\nheader = via\n", n + 2,
             "[proxy] header: invalid header 'via' (none, "
             "x-forwarded-for, x-real-ip or forwarded)"),
            (base + "[proxy]\nport = 1\n", n + 2,
             "[proxy] port: unknown key"),
            (base + "[proxy]\ntrusted = 10.0.0.0/8\nheader = none\n"
             "header = none\n", n + 4, "[proxy] header: duplicate key"),
            (base + "proxy_listen = 127.0.0.1\n", n + 1,
             "[server] proxy_listen: " + ADDR_REASON % "127.0.0.1"),
            # trusted lines add up, to 64 networks in all.
            (base + "[proxy]\n" + "".join(
                "trusted = %s\n" % " ".join("10.%d.%d.0/24" % (k, i)
                                            for i in range(10))
                for k in range(6)) + "trusted = 10.9.0.0/16 "
             "10.9.1.0/24 10.9.2.0/24 10.9.3.0/24 10.9.4.0/24\n", n + 8,
             "[proxy] trusted: more than 64 networks in all"),
        ]
        for text, line, msg in cases:
            with self.subTest(msg=msg):
                path = self.conf(text)
                p = ht.run_hellod(["-t", "-c", path])
                self.assertEqual(p.returncode, 1, p.stderr)
                self.assertEqual(p.stderr,
                                 "hellod: %s:%d: %s\n" % (path, line, msg))
                self.assertEqual(p.stdout, "")
        # Accepted forms.
        path = self.conf(base + "proxy_listen = 127.0.0.1:8081\n"
                         "proxy_listen = [::1]:8081 127.0.0.1:8082\n"
                         "[proxy]\ntrusted = 10.0.0.0/8 192.0.2.1 ::1 "
                         "2001:db8::/32 ::ffff:10.0.0.0/104\n"
                         "trusted = 172.16.0.0/12\n"
                         "header = X-Forwarded-For\n")
        p = ht.run_hellod(["-t", "-c", path])
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (0, "configuration OK: %s\n" % path, ""))

    def test_proxy_listen_on_the_command_line(self):
        p1, p2 = ht.free_port(), ht.free_port()
        h = ht.Hellod("[server]\nworkers = 1\n", ready=False,
                      args=["--proxy-listen", "%s:%d" % (HOST, p1),
                            "--proxy-listen", "%s:%d" % (HOST, p2)])
        try:
            h.wait_ready()
            h.wait_log(r"listening on 127\.0\.0\.1:%d \(PROXY protocol\)"
                       % p2)
            for port in (p1, p2):
                out, _ = ht.exchange_all(V1 + REQ, HOST, port)
                self.assertEqual(out[0].body, greeting(V1_SRC))
                with connect(HOST, port) as s:
                    s.sendall(REQ)
                    got, _ = ht.wait_eof(s, 5.0)
                self.assertEqual(got, b"")
            self.assertEqual(h.stop(), 0, h.log())
        finally:
            h.close()
        p = ht.run_hellod(["-t", "-c", "/dev/null", "--proxy-listen",
                           "127.0.0.1"])
        self.assertEqual(p.returncode, 1)
        self.assertTrue(p.stderr.startswith("hellod: --proxy-listen: "),
                        p.stderr)


if __name__ == "__main__":
    ht.main()
