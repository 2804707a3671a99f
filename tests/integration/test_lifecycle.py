"""Process lifecycle: respawning killed workers (and backing off in a
crash loop), graceful and immediate stops, the pid file, daemon mode,
reopening logs on SIGUSR1, a worker that cannot start."""

import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import hellodtest
from hellodtest import (Hellod, LoadGenerator, Reader, connect, get,
                        start_hellod, wait_for)

HOST = "127.0.0.1"
GREETING = hellodtest.greeting(HOST)


answers = hellodtest.answers
refuses = hellodtest.refuses


def slot_pid(h, slot):
    """Pid of the latest worker that logged serving in `slot`."""
    pids = re.findall(r"(\d+)#worker %d: worker %d serving" % (slot, slot),
                      h.log())
    return int(pids[-1]) if pids else None


def count_lines(path):
    try:
        with open(path, "rb") as f:
            return f.read().count(b"\n")
    except FileNotFoundError:
        return 0


def read(path):
    with open(path, "r", errors="replace") as f:
        return f.read()


def no_response(s, timeout=5.0):
    """True when the server closes s (EOF or reset) without a byte."""
    s.settimeout(timeout)
    try:
        data = s.recv(65536)
    except ConnectionResetError:
        return True
    return data == b""


class WorkerDeath(unittest.TestCase):

    def test_kill9_under_load(self):
        with start_hellod("workers = 2\nshutdown_timeout = 5s\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            load = LoadGenerator(HOST, h.port, clients=100).start()
            try:
                wait_for(lambda: load.ok >= 1000, 15.0,
                         what="the load to get going")
                victim = slot_pid(h, 0)
                other = slot_pid(h, 1)
                self.assertEqual(sorted(h.worker_pids()),
                                 sorted([victim, other]))
                t0 = time.monotonic()
                os.kill(victim, signal.SIGKILL)

                def replaced():
                    pids = h.worker_pids()
                    new = [p for p in pids if p not in (victim, other)]
                    return len(pids) == 2 and victim not in pids and \
                        other in pids and new and new[0]
                new = wait_for(replaced, 1.0,
                               what="a replacement worker process")
                h.wait_log(r"%d#worker 0: worker 0 serving \(generation 1,"
                           % new, max(0.05, 1.0 - (time.monotonic() - t0)))
                took = time.monotonic() - t0
                before = load.ok
                wait_for(lambda: load.ok >= before + 1000, 15.0,
                         what="requests after the replacement")
            finally:
                load.stop()
            during = load.summary()
            self.assertLess(took, 1.0)
            h.wait_log(r"worker 0 \(pid %d\) killed by signal 9; "
                       r"respawning in 0\.0s" % victim)

            # A fresh load without the kill's casualties: both slots
            # (connections spread over both SO_REUSEPORT sockets) serve.
            load = LoadGenerator(HOST, h.port, clients=100).start()
            try:
                wait_for(lambda: load.ok >= 2000, 15.0,
                         what="requests on the replaced worker")
            finally:
                load.stop()
            self.assertEqual(load.failures, 0, load.summary())
            self.assertEqual(sorted(h.worker_pids()), sorted([new, other]))
            self.assertEqual(h.stop(), 0, h.log())
            print("\n  replacement serving after %.3fs; load during the "
                  "kill: %s" % (took, during), flush=True)

    def test_crash_loop_backoff(self):
        expected = [0.0, 0.1, 0.2, 0.4, 0.8]
        with start_hellod("workers = 2\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            for i, delay in enumerate(expected):
                pid = slot_pid(h, 0)
                self.assertIn(pid, h.worker_pids())
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                h.wait_log(r"worker 0 \(pid %d\) killed by signal 9; "
                           r"respawning in [\d.]+s" % pid, 5.0)
                h.wait_log(r"#worker 0: worker 0 serving", 5.0,
                           count=i + 2)
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, delay * 0.9,
                                        "respawned too early")
            delays = [float(d) for d in re.findall(
                r"worker 0 \(pid \d+\) killed by signal 9; respawning in "
                r"([\d.]+)s", h.log())]
            self.assertEqual(delays, expected, h.log())
            # The other slot was left alone, and the last worker serves.
            self.assertEqual(len(re.findall(r"#worker 1: worker 1 serving",
                                            h.log())), 1)
            self.assertEqual(len(h.worker_pids()), 2)
            for _ in range(20):
                self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())


class Stopping(unittest.TestCase):

    def setUp(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        self.access = os.path.join(d.name, "access.log")

    def server(self, delay, shutdown_timeout, http="", args=()):
        return Hellod("workers = 2\nshutdown_timeout = %s\n[http]\n"
                      "delay = %s\n%s[log]\naccess_log = %s\n"
                      % (shutdown_timeout, delay, http, self.access),
                      args=args, ready=False)

    def wait_in_flight(self, count):
        """Until `count` requests were logged: the access log line is
        written when a request is parsed, before its delay."""
        wait_for(lambda: count_lines(self.access) >= count, 5.0,
                 what="%d access log lines" % count)

    def test_graceful_stop_finishes_request(self):
        with self.server("500ms", "5s") as h:
            hellodtest.generation_serving(h, 1, 2)
            n = count_lines(self.access)
            with connect(HOST, h.port, timeout=5.0) as s:
                t0 = time.monotonic()
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.wait_in_flight(n + 1)
                h.kill(signal.SIGTERM)
                r = Reader(s)
                resp = r.response()
                took = time.monotonic() - t0
                self.assertIsNotNone(resp, h.log())
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.body, GREETING)
                self.assertEqual(resp.header("connection"), "close")
                self.assertGreaterEqual(took, 0.45)
                self.assertTrue(r.closed(5.0))
            self.assertEqual(h.wait_exit(5.0), 0, h.log())
            self.assertIn("stopping gracefully", h.log())
            self.assertNotIn("stopping now", h.log())
            self.assertIn("#master: exiting", h.log())

    def test_keepalive_gets_close_during_stop(self):
        with self.server("500ms", "5s") as h:
            hellodtest.generation_serving(h, 1, 2)
            n = count_lines(self.access)
            a = connect(HOST, h.port)      # HTTP/1.1, persistent
            b = connect(HOST, h.port)      # HTTP/1.0 keep-alive
            c = connect(HOST, h.port)      # idle keep-alive at the stop
            req11 = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
            req10 = b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
            try:
                ra, rb, rc = Reader(a), Reader(b), Reader(c)
                a.sendall(req11)
                b.sendall(req10)
                c.sendall(req11)
                first = [ra.response(), rb.response(), rc.response()]
                self.assertEqual([x.status for x in first], [200] * 3)
                self.assertIsNone(first[0].header("connection"))
                self.assertEqual(first[1].header("connection"),
                                 "keep-alive")
                self.assertIsNone(first[2].header("connection"))

                a.sendall(req11)
                b.sendall(req10)
                self.wait_in_flight(n + 5)
                h.kill(signal.SIGTERM)
                h.wait_log(r"#master: stopping gracefully")
                for r in (ra, rb):
                    resp = r.response()
                    self.assertIsNotNone(resp, h.log())
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(resp.body, GREETING)
                    self.assertEqual(resp.header("connection"), "close")
                    self.assertTrue(r.closed(5.0))
                # The idle one is closed without a response.
                self.assertTrue(no_response(c, 5.0))
            finally:
                for s in (a, b, c):
                    s.close()
            self.assertEqual(h.wait_exit(5.0), 0, h.log())
            self.assertNotIn("stopping now", h.log())

    def test_sync_keepalive_gets_close_during_stop(self):
        # Sync mode keeps connections alive only when asked to.
        with self.server("500ms", "5s", http="keepalive_timeout = 5s\n",
                         args=["--sync"]) as h:
            hellodtest.generation_serving(h, 1, 1)
            n = count_lines(self.access)
            with connect(HOST, h.port, timeout=5.0) as s:
                r = Reader(s)
                req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                s.sendall(req)
                resp = r.response()
                self.assertEqual(resp.status, 200)
                self.assertIsNone(resp.header("connection"))   # kept
                s.sendall(req)
                self.wait_in_flight(n + 2)
                h.kill(signal.SIGTERM)
                h.wait_log(r"#master: stopping gracefully")
                resp = r.response()
                self.assertIsNotNone(resp, h.log())
                self.assertEqual((resp.status, resp.body), (200, GREETING))
                self.assertEqual(resp.header("connection"), "close",
                                 resp.raw)
                self.assertTrue(r.closed(5.0))
            self.assertEqual(h.wait_exit(5.0), 0, h.log())
            self.assertNotIn("stopping now", h.log())

    def test_second_sigterm_is_immediate(self):
        with self.server("10s", "30s") as h:
            hellodtest.generation_serving(h, 1, 2)
            n = count_lines(self.access)
            with connect(HOST, h.port, timeout=10.0) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.wait_in_flight(n + 1)
                h.kill(signal.SIGTERM)
                h.wait_log(r"#master: stopping gracefully")
                self.assertIsNone(h.proc.poll())   # still draining
                t0 = time.monotonic()
                h.kill(signal.SIGTERM)
                self.assertEqual(h.wait_exit(5.0), 0, h.log())
                took = time.monotonic() - t0
                self.assertLess(took, 3.0)
                self.assertTrue(no_response(s, 5.0))
            self.assertIn("stopping now (second signal)", h.log())

    def test_sigquit_is_immediate(self):
        with self.server("10s", "30s") as h:
            hellodtest.generation_serving(h, 1, 2)
            n = count_lines(self.access)
            with connect(HOST, h.port, timeout=10.0) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.wait_in_flight(n + 1)
                t0 = time.monotonic()
                h.kill(signal.SIGQUIT)
                self.assertEqual(h.wait_exit(5.0), 0, h.log())
                took = time.monotonic() - t0
                self.assertLess(took, 3.0)
                self.assertTrue(no_response(s, 5.0))
            self.assertIn("stopping now (SIGQUIT)", h.log())
            self.assertNotIn("second signal", h.log())

    def test_shutdown_timeout_bounds_graceful_stop(self):
        with self.server("10s", "1s") as h:
            hellodtest.generation_serving(h, 1, 2)
            n = count_lines(self.access)
            with connect(HOST, h.port, timeout=10.0) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                self.wait_in_flight(n + 1)
                t0 = time.monotonic()
                h.kill(signal.SIGTERM)
                self.assertEqual(h.wait_exit(8.0), 0, h.log())
                took = time.monotonic() - t0
                self.assertGreaterEqual(took, 0.9)
                self.assertLess(took, 4.0)
                self.assertTrue(no_response(s, 5.0))
            self.assertIn("shutdown_timeout passed, killing the workers "
                          "left", h.log())
            self.assertNotIn("stopping now", h.log())

    def test_workers_exit_with_the_master(self):
        with start_hellod("workers = 2\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            workers = h.worker_pids()
            self.assertEqual(len(workers), 2)
            h.kill(signal.SIGKILL)
            h.proc.wait(5)
            wait_for(lambda: not any(hellodtest.proc_alive(p)
                                     for p in workers), 5.0,
                     what="the workers to exit after the master died")
            wait_for(lambda: refuses(h.port), 5.0,
                     what="the port to be closed")


class PidFile(unittest.TestCase):

    def test_pid_file_lock(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        pidfile = os.path.join(d.name, "hellod.pid")
        conf = "pid_file = %s\nworkers = 1\n" % pidfile
        with start_hellod(conf) as h:
            wait_for(lambda: os.path.exists(pidfile) and read(pidfile),
                     5.0, what="the pid file")
            self.assertEqual(read(pidfile), "%d\n" % h.proc.pid)

            with Hellod(conf, ready=False) as h2:
                self.assertNotEqual(h2.port, h.port)
                try:
                    rc = h2.proc.wait(10)
                except subprocess.TimeoutExpired:
                    self.fail("second hellod kept running:\n" + h2.log())
                self.assertEqual(rc, 1, h2.log())
                self.assertIn("another hellod is running (pid %d, pid "
                              "file %s is locked)" % (h.proc.pid, pidfile),
                              h2.log())
                self.assertTrue(refuses(h2.port))
            self.assertEqual(read(pidfile), "%d\n" % h.proc.pid)
            self.assertTrue(answers(h.port))
            self.assertEqual(h.stop(), 0, h.log())
            self.assertFalse(os.path.exists(pidfile))


def ancestors(pid):
    out = []
    for _ in range(64):
        st = hellodtest.proc_stat(pid)
        if st is None or st["ppid"] == 0:
            break
        pid = st["ppid"]
        out.append(pid)
    return out


class Daemon(unittest.TestCase):

    def test_daemon_mode(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        port = hellodtest.free_port()
        pidfile = os.path.join(d.name, "hellod.pid")
        errlog = os.path.join(d.name, "error.log")
        conf = os.path.join(d.name, "hellod.conf")
        with open(conf, "w") as f:
            f.write("[server]\nlisten = %s:%d\nworkers = 2\npid_file = %s\n"
                    "%s[log]\nerror_log = %s\n"
                    % (HOST, port, pidfile, hellodtest.default_user(),
                       errlog))
        t0 = time.monotonic()
        # The pipes reach EOF only once every process of the daemon let
        # go of the caller's stdout and stderr.
        r = subprocess.run([hellodtest.HELLOD, "-c", conf],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        took = time.monotonic() - t0
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertLess(took, 5.0)
        self.assertEqual(r.stdout, b"")

        text = wait_for(lambda: os.path.exists(pidfile) and read(pidfile),
                        5.0, what="the pid file")
        pid = int(text)

        def cleanup():
            if hellodtest.proc_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(cleanup)

        st = hellodtest.proc_stat(pid)
        self.assertIsNotNone(st)
        # Reparented to init or to a subreaper above us.
        self.assertIn(st["ppid"], [1] + ancestors(os.getpid()))
        self.assertNotEqual(st["ppid"], os.getpid())
        self.assertNotEqual(st["session"], os.getsid(0))
        self.assertNotEqual(st["session"], pid)     # no session leader
        self.assertEqual(st["pgrp"], st["session"])
        self.assertEqual(st["tty_nr"], 0)
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")
        for fd in (0, 1, 2):
            self.assertEqual(os.readlink("/proc/%d/fd/%d" % (pid, fd)),
                             "/dev/null")

        wait_for(lambda: len(re.findall(r"serving \(generation 1,",
                                        read(errlog))) == 2, 5.0,
                 what="the workers to serve")
        self.assertTrue(answers(port))
        log = read(errlog)
        self.assertIn("%d#master: hellod" % pid, log)

        # A second daemon with the same pid file fails before detaching.
        r = subprocess.run([hellodtest.HELLOD, "-c", conf],
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 1, (r, read(errlog)))
        self.assertIn("another hellod is running (pid %d, pid file %s is "
                      "locked)" % (pid, pidfile), read(errlog))
        self.assertEqual(read(pidfile), "%d\n" % pid)
        self.assertTrue(answers(port))

        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not hellodtest.proc_alive(pid), 10.0,
                 what="the daemon to exit")
        wait_for(lambda: not os.path.exists(pidfile), 5.0,
                 what="the pid file to be removed")
        self.assertIn("%d#master: exiting" % pid, read(errlog))
        self.assertTrue(refuses(port))


    def test_daemon_relative_config_reload_and_upgrade(self):
        """Started as `cd DIR && hellod -c hellod.conf`, the daemon (whose
        working directory is then "/") reads the same file again on
        SIGHUP and hands it to the new image on SIGUSR2."""
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        port = hellodtest.free_port()
        pidfile = os.path.join(d.name, "hellod.pid")
        errlog = os.path.join(d.name, "error.log")
        with open(os.path.join(d.name, "hellod.conf"), "w") as f:
            f.write("[server]\nlisten = %s:%d\nworkers = 2\npid_file = %s\n"
                    "shutdown_timeout = 5s\n%s[log]\nerror_log = %s\n"
                    % (HOST, port, pidfile, hellodtest.default_user(),
                       errlog))
        r = subprocess.run([os.path.abspath(hellodtest.HELLOD), "-c",
                            "hellod.conf"], cwd=d.name,
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=10)
        self.assertEqual(r.returncode, 0, r.stderr)
        pid = int(wait_for(lambda: os.path.exists(pidfile) and read(pidfile),
                           5.0, what="the pid file"))

        def cleanup():
            if hellodtest.proc_alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.addCleanup(cleanup)
        self.assertEqual(os.readlink("/proc/%d/cwd" % pid), "/")

        def serving(generation):
            def up():
                log = read(errlog)
                if re.search(r"(reload|upgrade) failed", log):
                    raise AssertionError(log)
                return len(re.findall(r"serving \(generation %d,"
                                      % generation, log)) == 2
            try:
                wait_for(up, 10.0, what="generation %d to serve"
                         % generation)
            except AssertionError as e:
                raise AssertionError("%s\n%s" % (e, read(errlog)))
        serving(1)
        old = hellodtest.child_pids(pid)
        self.assertEqual(len(old), 2)

        os.kill(pid, signal.SIGHUP)
        serving(2)
        self.assertIn("reloaded: generation 2, 2 workers", read(errlog))
        self.assertNotIn("reload failed", read(errlog))
        wait_for(lambda: not any(hellodtest.proc_alive(p) for p in old),
                 10.0, what="generation 1 to exit")
        self.assertTrue(answers(port))

        old = hellodtest.child_pids(pid)
        os.kill(pid, signal.SIGUSR2)
        serving(3)
        self.assertIn("upgraded in place from generation 2", read(errlog))
        self.assertNotIn("upgrade failed", read(errlog))
        wait_for(lambda: not any(hellodtest.proc_alive(p) for p in old),
                 10.0, what="generation 2 to exit")
        self.assertTrue(hellodtest.proc_alive(pid))
        self.assertEqual(read(pidfile), "%d\n" % pid)
        self.assertTrue(answers(port))

        # The upgraded image reloads the same file too.
        os.kill(pid, signal.SIGHUP)
        serving(4)
        self.assertIn("reloaded: generation 4, 2 workers", read(errlog))

        os.kill(pid, signal.SIGTERM)
        wait_for(lambda: not hellodtest.proc_alive(pid), 10.0,
                 what="the daemon to exit")
        wait_for(lambda: not os.path.exists(pidfile), 5.0,
                 what="the pid file to be removed")
        self.assertIn("%d#master: exiting" % pid, read(errlog))


class ReopenLogs(unittest.TestCase):

    def test_sigusr1_reopens_async(self):
        self.reopen("workers = 2\n", 2)

    def test_sigusr1_reopens_sync(self):
        self.reopen("mode = sync\n", 1)

    def reopen(self, server_conf, nworkers):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        err = os.path.join(d.name, "error.log")
        acc = os.path.join(d.name, "access.log")
        conf = ("%s[log]\nerror_log = %s\naccess_log = %s\n"
                "level = debug\n" % (server_conf, err, acc))
        with start_hellod(conf) as h:
            wait_for(lambda: len(re.findall(r"serving \(generation 1,",
                                            read(err))) == nworkers, 5.0,
                     what="the workers to serve")
            wait_for(lambda: count_lines(acc) >= 1, 5.0,
                     what="an access log line")
            os.rename(err, err + ".1")
            os.rename(acc, acc + ".1")
            h.kill(signal.SIGUSR1)

            def new_access_line():
                self.assertTrue(answers(h.port))
                return count_lines(acc) >= 1
            wait_for(new_access_line, 5.0, interval=0.05,
                     what="a line in the new access log")
            old_acc = count_lines(acc + ".1")
            new_acc = count_lines(acc)
            for _ in range(50):
                self.assertTrue(answers(h.port))
            self.assertEqual(count_lines(acc), new_acc + 50)
            self.assertEqual(count_lines(acc + ".1"), old_acc)
            self.assertIn("reopening log files", read(err + ".1"))

            # Master and workers write to the new error log: a reload
            # makes the old workers log (at debug) as they drain.
            old = h.worker_pids()
            h.kill(signal.SIGHUP)

            def new_error_lines():
                if not os.path.exists(err):
                    return False
                log = read(err)
                return "#master: reloaded: generation 2" in log and all(
                    re.search(r"%d#worker \d: worker \d exiting" % p, log)
                    for p in old)
            wait_for(new_error_lines, 10.0,
                     what="old workers' lines in the new error log")
            old_err = read(err + ".1")
            self.assertNotIn("reloading configuration", old_err)
            self.assertNotIn("exiting", old_err)
            self.assertEqual(h.stop(), 0, read(err))
            self.assertIn("#master: exiting", read(err))


class FatalWorker(unittest.TestCase):

    def test_worker_cannot_start(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        acc = os.path.join(d.name, "no-such-dir", "access.log")
        with Hellod("workers = 2\n[log]\naccess_log = %s\n" % acc,
                    ready=False) as h:
            try:
                rc = h.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.fail("hellod kept running:\n" + h.log())
            log = h.log()
            self.assertEqual(rc, 1, log)
            self.assertRegex(log, r"#master: worker \d \(pid \d+\) cannot "
                             r"start with this configuration")
            self.assertNotIn("respawning", log)
            self.assertTrue(refuses(h.port))


if __name__ == "__main__":
    hellodtest.main()
