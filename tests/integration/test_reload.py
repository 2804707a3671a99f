"""SIGHUP reloads: under load without a failed request, a broken
configuration keeps the running one, workers/listen/mode changes."""

import os
import re
import signal
import socket
import tempfile
import time
import unittest

import hellodtest
from hellodtest import Hellod, start_hellod, LoadGenerator, get, wait_for

HOST = "127.0.0.1"
GREETING = hellodtest.greeting(HOST)


answers = hellodtest.answers
refuses = hellodtest.refuses


def previous_finished(h, timeout=15.0):
    """Until every old worker exited: the master logged "previous
    generation finished" after its last reload."""
    def done():
        log = h.log()
        last = log.rfind("#master: reloaded: generation")
        return last >= 0 and "#master: previous generation finished" in \
            log[last:]
    wait_for(done, timeout, what="the previous generation to finish")


class ReloadUnderLoad(unittest.TestCase):
    RELOADS = 20
    WORKERS = 2
    MODE = "async"

    def test_reloads_under_load(self):
        conf = ("workers = %d\nmode = %s\nshutdown_timeout = 5s\n"
                % (self.WORKERS, self.MODE))
        with start_hellod(conf) as h:
            hellodtest.generation_serving(h, 1, self.WORKERS)
            load = LoadGenerator(HOST, h.port, clients=100).start()
            try:
                wait_for(lambda: load.ok >= 200, 15.0,
                         what="the load to get going")
                for gen in range(2, self.RELOADS + 2):
                    before = load.ok
                    hellodtest.reload_and_wait(h, gen, self.WORKERS,
                                               timeout=15.0)
                    # The new generation carries the load before the
                    # next reload.
                    wait_for(lambda: load.ok >= before + 300, 15.0,
                             what="requests after reload %d" % gen)
                previous_finished(h)
            finally:
                load.stop()
            summary = load.summary()
            self.assertEqual(load.failures, 0, summary)
            self.assertGreater(load.ok, 300 * self.RELOADS, summary)

            gens = [int(g) for g in
                    re.findall(r"reloaded: generation (\d+), 2 workers "
                               r"\(%s\)" % self.MODE, h.log())]
            self.assertEqual(gens, list(range(2, self.RELOADS + 2)),
                             h.log())
            self.assertNotIn("reload failed", h.log())
            self.assertEqual(len(h.worker_pids()), self.WORKERS)
            self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())
            print("\n  load: " + summary, flush=True)

    def test_worker_count_changes_under_load(self):
        """Growing and shrinking the worker set (and so the SO_REUSEPORT
        group) loses no connection."""
        with start_hellod("workers = 2\nmode = %s\nshutdown_timeout = 5s\n"
                          % self.MODE) as h:
            hellodtest.generation_serving(h, 1, 2)
            load = LoadGenerator(HOST, h.port, clients=100).start()
            try:
                wait_for(lambda: load.ok >= 300, 15.0,
                         what="the load to get going")
                for gen, n in enumerate([3, 1, 4, 2, 1, 2], start=2):
                    before = load.ok
                    h.write_conf("workers = %d\nmode = %s\n"
                                 "shutdown_timeout = 5s\n" % (n, self.MODE))
                    hellodtest.reload_and_wait(h, gen, n, timeout=15.0)
                    wait_for(lambda: load.ok >= before + 500, 15.0,
                             what="requests after reload %d" % gen)
                previous_finished(h)
            finally:
                load.stop()
            self.assertEqual(load.failures, 0, load.summary())
            self.assertEqual(len(h.worker_pids()), 2)
            self.assertEqual(h.stop(), 0, h.log())


class UringReloadUnderLoad(ReloadUnderLoad):
    MODE = "uring"


class ReloadDrain(unittest.TestCase):
    """The old generation finishes what it has in flight, within
    shutdown_timeout."""

    def server(self, delay, shutdown_timeout, access, mode="async"):
        # keepalive_timeout explicit: sync mode keeps connections alive
        # only when asked to.
        return Hellod("workers = 2\nmode = %s\nshutdown_timeout = %s\n"
                      "[http]\ndelay = %s\nkeepalive_timeout = 5s\n"
                      "[log]\naccess_log = %s\n"
                      % (mode, shutdown_timeout, delay, access),
                      ready=False)

    def setUp(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        self.access = os.path.join(d.name, "access.log")

    def lines(self):
        try:
            with open(self.access, "rb") as f:
                return f.read().count(b"\n")
        except FileNotFoundError:
            return 0

    def test_in_flight_request_finishes(self):
        self.in_flight("async", 2)

    def test_in_flight_request_finishes_sync(self):
        self.in_flight("sync", 1)

    def test_in_flight_request_finishes_uring(self):
        self.in_flight("uring", 2)

    def in_flight(self, mode, workers):
        """A keep-alive request in flight at the reload is answered by
        the old worker, with Connection: close."""
        with self.server("2s", "5s", self.access, mode) as h:
            hellodtest.generation_serving(h, 1, workers)
            old = h.worker_pids()
            with hellodtest.connect(HOST, h.port, timeout=5.0) as s:
                t0 = time.monotonic()
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                # Logged when parsed, before the delay: in flight.
                wait_for(lambda: self.lines() >= 1, 5.0,
                         what="the request to be in flight")
                hellodtest.reload_and_wait(h, 2, workers)
                r = hellodtest.Reader(s)
                # The old worker with the request is still there (idle
                # old workers may have exited).
                if time.monotonic() - t0 < 1.5:
                    self.assertGreaterEqual(
                        len(set(old) & set(h.worker_pids())), 1, h.log())
                resp = r.response()
                self.assertGreaterEqual(time.monotonic() - t0, 1.9)
                self.assertIsNotNone(resp, h.log())
                self.assertEqual((resp.status, resp.body), (200, GREETING))
                self.assertEqual(resp.header("connection"), "close",
                                 resp.raw)
                self.assertTrue(r.closed(5.0))
            previous_finished(h)
            self.assertNotIn("still busy", h.log())
            self.assertEqual(h.stop(), 0, h.log())

    def test_old_worker_killed_after_shutdown_timeout(self):
        with self.server("10s", "1s", self.access) as h:
            hellodtest.generation_serving(h, 1, 2)
            with hellodtest.connect(HOST, h.port, timeout=10.0) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                wait_for(lambda: self.lines() >= 1, 5.0,
                         what="the request to be in flight")
                t0 = time.monotonic()
                hellodtest.reload_and_wait(h, 2, 2)
                h.wait_log(r"#master: old worker pid \d+ still busy after "
                           r"shutdown_timeout, killing it", 5.0)
                previous_finished(h, 5.0)
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 0.9)
                self.assertLess(took, 4.0)
                try:
                    data = s.recv(100)
                except ConnectionResetError:
                    data = b""
                self.assertEqual(data, b"")
            self.assertEqual(len(h.worker_pids()), 2)
            self.assertEqual(h.stop(timeout=15.0), 0, h.log())


class ReloadFailure(unittest.TestCase):

    def test_broken_config_keeps_running(self):
        with start_hellod("workers = 2\nshutdown_timeout = 5s\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            pids = sorted(h.worker_pids())
            self.assertEqual(len(pids), 2)
            with open(h.conf_path) as f:
                good = f.read()
            with open(h.conf_path, "a") as f:
                f.write("bogus_key = 1\n")
            h.kill(signal.SIGHUP)
            h.wait_log(r"#master: reload failed, keeping the running "
                       r"configuration: .*bogus_key: unknown key")
            for _ in range(20):
                self.assertTrue(answers(h.port))
            self.assertEqual(sorted(h.worker_pids()), pids)
            self.assertNotIn("reloaded: generation", h.log())

            # The master also checks that the workers could open the
            # access log before it commits.
            with open(h.conf_path, "w") as f:
                f.write(good + "[log]\naccess_log = %s\n" % os.path.join(
                    h.dir.name, "missing-dir", "access.log"))
            h.kill(signal.SIGHUP)
            h.wait_log(r"reload failed, keeping the running configuration"
                       r": .*access_log: cannot open", count=1)
            self.assertEqual(
                len(re.findall(r"reload failed", h.log())), 2, h.log())
            for _ in range(20):
                self.assertTrue(answers(h.port))
            self.assertEqual(sorted(h.worker_pids()), pids)

            # Fixed, the next reload goes through as generation 2.
            with open(h.conf_path, "w") as f:
                f.write(good)
            hellodtest.reload_and_wait(h, 2, 2)
            previous_finished(h)
            wait_for(lambda: len(set(h.worker_pids()) & set(pids)) == 0,
                     5.0, what="old workers to be gone")
            self.assertEqual(len(h.worker_pids()), 2)
            self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())


class ReloadChanges(unittest.TestCase):

    def conf(self, h, workers=2, ports=None, mode="async"):
        ports = ports or [h.port]
        listen = " ".join("%s:%d" % (HOST, p) for p in ports)
        h.write_conf("listen = %s\nworkers = %d\nmode = %s\n"
                     "shutdown_timeout = 5s\n" % (listen, workers, mode))

    def wait_children(self, h, n, old):
        """Until exactly n children remain, none of them from `old`."""
        wait_for(lambda: len(h.worker_pids()) == n and
                 not set(h.worker_pids()) & set(old), 5.0,
                 what="%d workers" % n)

    def test_worker_count(self):
        with start_hellod("workers = 2\nshutdown_timeout = 5s\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            old = h.worker_pids()
            self.assertEqual(len(old), 2)

            self.conf(h, workers=3)
            hellodtest.reload_and_wait(h, 2, 3)
            h.wait_log(r"reloaded: generation 2, 3 workers \(async\)")
            previous_finished(h)
            self.wait_children(h, 3, old)
            old = h.worker_pids()
            for _ in range(30):
                self.assertTrue(answers(h.port))

            self.conf(h, workers=2)
            hellodtest.reload_and_wait(h, 3, 2)
            h.wait_log(r"reloaded: generation 3, 2 workers \(async\)")
            previous_finished(h)
            self.wait_children(h, 2, old)
            for _ in range(30):
                self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())

    def test_listen_add_remove(self):
        with start_hellod("workers = 2\nshutdown_timeout = 5s\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            port2 = hellodtest.free_port()
            self.assertTrue(refuses(port2))

            self.conf(h, ports=[h.port, port2])
            hellodtest.reload_and_wait(h, 2, 2)
            h.wait_log(r"worker \d+ serving \(generation 2, async, "
                       r"2 listeners\)", count=2)
            for _ in range(10):
                self.assertTrue(answers(port2))
                self.assertTrue(answers(h.port))
            previous_finished(h)

            self.conf(h, ports=[h.port])
            hellodtest.reload_and_wait(h, 3, 2)
            h.wait_log(r"worker \d+ serving \(generation 3, async, "
                       r"1 listener\)", count=2)
            previous_finished(h)
            wait_for(lambda: refuses(port2), 5.0,
                     what="the removed port to refuse connections")
            for _ in range(10):
                self.assertTrue(refuses(port2))
                self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())

    def switch_mode(self, h, gen, mode, n, old):
        """Reloads into mode (n workers) and waits for the old workers
        to go; returns the new ones."""
        self.conf(h, mode=mode)
        hellodtest.reload_and_wait(h, gen, n)
        h.wait_log(r"reloaded: generation %d, %d workers? \(%s\)"
                   % (gen, n, mode))
        h.wait_log(r"worker \d serving \(generation %d, %s, "
                   r"\d+ listeners?\)" % (gen, mode), count=n)
        previous_finished(h)
        self.wait_children(h, n, old)
        return h.worker_pids()

    def test_mode_switch(self):
        with start_hellod("workers = 2\nshutdown_timeout = 5s\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            old = self.switch_mode(h, 2, "sync", 1, h.worker_pids())
            for _ in range(10):
                r = get(HOST, h.port)
                self.assertEqual((r.status, r.body), (200, GREETING))
            for gen, mode in ((3, "async"), (4, "uring")):
                old = self.switch_mode(h, gen, mode, 2, old)
                for _ in range(10):
                    self.assertTrue(answers(h.port))
                # Sync no more: keep-alive works.
                with hellodtest.connect(HOST, h.port) as s:
                    r = hellodtest.Reader(s)
                    for _ in range(3):
                        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                        resp = r.response()
                        self.assertEqual(resp.status, 200)
                        self.assertIsNone(resp.header("connection"))
            self.assertEqual(h.stop(), 0, h.log())


if __name__ == "__main__":
    hellodtest.main()
