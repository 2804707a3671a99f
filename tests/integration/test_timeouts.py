#!/usr/bin/env python3
"""Time and resource limits (HTTP-CASES.md 25-27): header_timeout against
slow and silent clients, keepalive_timeout on idle connections, service
next to slowloris connections, max_connections and EMFILE handling."""

import os
import resource
import socket
import time
import unittest

import hellodtest as ht
from hellodtest import Reader, connect, greeting

HOST = "127.0.0.1"
REQ = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"

TIMEOUT = 0.5           # header_timeout and keepalive_timeout below
EARLY = 0.4             # closing before this is too early
LATE = 1.3              # closing after this is too late


def cpu_seconds(pid):
    """User + system CPU time of pid so far."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check_timeout_close(test, got):
    """A header timeout closes silently (or after a 408)."""
    test.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 408 "),
                    "unexpected bytes before the close: %r" % got[:200])


class TimeoutCases:
    WORKERS = 2
    CONF = ""

    @classmethod
    def setUpClass(cls):
        cls.srv = ht.start_hellod(cls.CONF)
        try:
            cls.srv.wait_log(r"worker \d+ serving", count=cls.WORKERS)
        except BaseException:
            cls.srv.close()
            raise

    @classmethod
    def tearDownClass(cls):
        ht.stop_and_close(cls.srv)

    def conn(self):
        return connect(HOST, self.srv.port)

    def alive(self):
        resp = ht.get(HOST, self.srv.port)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, greeting(HOST))

    def test_case25_slowloris_closed_at_header_timeout(self):
        data = b"GET / HTTP/1.1\r\nHost: test\r\nX-Slow: " + b"s" * 100
        got = b""
        closed_at = None
        with self.conn() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            start = time.monotonic()
            # One byte every 100 ms (the receive timeout paces it); at
            # most len(data) bytes, at most 5 s.
            for i in range(len(data)):
                try:
                    s.sendall(data[i:i + 1])
                    s.settimeout(0.1)
                    chunk = s.recv(4096)
                except socket.timeout:
                    self.assertLess(time.monotonic() - start, 5.0,
                                    "slowloris still connected")
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    chunk = b""
                if chunk:
                    rest, _ = ht.wait_eof(s, 2.0)
                    got = chunk + rest
                closed_at = time.monotonic()
                break
        self.assertIsNotNone(closed_at, "never closed")
        took = closed_at - start
        self.assertGreater(i, 2, "closed after %d bytes" % i)
        self.assertGreaterEqual(took, EARLY, "closed too early")
        self.assertLess(took, LATE, "closed too late")
        check_timeout_close(self, got)
        self.alive()

    def test_case25_silent_connection_closed_at_header_timeout(self):
        with self.conn() as s:
            got, took = ht.wait_eof(s, 5.0)
        check_timeout_close(self, got)
        self.assertGreaterEqual(took, EARLY)
        self.assertLess(took, LATE)
        self.alive()

    def test_case25_partial_head_closed_at_header_timeout(self):
        with self.conn() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n")
            got, took = ht.wait_eof(s, 5.0)
        check_timeout_close(self, got)
        self.assertGreaterEqual(took, EARLY)
        self.assertLess(took, LATE)
        self.alive()

    def test_case25_body_must_arrive_within_header_timeout(self):
        with self.conn() as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: test\r\n"
                      b"Content-Length: 100\r\n\r\n" + b"b" * 10)
            got, took = ht.wait_eof(s, 5.0)
        # The head may have been answered before the body came.
        self.assertTrue(got == b"" or got.startswith(b"HTTP/1.1 200 ") or
                        got.startswith(b"HTTP/1.1 408 "), got[:200])
        self.assertGreaterEqual(took, EARLY)
        self.assertLess(took, LATE)
        self.alive()

    def test_case25_unread_responses_bounded_by_header_timeout(self):
        # header_timeout also bounds a client that stops reading: 10
        # responses of 1 MB each, the client reads nothing.
        conf = self.CONF.replace("keepalive_timeout = 500ms",
                                 "keepalive_timeout = 10s")
        with ht.start_hellod(conf + "body_padding = 1m\n") as h:
            h.wait_log(r"worker \d+ serving", count=self.WORKERS)
            workers = h.worker_pids()

            def conns():
                return ht.tcp_connections(workers)
            ht.wait_for(lambda: conns() == 0, 2.0,
                        what="the readiness probe to be closed")
            s = socket.socket()
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(5.0)
                s.connect((HOST, h.port))
                start = time.monotonic()
                s.sendall(REQ * 10)
                ht.wait_for(lambda: conns() == 1, 2.0,
                            what="the connection to be accepted")
                ht.wait_for(lambda: conns() == 0, 10.0,
                            what="the stalled connection to be closed")
                took = time.monotonic() - start
                self.assertGreaterEqual(took, EARLY)
                # The send timeout counts from the last progress, and a
                # blocking write returns its partial progress only when
                # its timeout expires (sync mode): allow a few timeouts,
                # far below keepalive_timeout (10 s) and "never".
                self.assertLess(took, 6 * TIMEOUT)
                # What had been sent arrives, then the end: less than the
                # 10 MB asked for.
                got, _ = ht.wait_eof(s, 10.0)
                self.assertTrue(got.startswith(b"HTTP/1.1 200 OK\r\n"))
                self.assertLess(len(got), 10 * 1024 * 1024)
            finally:
                s.close()
            self.assertEqual(h.stop(), 0)

    def test_case25_header_timeout_restarts_with_each_request(self):
        # header_timeout runs from the first byte of *a* request.  A
        # client keeps requests flowing for twice header_timeout; every
        # write completes one request and starts the next, so each head
        # takes about 50 ms and the connection must stay open.
        half = len(REQ) // 2
        with self.conn() as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            r = Reader(s)
            start = time.monotonic()
            s.sendall(REQ[:half])
            try:
                for i in range(20):     # 20 x 50 ms
                    s.sendall(REQ[half:] + REQ[:half])
                    resp = r.response()
                    self.assertIsNotNone(
                        resp, "closed after %d requests, %.2fs"
                        % (i, time.monotonic() - start))
                    self.assertEqual(resp.status, 200)
                    time.sleep(0.05)    # pacing: time must pass
                s.sendall(REQ[half:])
                self.assertEqual(r.response().status, 200)
            except (ConnectionResetError, BrokenPipeError) as e:
                self.fail("connection reset after %.2fs: %r"
                          % (time.monotonic() - start, e))
        self.alive()

    def test_case26_keepalive_timeout_restarts_after_each_response(self):
        # A client that keeps sending whole requests, each well within
        # keepalive_timeout of the previous response, for three times
        # keepalive_timeout: never closed.
        with self.conn() as s:
            r = Reader(s)
            start = time.monotonic()
            for i in range(15):
                s.sendall(REQ)
                resp = r.response()
                self.assertIsNotNone(
                    resp, "closed after %d requests, %.2fs"
                    % (i, time.monotonic() - start))
                self.assertEqual(resp.status, 200)
                time.sleep(0.1)     # pacing: time must pass
        self.alive()

    def test_case26_idle_keepalive_closed(self):
        with self.conn() as s:
            r = Reader(s)
            s.sendall(REQ)
            self.assertEqual(r.response().status, 200)
            ht.assert_quiet(s, 0.2)     # still open well before
            s.sendall(REQ)
            resp = r.response()
            self.assertEqual(resp.status, 200)
            self.assertIsNone(resp.header("connection"))
            got, took = ht.wait_eof(s, 5.0)
        self.assertEqual(got, b"", "bytes before the idle close")
        self.assertGreaterEqual(took, 0.3)
        self.assertLess(took, 3.0)
        self.alive()


class AsyncTimeouts(TimeoutCases, unittest.TestCase):
    WORKERS = 2
    # Without TCP_DEFER_ACCEPT, hellod meets a silent client at once and
    # closes it at header_timeout exactly (DeferredAccept below).
    CONF = ("[server]\nworkers = 2\ndefer_accept = off\n[http]\n"
            "header_timeout = 500ms\nkeepalive_timeout = 500ms\n")

    def test_case25_served_next_to_50_slowloris(self):
        with ht.start_hellod("[server]\nworkers = 2\n[http]\n"
                             "header_timeout = 10s\n") as h:
            slow = []
            try:
                for i in range(50):
                    s = connect(HOST, h.port)
                    slow.append(s)
                    s.sendall(b"GET / HTTP/1.1\r\nHost: t")
                for i in range(3):
                    t = time.monotonic()
                    resp = ht.get(HOST, h.port)
                    took = time.monotonic() - t
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(resp.body, greeting(HOST))
                    self.assertLess(took, 1.0, "served slowly: %.2fs" % took)
                    for s in slow:        # trickle on
                        s.sendall(b"e")
                for s in slow:            # all still waiting, none closed
                    ht.assert_quiet(s, 0.001)
                # And they are still served when they finish.
                for s in slow[:5]:
                    s.sendall(b"st\r\nConnection: close\r\n\r\n")
                    resp = Reader(s).response()
                    self.assertEqual(resp.status, 200)
            finally:
                for s in slow:
                    s.close()
            self.assertEqual(h.stop(), 0)

    def test_case27_max_connections_wait_in_listen_queue(self):
        with ht.start_hellod("[server]\nworkers = 1\n[http]\n"
                             "max_connections = 5\nkeepalive_timeout = 10s\n"
                             "header_timeout = 10s\n") as h:
            worker = h.worker_pids()[0]
            held = []
            try:
                # Requests in progress are never closed to make room
                # (idle keep-alive ones are: test_limits.py).
                for i in range(5):
                    s = connect(HOST, h.port)
                    held.append(s)
                    s.sendall(REQ + REQ[:-2])
                    self.assertEqual(Reader(s).response().status, 200)
                # The sixth is queued by the kernel, not accepted.
                sixth = connect(HOST, h.port)
                held.append(sixth)
                sixth.sendall(CLOSE)
                cpu = cpu_seconds(worker)
                ht.assert_quiet(sixth, 0.6)
                self.assertLess(cpu_seconds(worker) - cpu, 0.2,
                                "worker busy while accept is paused")
                t = time.monotonic()
                held[0].close()
                resp = Reader(sixth).response()
                took = time.monotonic() - t
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, greeting(HOST))
                self.assertLess(took, 1.0)
                # The other held connections still work.
                held[1].sendall(REQ[-2:])
                self.assertEqual(Reader(held[1]).response().status, 200)
            finally:
                for s in held:
                    s.close()
            # Serving resumes: more sequential clients than the limit.
            for i in range(12):
                self.assertEqual(ht.get(HOST, h.port).status, 200)
            self.assertEqual(h.worker_pids(), [worker])
            self.assertEqual(h.stop(), 0)

    def test_case27_emfile_pauses_accept(self):
        with ht.start_hellod("[server]\nworkers = 1\n[http]\n"
                             "keepalive_timeout = 10s\n"
                             "header_timeout = 10s\n") as h:
            worker = h.worker_pids()[0]
            nfds = len(os.listdir("/proc/%d/fd" % worker))
            old = resource.prlimit(worker, resource.RLIMIT_NOFILE)
            # Room for about three connections.
            resource.prlimit(worker, resource.RLIMIT_NOFILE,
                             (nfds + 3, old[1]))
            held = []
            blocked = None
            try:
                # Open connections until one is not answered (EMFILE).
                for i in range(10):
                    s = connect(HOST, h.port)
                    held.append(s)
                    s.sendall(REQ)
                    s.settimeout(0.3)
                    try:
                        resp = Reader(s).response()
                    except socket.timeout:
                        blocked = s
                        break
                    self.assertEqual(resp.status, 200)
                self.assertIsNotNone(blocked, "descriptor limit not hit")
                self.assertGreaterEqual(len(held), 3)
                cpu = cpu_seconds(worker)
                ht.assert_quiet(blocked, 0.6)
                self.assertLess(cpu_seconds(worker) - cpu, 0.2,
                                "worker spins on EMFILE")
                # Descriptors free again: the waiting client is served.
                for s in held[:-1]:
                    s.close()
                blocked.settimeout(5.0)
                resp = Reader(blocked).response()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, greeting(HOST))
            finally:
                for s in held:
                    s.close()
            resource.prlimit(worker, resource.RLIMIT_NOFILE, old)
            for i in range(5):
                self.assertEqual(ht.get(HOST, h.port).status, 200)
            self.assertEqual(h.worker_pids(), [worker])
            self.assertEqual(h.stop(), 0)


class DeferredAccept(unittest.TestCase):
    """defer_accept = on (the default): the kernel holds a connection
    that sends nothing for about a second before an async worker sees
    it; the silent client is then closed at header_timeout.  A request
    that arrives is served at once, and the sync worker meets a silent
    client at once, as the blocking model does."""

    def silent_close_time(self, conf):
        with ht.start_hellod(conf) as h:
            with connect(HOST, h.port) as s:
                got, took = ht.wait_eof(s, 10.0)
            check_timeout_close(self, got)
            r = ht.get(HOST, h.port)
            self.assertEqual(r.body, greeting(HOST))
            return took

    def test_silent_client_waits_in_the_kernel_first(self):
        took = self.silent_close_time("[server]\nworkers = 1\n[http]\n"
                                      "header_timeout = 500ms\n")
        # header_timeout after the kernel's one second (a SYN-ACK
        # retransmission, 1 s, or up to 3 s after a second one).
        self.assertGreaterEqual(took, 0.5 + 0.9)
        self.assertLess(took, 0.5 + 3.5)

    def test_sync_mode_does_not_defer(self):
        took = self.silent_close_time("[server]\nmode = sync\n[http]\n"
                                      "header_timeout = 500ms\n")
        self.assertGreaterEqual(took, EARLY)
        self.assertLess(took, LATE)

    def test_request_is_served_at_once(self):
        with ht.start_hellod("[server]\nworkers = 1\n") as h:
            t = time.monotonic()
            r = ht.get(HOST, h.port)
            self.assertEqual(r.body, greeting(HOST))
            self.assertLess(time.monotonic() - t, 0.5)


class UringTimeouts(AsyncTimeouts):
    CONF = ("[server]\nmode = uring\nworkers = 2\ndefer_accept = off\n"
            "[http]\nheader_timeout = 500ms\nkeepalive_timeout = 500ms\n")


class SyncTimeouts(TimeoutCases, unittest.TestCase):
    WORKERS = 1
    CONF = ("[server]\nmode = sync\n[http]\n"
            "header_timeout = 500ms\nkeepalive_timeout = 500ms\n")

    def test_case25_slow_client_holds_worker_at_most_header_timeout(self):
        with self.conn() as slow:
            slow.sendall(b"GET / HTTP/1.1\r\nHost: t")
            t = time.monotonic()
            resp = ht.get(HOST, self.srv.port)
            took = time.monotonic() - t
            self.assertEqual(resp.status, 200)
            self.assertLess(took, LATE, "the worker was held too long")
            self.assertGreaterEqual(took, 0.3, "one blocking worker, but "
                                    "served beside a slow client")
            got, _ = ht.wait_eof(slow, 1.0)
            check_timeout_close(self, got)


if __name__ == "__main__":
    ht.main()
