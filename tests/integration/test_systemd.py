"""systemd integration: the sd_notify readiness protocol and socket
activation (systemd-socket-activate)."""

import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import unittest

import hellodtest
from hellodtest import Hellod, get, wait_for

HOST = "127.0.0.1"
GREETING = hellodtest.greeting(HOST)


answers = hellodtest.answers
refuses = hellodtest.refuses


def mono_usec():
    return int(time.clock_gettime(time.CLOCK_MONOTONIC) * 1e6)


class Notify(unittest.TestCase):

    def setUp(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        self.path = os.path.join(d.name, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(self.sock.close)
        self.sock.bind(self.path)

    def next_message(self, timeout=10.0):
        """The next datagram as a dict of its KEY=VALUE lines."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(4096)
        except socket.timeout:
            self.fail("no notification within %.0fs" % timeout)
        fields = {}
        for line in data.decode().split("\n"):
            if line:
                k, _, v = line.partition("=")
                fields[k] = v
        return fields

    def no_more_messages(self):
        self.sock.setblocking(False)
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return
        finally:
            self.sock.setblocking(True)
        self.fail("unexpected notification %r" % data)

    def test_notify_sequence(self):
        with Hellod("workers = 2\nshutdown_timeout = 5s\n",
                    env={"NOTIFY_SOCKET": self.path}, ready=False) as h:
            m = self.next_message()
            self.assertEqual(m.get("READY"), "1", m)
            self.assertIn("STATUS", m)
            self.assertTrue(answers(h.port))
            hellodtest.generation_serving(h, 1, 2)
            self.no_more_messages()

            # A reload: RELOADING=1 with the time it began, then READY=1
            # once the new generation serves.
            before = mono_usec()
            h.kill(signal.SIGHUP)
            m = self.next_message()
            after = mono_usec()
            self.assertEqual(m.get("RELOADING"), "1", m)
            self.assertIn("MONOTONIC_USEC", m)
            usec = int(m["MONOTONIC_USEC"])
            self.assertTrue(before <= usec <= after,
                            (before, usec, after))
            m = self.next_message()
            self.assertEqual(m.get("READY"), "1", m)
            h.wait_log(r"reloaded: generation 2")
            self.assertTrue(answers(h.port))

            # A failed reload also ends with READY=1.
            with open(h.conf_path, "a") as f:
                f.write("bogus_key = 1\n")
            h.kill(signal.SIGHUP)
            m = self.next_message()
            self.assertEqual(m.get("RELOADING"), "1", m)
            m = self.next_message()
            self.assertEqual(m.get("READY"), "1", m)
            h.wait_log(r"reload failed, keeping the running configuration")
            self.assertTrue(answers(h.port))

            h.kill(signal.SIGTERM)
            m = self.next_message()
            self.assertEqual(m.get("STOPPING"), "1", m)
            self.assertEqual(h.wait_exit(), 0, h.log())
            self.no_more_messages()


    def test_upgrade_notifies(self):
        # SIGUSR2: RELOADING=1, then READY=1 from the new image, under
        # the same pid (systemd's MAINPID stays right).
        with Hellod("workers = 2\nshutdown_timeout = 5s\n",
                    env={"NOTIFY_SOCKET": self.path}, ready=False) as h:
            m = self.next_message()
            self.assertEqual(m.get("READY"), "1", m)
            hellodtest.generation_serving(h, 1, 2)
            pid = h.proc.pid
            h.kill(signal.SIGUSR2)
            m = self.next_message()
            self.assertEqual(m.get("RELOADING"), "1", m)
            m = self.next_message()
            self.assertEqual(m.get("READY"), "1", m)
            self.assertIn("generation 2", m.get("STATUS", ""), m)
            hellodtest.generation_serving(h, 2, 2)
            self.assertEqual(h.proc.pid, pid)
            self.assertIsNone(h.proc.poll())
            self.assertTrue(answers(h.port))
            h.kill(signal.SIGTERM)
            m = self.next_message()
            self.assertEqual(m.get("STOPPING"), "1", m)
            self.assertEqual(h.wait_exit(), 0, h.log())


class SocketActivation(unittest.TestCase):

    def activate(self, tool, tmpdir, listen, conf):
        """Starts hellod under systemd-socket-activate -l listen; returns
        the process and a function reading its log."""
        logpath = os.path.join(tmpdir, "log")
        logf = open(logpath, "wb")
        self.addCleanup(logf.close)
        # systemd-socket-activate listens, waits for a first connection,
        # then execs hellod in its own process (so LISTEN_PID matches).
        proc = subprocess.Popen(
            [tool, "-l", listen, hellodtest.HELLOD, "--foreground", "-c",
             conf], stdout=logf, stderr=subprocess.STDOUT)

        def cleanup():
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        self.addCleanup(cleanup)

        def log():
            with open(logpath, "rb") as f:
                return f.read().decode("utf-8", "replace")
        wait_for(lambda: "Listening on" in log() or proc.poll() is not None,
                 10.0, what="systemd-socket-activate to listen")
        return proc, log

    def test_passed_listener(self):
        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            self.skipTest("systemd-socket-activate is not installed "
                          "(package systemd)")
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        port = hellodtest.free_port()
        file_port = hellodtest.free_port()
        conf = os.path.join(d.name, "hellod.conf")
        with open(conf, "w") as f:
            # The file's address is ignored when listeners are passed.
            f.write("[server]\nlisten = %s:%d\nworkers = 2\n"
                    "shutdown_timeout = 5s\n%s"
                    % (HOST, file_port, hellodtest.default_user()))
        proc, log = self.activate(tool, d.name, "%s:%d" % (HOST, port), conf)
        self.assertIsNone(proc.poll(), log())

        self.assertTrue(answers(port, timeout=10.0), log())
        wait_for(lambda: len(re.findall(r"serving \(generation 1, async, "
                                        r"1 listener\)", log())) == 2,
                 5.0, what="both workers to serve")
        self.assertIn("using 1 listener passed by the service manager",
                      log())
        self.assertTrue(refuses(file_port))
        for _ in range(20):
            self.assertTrue(answers(port))

        # A reload keeps the passed listener.
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "reloaded: generation 2" in log() and
                 len(re.findall(r"serving \(generation 2,", log())) == 2,
                 10.0, what="the reload")
        for _ in range(20):
            self.assertTrue(answers(port))
        self.assertTrue(refuses(file_port))

        # So does an upgrade in place: the new image inherits it.
        proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: "upgraded in place from generation 2" in log() and
                 len(re.findall(r"serving \(generation 3, async, "
                                r"1 listener\)", log())) == 2,
                 10.0, what="the upgrade")
        for _ in range(20):
            self.assertTrue(answers(port))
        self.assertTrue(refuses(file_port))

        proc.send_signal(signal.SIGTERM)
        try:
            rc = proc.wait(15)
        except subprocess.TimeoutExpired:
            self.fail("hellod did not stop:\n" + log())
        self.assertEqual(rc, 0, log())
        self.assertIn("#master: exiting", log())


    def test_case29_ipv4_mapped_peer_printed_as_ipv4(self):
        # A dual-stack socket (systemd's ListenStream=PORT) accepts IPv4
        # clients as ::ffff:a.b.c.d; the greeting prints a.b.c.d.
        tool = shutil.which("systemd-socket-activate")
        if tool is None:
            self.skipTest("systemd-socket-activate is not installed "
                          "(package systemd)")
        if not hellodtest.ipv6_loopback():
            self.skipTest("no IPv6 loopback")
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        port = hellodtest.free_port()
        conf = os.path.join(d.name, "hellod.conf")
        with open(conf, "w") as f:
            f.write("[server]\nworkers = 1\n%s" % hellodtest.default_user())
        proc, log = self.activate(tool, d.name, str(port), conf)
        self.assertIn("[::]:%d" % port, log())
        r = get(HOST, port, timeout=10.0)
        self.assertEqual(r.body, GREETING, log())
        r = get("::1", port)
        self.assertEqual(r.body, hellodtest.greeting("::1"))
        proc.send_signal(signal.SIGTERM)
        self.assertEqual(proc.wait(15), 0, log())


if __name__ == "__main__":
    hellodtest.main()
