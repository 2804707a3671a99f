"""How workers end: a SIGTERM that reaches the sync worker just after it
checked its stop flag and just before it waits still stops it; a runtime
failure in the sync worker is respawned (only a start-up failure with the
configuration stops the service; crashes and their backoff are in
test_lifecycle.py)."""

import os
import select
import shutil
import signal
import subprocess
import time
import unittest

import hellodtest
from hellodtest import start_hellod, wait_for


def gone(pid):
    return not hellodtest.proc_alive(pid)


class SyncStopRace(unittest.TestCase):

    @unittest.skipUnless(shutil.which("gdb"), "needs gdb (Debian gdb) to "
                         "stop the worker between its flag check and its "
                         "wait")
    def test_sigterm_just_before_the_wait(self):
        # gdb stops the worker at the entry of its wait (poll or ppoll),
        # which comes right after the stop-flag check, and delivers
        # SIGTERM there.  A worker whose handler runs at once and then
        # sleeps in the wait forever would never stop; one that keeps the
        # signal blocked until its wait must exit within a second.
        with start_hellod("workers = 1\n", args=["--sync"]) as h:
            hellodtest.generation_serving(h, 1, 1)
            [pid] = wait_for(lambda: len(h.worker_pids()) == 1 and
                             h.worker_pids(), 5.0, what="the worker")
            # SIGTERM is sent while gdb holds the worker at the wait's
            # entry, then gdb detaches: the signal is delivered as the
            # worker goes on, untraced (LeakSanitizer, in a sanitizer
            # build, refuses to run its exit check under ptrace).
            gdb = subprocess.Popen(
                ["gdb", "-nx", "-batch", "-p", str(pid),
                 "-ex", "break ppoll", "-ex", "break poll",
                 "-ex", "continue", "-ex", "echo HIT\\n",
                 "-ex", "delete",
                 "-ex", "shell kill -TERM %d" % pid,
                 "-ex", "detach"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT)
            try:
                out = b""
                deadline = time.monotonic() + 30
                # Once both breakpoints are set, make the worker go round
                # its loop once: a request, then the wait, where gdb
                # delivers the signal.
                while b"Breakpoint 2 at" not in out:
                    self.assertLess(time.monotonic(), deadline, out)
                    r, _, _ = select.select([gdb.stdout], [], [], 1.0)
                    if r:
                        chunk = os.read(gdb.stdout.fileno(), 4096)
                        self.assertTrue(chunk, out)
                        out += chunk
                sent = time.monotonic()
                r = hellodtest.get(port=h.port)
                self.assertEqual(r.status, 200)
                wait_for(lambda: gone(pid), 10.0, what="the worker to stop")
                self.assertLess(time.monotonic() - sent, 2.0,
                                "worker took too long to stop")
                gdb.wait(10)
                out += gdb.stdout.read()
                self.assertIn(b"HIT", out)
            finally:
                if gdb.poll() is None:
                    gdb.kill()
                gdb.wait(10)
                gdb.stdout.close()
            # The master respawns the worker that left on its own, and
            # the service goes on.
            wait_for(lambda: hellodtest.answers(h.port), 10.0,
                     what="a new worker to answer")
            self.assertEqual(h.stop(), 0, h.log())


class RuntimeFailure(unittest.TestCase):

    @unittest.skipUnless(shutil.which("prlimit"), "needs prlimit "
                         "(util-linux)")
    @unittest.skipIf(hellodtest.SANITIZERS, "LeakSanitizer needs "
                     "descriptors of its own at exit: with RLIMIT_NOFILE 0 "
                     "a sanitizer build cannot end cleanly")
    def test_sync_worker_failure_is_respawned(self):
        # With no descriptors left at all (RLIMIT_NOFILE 0), the sync
        # worker's ppoll() on its listener fails with EINVAL: a runtime
        # failure, exit 1.  The master respawns it and keeps serving.
        with start_hellod("workers = 1\n", args=["--sync"]) as h:
            hellodtest.generation_serving(h, 1, 1)
            [pid] = wait_for(lambda: len(h.worker_pids()) == 1 and
                             h.worker_pids(), 5.0, what="the worker")
            subprocess.run(["prlimit", "--pid", str(pid), "--nofile=0:0"],
                           check=True, timeout=10)
            # A client wakes it: accept fails (EMFILE), then ppoll does.
            try:
                hellodtest.get(port=h.port, timeout=1.0)
            except OSError:
                pass
            h.wait_log(r"worker 0 \(pid %d\) exited with code 1; "
                       r"respawning in 0\.0s" % pid, 10.0)
            wait_for(lambda: hellodtest.answers(h.port), 10.0,
                     what="the respawned worker to answer")
            self.assertIsNone(h.proc.poll(), "the master stopped")
            self.assertIn("ppoll() failed", h.log())
            self.assertEqual(h.stop(), 0, h.log())


if __name__ == "__main__":
    hellodtest.main()
