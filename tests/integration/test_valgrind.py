"""The daemon under valgrind (memcheck): a mix of good, bad, pipelined,
keep-alive and reset connections in async and sync mode, then a graceful
stop.  Every process (master and workers) must report no memory error and
no definitely or indirectly lost block."""

import glob
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import unittest

import hellodtest
from hellodtest import Hellod, Reader, connect, wait_for

REQ = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n"


@unittest.skipIf(shutil.which("valgrind") is None,
                 "valgrind is not installed (Debian package valgrind)")
@unittest.skipIf(hellodtest.SANITIZERS,
                 "valgrind cannot run a sanitizer build")
class Memcheck(unittest.TestCase):
    def run_mode(self, extra_conf, args=()):
        logdir = hellodtest.tempfile.mkdtemp(prefix="hellod-vg-")
        self.addCleanup(shutil.rmtree, logdir, True)
        wrapper = ["valgrind", "--tool=memcheck", "--leak-check=full",
                   "--errors-for-leak-kinds=definite,indirect",
                   "--show-leak-kinds=definite,indirect",
                   "--trace-children=yes", "--child-silent-after-fork=no",
                   "--log-file=%s/vg.%%p" % logdir]
        with Hellod("[http]\nkeepalive_timeout = 2s\n" + extra_conf,
                    args=args, workers=1, wrapper=wrapper) as h:
            h.wait_ready(timeout=60)
            self.traffic(h.port)
            self.assertEqual(h.stop(timeout=60), 0, h.log())
        reports = glob.glob(os.path.join(logdir, "vg.*"))
        checked = 0
        for path in reports:
            with open(path, errors="replace") as f:
                text = f.read()
            if "ERROR SUMMARY" not in text:
                continue    # a process replaced by exec, or killed
            checked += 1
            m = re.search(r"ERROR SUMMARY: (\d+) errors", text)
            self.assertEqual(m.group(1), "0", text)
            for kind in ("definitely", "indirectly"):
                m = re.search(kind + r" lost: ([\d,]+) bytes", text)
                if m:
                    self.assertEqual(m.group(1), "0", text)
        # The master and at least one worker.
        self.assertGreaterEqual(checked, 2, reports)

    def traffic(self, port):
        # Keep-alive and pipelining.
        with connect(port=port) as s:
            s.sendall(REQ * 20)
            r = Reader(s)
            for _ in range(20):
                self.assertEqual(r.response().status, 200)
        # Bad requests of several kinds.
        for bad in (b"G@T / HTTP/1.1\r\nHost: t\r\n\r\n",
                    b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
                    b"GET / HTTP/1.1\r\n\r\n",
                    b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
                    b"GET / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
                    b"Transfer-Encoding: chunked\r\n\r\n"):
            with connect(port=port) as s:
                s.sendall(bad)
                resp = Reader(s).response()
                self.assertIn(resp.status, (400, 414, 431, 505))
        # A chunked body skipped, then a request.
        with connect(port=port) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                      b"chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" + REQ)
            r = Reader(s)
            self.assertEqual(r.response().status, 200)
            self.assertEqual(r.response().status, 200)
        # A reset mid-request and an incomplete request left behind.
        s = connect(port=port)
        s.sendall(b"GET / HTTP/1.1\r\nHo")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
        s.close()
        with connect(port=port) as s:
            s.sendall(b"GET / HTTP/1.1\r\n")      # then EOF
        # Still serving.
        with connect(port=port) as s:
            s.sendall(REQ)
            self.assertEqual(Reader(s).response().status, 200)

    def test_async(self):
        self.run_mode("")

    def test_sync(self):
        self.run_mode("", args=["--sync"])


if __name__ == "__main__":
    hellodtest.main()
