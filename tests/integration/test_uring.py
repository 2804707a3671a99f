#!/usr/bin/env python3
"""mode = uring where io_uring is unavailable, and hostile input against
the uring workers.

Refusal: hellod runs under tests/helpers/deny_uring, a seccomp filter
that fails io_uring_setup() with EPERM (as the default profiles of Docker
and Kubernetes do) or ENOSYS; `hellod -t`, a start and a reload into
mode = uring must refuse with the reason and the way out (mode = async),
and async mode must not care.  TLS listeners are refused in this mode.

Soak: a bounded mix of slowloris heads, random bytes, resets mid-request,
half-closes and pipelined floods that never read, against one uring
worker.  Afterwards its descriptors are back where they were, its memory
has not grown, every provided buffer is back in the ring (the worker
warns at exit otherwise) and the log is clean."""

import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import hellodtest as ht
from hellodtest import greeting

HOST = "127.0.0.1"
HELPER = os.path.join(os.environ.get("BUILDDIR", "."), "tests", "helpers",
                      "deny_uring")
REFUSED = r"mode = async serves without it"


def helper():
    if not os.access(HELPER, os.X_OK):
        raise unittest.SkipTest("%s not built (make check builds it)"
                                % HELPER)
    return [HELPER]


class Refusal(unittest.TestCase):

    def run_denied(self, errno_name, *args):
        port = ht.free_port()
        return ht.run_hellod(["-l", "%s:%d" % (HOST, port)] + list(args),
                             wrapper=helper() + [errno_name])

    def test_test_config_refuses_eperm(self):
        r = self.run_denied("EPERM", "-t", "--uring")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("io_uring_setup() is denied (EPERM)", r.stderr)
        self.assertRegex(r.stderr, REFUSED)
        self.assertNotIn("configuration OK", r.stdout)

    def test_test_config_refuses_enosys(self):
        r = self.run_denied("ENOSYS", "-t", "--uring")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("not available (ENOSYS)", r.stderr)
        self.assertRegex(r.stderr, REFUSED)

    def test_async_does_not_need_io_uring(self):
        r = self.run_denied("EPERM", "-t")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("configuration OK", r.stdout)

    def test_start_refuses_with_an_error(self):
        port = ht.free_port()
        r = ht.run_hellod(["-f", "--uring", "-l", "%s:%d" % (HOST, port)],
                          wrapper=helper() + ["EPERM"])
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertRegex(r.stderr, r"\[error\] .*mode = uring: "
                         r"io_uring_setup\(\) is denied")
        self.assertTrue(ht.refuses(port))

    def test_tls_listener_refused(self):
        if not shutil.which("openssl"):
            self.skipTest("openssl not found")
        with tempfile.TemporaryDirectory(prefix="hellod-uring-") as d:
            cert, key = os.path.join(d, "c.pem"), os.path.join(d, "k.pem")
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                            "-nodes", "-keyout", key, "-out", cert, "-days",
                            "1", "-subj", "/CN=hellod"], check=True,
                           stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            conf = os.path.join(d, "hellod.conf")
            with open(conf, "w") as f:
                f.write("[server]\nlisten = %s:%d\ntls_listen = %s:%d\n"
                        "mode = uring\n[tls]\ncertificate = %s\n"
                        "certificate_key = %s\n"
                        % (HOST, ht.free_port(), HOST, ht.free_port(), cert,
                           key))
            r = ht.run_hellod(["-t", "-c", conf])
        if "TLS" in r.stderr and "not built" in r.stderr:
            self.skipTest("built without TLS")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("is a TLS listener, and TLS is served in mode = async "
                      "only", r.stderr)

    def test_reload_into_uring_refused(self):
        with ht.Hellod("workers = 1\n", wrapper=helper() + ["EPERM"]) as h:
            h.write_conf("workers = 1\nmode = uring\n")
            h.kill(signal.SIGHUP)
            h.wait_log(r"reload failed", 10.0)
            self.assertRegex(h.log(), r"io_uring_setup\(\) is denied")
            self.assertTrue(ht.answers(h.port))
            self.assertNotIn("(uring)", h.log())
            self.assertEqual(h.stop(), 0, h.log())


def status_json(port):
    conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
    try:
        conn.request("GET", "/status.json")
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def vm_rss_kib(pid):
    return int(ht.proc_status(pid)["VmRSS"][0])


class HostileSoak(unittest.TestCase):
    """Bounded: ROUNDS rounds of N clients of each kind, SECONDS at most."""

    ROUNDS = 4
    N = 100
    SECONDS = 60.0
    HEAD = b"GET / HTTP/1.1\r\nHost: soak\r\n"

    def client(self, port):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((HOST, port))
        return s

    def round(self, port, rnd):
        rng = random.Random(rnd)
        socks = []
        for i in range(self.N):
            kinds = [
                # slowloris: part of a head, more later, never finished
                lambda s: s.send(self.HEAD[:rng.randrange(1, 20)]),
                # random bytes, then a reset
                lambda s: s.send(os.urandom(rng.randrange(1, 9000))),
                # a request, reset before the answer is read
                lambda s: s.send(self.HEAD + b"\r\n"),
                # a request and a half-close: answered, then closed
                lambda s: (s.send(self.HEAD + b"\r\n"),
                           s.shutdown(socket.SHUT_WR)),
                # a pipelined flood that never reads
                lambda s: s.send((self.HEAD + b"\r\n") * 400),
            ]
            s = self.client(port)
            socks.append((s, i % len(kinds), kinds[i % len(kinds)]))
        time.sleep(0.05)
        for s, _, act in socks:
            try:
                act(s)
            except OSError:
                pass
        time.sleep(0.2)
        for s, kind, _ in socks:
            try:
                if kind == 0:
                    s.send(b"X-Slow: 1\r\n")
                if kind in (1, 2, 4):
                    ht.reset_close(s)
                    continue
            except OSError:
                pass
            s.close()

    def test_soak(self):
        port, sport = ht.free_port(), ht.free_port()
        # listen given: the [status] one would hide the default.
        h = ht.Hellod("listen = %s:%d\nworkers = 1\nmode = uring\n"
                      "[http]\nheader_timeout = 1s\nkeepalive_timeout = 2s\n"
                      "[status]\nlisten = %s:%d\n"
                      % (HOST, port, HOST, sport), port=port,
                      ready=False)
        with h:
            h.wait_ready()
            h.wait_log(r"worker \d+ serving", count=1)
            worker = ht.wait_for(
                lambda: status_json(sport)["workers"][0]["pid"], 5.0,
                what="the worker")
            # Warm-up rounds: the allocator settles, and the kernel has
            # filled every provided buffer once (they are touched in
            # turn: 2 MiB of the worker's memory).
            for rnd in range(2):
                self.round(h.port, -rnd)
            ht.wait_for(lambda: ht.tcp_connections([worker]) == 0, 15.0,
                        what="the warm-up connections to close")
            base, rss = fd_count(worker), vm_rss_kib(worker)
            deadline = time.monotonic() + self.SECONDS
            for rnd in range(1, self.ROUNDS + 1):
                self.assertLess(time.monotonic(), deadline)
                self.round(h.port, rnd)
                # Served meanwhile.
                r = ht.get(HOST, h.port)
                self.assertEqual((r.status, r.body), (200, greeting(HOST)))
            ht.wait_for(lambda: ht.tcp_connections([worker]) == 0, 15.0,
                        what="every hostile connection to close")
            ht.wait_for(lambda: fd_count(worker) == base, 5.0,
                        what="the descriptors to return to %d" % base)
            grown = vm_rss_kib(worker) - rss
            if not ht.SANITIZERS:
                self.assertLess(grown, 4096, "VmRSS grew by %d KiB" % grown)
            # The gauges agree: no connection in any state.
            st = status_json(sport)
            self.assertEqual(set(st["totals"]["connections"].values()),
                             {0}, st["totals"]["connections"])
            self.assertEqual(st["workers"][0]["pid"], worker)
            self.assertEqual(st["worker_restarts"], 0)
            self.assertEqual(h.stop(), 0, h.log()[-3000:])
            log = h.log()
            self.assertNotIn("not returned", log)
            self.assertEqual(ht.log_problems(log), [])
            print("\n  soak: %d rounds of %d clients, descriptors back to "
                  "%d, VmRSS %+d KiB" % (self.ROUNDS, self.N, base, grown),
                  flush=True)


if __name__ == "__main__":
    ht.main()
