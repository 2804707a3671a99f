"""In-place upgrade (SIGUSR2): the master executes the file at its path
again under the same pid, keeps every socket and the pid file, starts a
new generation and retires the old one, with no client noticing; a
missing or broken file or a refused configuration leaves everything
running, and a new image that cannot start hands back to the previous
one, which runs again with the configuration it had."""

import os
import shutil
import signal
import socket
import tempfile
import unittest

import hellodtest
from hellodtest import Hellod, wait_for


class Upgrade(unittest.TestCase):

    def setUp(self):
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        self.dir = d.name
        # The master runs from a copy, so that the test can replace it.
        self.exe = os.path.join(self.dir, "hellod")
        shutil.copy2(hellodtest.HELLOD, self.exe)
        self.pid_file = os.path.join(self.dir, "hellod.pid")

    def start(self, conf=""):
        """hellod started from the copy, serving generation 1."""
        saved = hellodtest.HELLOD
        hellodtest.HELLOD = self.exe
        try:
            h = Hellod("workers = 2\npid_file = %s\nshutdown_timeout = 5s\n"
                       "%s" % (self.pid_file, conf))
        finally:
            hellodtest.HELLOD = saved
        self.addCleanup(h.close)
        hellodtest.generation_serving(h, 1, 2)
        return h

    def replace_exe(self, data=None):
        """Installs a new file at the master's path, as a package
        upgrade does (a new inode renamed over the old one)."""
        tmp = self.exe + ".new"
        if data is None:
            shutil.copy2(hellodtest.HELLOD, tmp)
        else:
            with open(tmp, "wb") as f:
                f.write(data)
            os.chmod(tmp, 0o755)
        os.rename(tmp, self.exe)

    def under_load(self, h, action):
        """action() while 20 clients keep requesting; none of their
        requests may fail, and they are served after it."""
        load = hellodtest.LoadGenerator("127.0.0.1", h.port,
                                        clients=20).start()
        try:
            wait_for(lambda: load.ok > 200, 10.0, what="load to run")
            action()
            before = load.ok
            wait_for(lambda: load.ok > before + 200, 10.0,
                     what="load after the upgrade")
        finally:
            load.stop()
        self.assertEqual(load.failures, 0, load.summary())

    def upgrade(self, h, old):
        """A new file at the path, SIGUSR2, generation 2 serving and the
        old workers gone."""
        self.replace_exe()
        # The running image's file is gone from the path.
        self.assertTrue(self.exe_of(h.proc.pid).endswith("(deleted)"))
        h.kill(signal.SIGUSR2)
        h.wait_log(r"upgrade: executing ", 10.0)
        hellodtest.generation_serving(h, 2, 2)
        wait_for(lambda: all(not hellodtest.proc_alive(p) for p in old),
                 10.0, what="the old workers to exit")

    def exe_of(self, pid):
        return os.readlink("/proc/%d/exe" % pid)

    def test_upgrade_keeps_pid_sockets_and_clients(self):
        h = self.start()
        pid = h.proc.pid
        old = h.worker_pids()
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read()), pid)
        self.assertFalse(self.exe_of(pid).endswith("(deleted)"))

        self.under_load(h, lambda: self.upgrade(h, old))
        # Same process, the new file, the same pid file.
        self.assertIsNone(h.proc.poll())
        self.assertEqual(h.proc.pid, pid)
        self.assertFalse(self.exe_of(pid).endswith("(deleted)"))
        self.assertEqual(os.stat(self.exe_of(pid)).st_ino,
                         os.stat(self.exe).st_ino)
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read()), pid)
        new = h.worker_pids()
        self.assertEqual(len(new), 2)
        self.assertFalse(set(new) & set(old))
        self.assertIn("upgraded in place from generation 1", h.log())

        # A second upgrade goes on from generation 2.
        self.replace_exe()
        h.kill(signal.SIGUSR2)
        hellodtest.generation_serving(h, 3, 2)
        self.assertTrue(hellodtest.answers(h.port))
        self.assertEqual(h.stop(), 0, h.log())
        self.assertFalse(os.path.exists(self.pid_file))

    def test_upgrade_uring_under_load(self):
        h = self.start("mode = uring\n")
        old = h.worker_pids()
        self.under_load(h, lambda: self.upgrade(h, old))
        self.assertRegex(h.log(), r"worker \d+ serving \(generation 2, "
                         r"uring, ")
        self.assertEqual(h.stop(), 0, h.log())

    def assert_upgrade_refused(self, h, why):
        pid = h.proc.pid
        old = h.worker_pids()
        n = h.log().count("upgrade failed, keeping the running executable")
        h.kill(signal.SIGUSR2)
        h.wait_log("upgrade failed, keeping the running executable",
                   10.0, count=n + 1)
        self.assertRegex(h.log(), why)
        self.assertIsNone(h.proc.poll())
        self.assertEqual(h.proc.pid, pid)
        self.assertEqual(sorted(h.worker_pids()), sorted(old))
        self.assertTrue(hellodtest.answers(h.port))
        self.assertNotIn("generation 2", h.log())

    def test_missing_file_keeps_serving(self):
        h = self.start()
        os.unlink(self.exe)
        self.assert_upgrade_refused(h, r"No such file or directory")
        self.assertEqual(h.stop(), 0, h.log())

    def test_broken_file_keeps_serving(self):
        h = self.start()
        self.replace_exe(b"\x7fELF this is not a program\n")
        self.assert_upgrade_refused(h, r"--test-config failed")
        self.replace_exe(b"#!/bin/sh\nexit 3\n")
        self.assert_upgrade_refused(h, r"--test-config failed")
        self.assertEqual(h.stop(), 0, h.log())

    def test_bad_configuration_keeps_serving(self):
        h = self.start()
        with open(h.conf_path, "a") as f:
            f.write("\n[http]\nkeepalive_timeout = soon\n")
        self.replace_exe()
        self.assert_upgrade_refused(h, r"keepalive_timeout: invalid "
                                       r"duration 'soon'")
        self.assertEqual(h.stop(), 0, h.log())

    def assert_previous_runs_again(self, h, pid, old, why, generation):
        """After a new image failed to start: the previous one runs again
        under the same pid with the configuration it had, and its old
        workers are replaced by a new generation."""
        h.wait_log(r"upgrade failed: the new executable did not start "
                   r"\(%s\); the previous executable runs again" % why,
                   10.0)
        hellodtest.generation_serving(h, generation, 2)
        wait_for(lambda: all(not hellodtest.proc_alive(p) for p in old),
                 10.0, what="the old workers to exit")
        self.assertIsNone(h.proc.poll())
        self.assertEqual(h.proc.pid, pid)
        # The running image is the previous file, replaced on disk.
        self.assertTrue(self.exe_of(pid).endswith("(deleted)"))
        with open(self.pid_file) as f:
            self.assertEqual(int(f.read()), pid)
        self.assertEqual(len(h.worker_pids()), 2)
        self.assertTrue(hellodtest.answers(h.port))

    def test_new_image_that_cannot_bind_hands_back(self):
        # What --test-config cannot see: an added address that is in use.
        busy = socket.socket()
        self.addCleanup(busy.close)
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        h = self.start()
        pid = h.proc.pid
        old = h.worker_pids()
        with open(h.conf_path) as f:
            good = f.read()
        with open(h.conf_path, "a") as f:
            f.write("\n[server]\nlisten = 127.0.0.1:%d\n" % port)

        def upgrade():
            self.replace_exe()
            h.kill(signal.SIGUSR2)
            self.assert_previous_runs_again(h, pid, old,
                                            "cannot open the listeners", 2)
        self.under_load(h, upgrade)
        log = h.log()
        self.assertRegex(log, r"bind\(\) to 127\.0\.0\.1:%d failed "
                              r"\(98: Address already in use\)" % port)
        # The configuration it had: one address, not the added one.
        self.assertRegex(log, r"worker \d+ serving \(generation 2, async, "
                              r"1 listener\)")
        self.assertNotIn("generation 2, async, 2 listeners", log)

        # With the configuration mended, the same file upgrades.
        with open(h.conf_path, "w") as f:
            f.write(good)
        h.kill(signal.SIGUSR2)
        hellodtest.generation_serving(h, 3, 2)
        self.assertEqual(h.proc.pid, pid)
        self.assertFalse(self.exe_of(pid).endswith("(deleted)"))
        self.assertEqual(os.stat(self.exe_of(pid)).st_ino,
                         os.stat(self.exe).st_ino)
        self.assertTrue(hellodtest.answers(h.port))
        self.assertEqual(h.stop(), 0, h.log())
        self.assertFalse(os.path.exists(self.pid_file))

    def test_new_image_refusing_its_arguments_hands_back(self):
        # A failure before the new image has opened its log: a version
        # that passes --test-config but refuses the running command line.
        h = self.start()
        pid = h.proc.pid
        old = h.worker_pids()
        real = os.path.abspath(hellodtest.HELLOD)
        self.replace_exe((
            "#!/bin/sh\n"
            "case \" $* \" in *' --test-config '*) exec %s \"$@\";; esac\n"
            "exec %s --no-such-option \"$@\"\n" % (real, real)).encode())
        h.kill(signal.SIGUSR2)
        self.assert_previous_runs_again(h, pid, old,
                                        "it refused the command line", 2)
        self.assertIn("unrecognized option '--no-such-option'", h.log())
        self.assertEqual(h.stop(), 0, h.log())
        self.assertFalse(os.path.exists(self.pid_file))

    def test_workers_ignore_usr2(self):
        # systemctl kill without --kill-whom=main signals every process
        # of the unit: the workers must not die of it.
        h = self.start()
        workers = h.worker_pids()
        for p in workers:
            ignored = int(hellodtest.proc_status(p)["SigIgn"][0], 16)
            self.assertTrue(ignored & (1 << (signal.SIGUSR2 - 1)),
                            "worker %d does not ignore SIGUSR2" % p)
            os.kill(p, signal.SIGUSR2)
        self.assertEqual(sorted(h.worker_pids()), sorted(workers))
        self.assertTrue(hellodtest.answers(h.port))
        self.assertEqual(h.stop(), 0, h.log())


if __name__ == "__main__":
    hellodtest.main()
