"""Dropping root in the workers: user = nobody gives workers nobody's
and nogroup's ids (real, effective, saved, fs) and only that group; the
master stays root; started as root with no user, workers run as nobody
and nogroup; user = root keeps root on purpose."""

import grp
import signal
import os
import pwd
import subprocess
import tempfile
import unittest

import hellodtest
from hellodtest import start_hellod, wait_for


def ids(pid):
    st = hellodtest.proc_status(pid)
    return ([int(x) for x in st["Uid"]], [int(x) for x in st["Gid"]],
            sorted(int(x) for x in st["Groups"]))


@unittest.skipUnless(os.geteuid() == 0,
                     "needs root: privilege dropping only happens when "
                     "hellod is started as root")
class Privileges(unittest.TestCase):

    def setUp(self):
        try:
            self.user = pwd.getpwnam("nobody")
        except KeyError:
            self.skipTest("no user 'nobody' on this system")
        self.group = grp.getgrgid(self.user.pw_gid)

    def test_workers_drop_to_nobody(self):
        with start_hellod("user = nobody\nworkers = 2\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            workers = wait_for(lambda: len(h.worker_pids()) == 2 and
                               h.worker_pids(), 5.0, what="2 workers")
            uid, gid = self.user.pw_uid, self.group.gr_gid
            for pid in workers:
                u, g, groups = ids(pid)
                self.assertEqual(u, [uid] * 4, "worker %d Uid" % pid)
                self.assertEqual(g, [gid] * 4, "worker %d Gid" % pid)
                self.assertEqual(groups, [gid], "worker %d Groups" % pid)
            u, g, _ = ids(h.proc.pid)
            self.assertEqual(u, [0] * 4)
            self.assertEqual(g[:2], [0, 0])
            self.assertEqual(h.stop(), 0, h.log())

    def test_workers_stop_when_the_master_dies(self):
        # The parent-death signal survives the drop to nobody: a master
        # killed outright leaves no orphan workers behind.
        with start_hellod("user = nobody\nworkers = 2\n") as h:
            hellodtest.generation_serving(h, 1, 2)
            workers = wait_for(lambda: len(h.worker_pids()) == 2 and
                               h.worker_pids(), 5.0, what="2 workers")
            h.kill(signal.SIGKILL)
            h.proc.wait(5)
            wait_for(lambda: not any(hellodtest.proc_alive(p)
                                     for p in workers), 5.0,
                     what="the workers to stop")

    def test_explicit_group(self):
        # group = overrides the user's primary group.
        other = None
        for name in ("daemon", "users", "nogroup", "staff"):
            try:
                g = grp.getgrnam(name)
            except KeyError:
                continue
            if g.gr_gid not in (0, self.user.pw_gid):
                other = g
                break
        if other is None:
            self.skipTest("no second unprivileged group found")
        with start_hellod("user = nobody\ngroup = %s\nworkers = 1\n"
                          % other.gr_name) as h:
            hellodtest.generation_serving(h, 1, 1)
            [pid] = wait_for(lambda: len(h.worker_pids()) == 1 and
                             h.worker_pids(), 5.0, what="1 worker")
            u, g, groups = ids(pid)
            self.assertEqual(u, [self.user.pw_uid] * 4)
            self.assertEqual(g, [other.gr_gid] * 4)
            self.assertEqual(groups, [other.gr_gid])
            self.assertEqual(h.stop(), 0, h.log())

    def run_t(self, server_conf):
        with tempfile.TemporaryDirectory(prefix="hellod-test-") as d:
            conf = os.path.join(d, "hellod.conf")
            with open(conf, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:%d\n%s"
                        % (hellodtest.free_port(), server_conf))
            r = subprocess.run([hellodtest.HELLOD, "-t", "-c", conf],
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, timeout=10)
            r.conf = conf.encode()
            return r

    def test_root_without_user_is_valid(self):
        r = self.run_t("")
        self.assertEqual((r.returncode, r.stdout), (0, b"configuration OK: %s\n" % r.conf),
                         r)
        r = self.run_t("user = nobody\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"configuration OK: %s\n" % r.conf),
                         r)
        r = self.run_t("user = root\n")
        self.assertEqual((r.returncode, r.stdout), (0, b"configuration OK: %s\n" % r.conf),
                         r)
        r = self.run_t("user = no-such-user-hellod\n")
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(b"unknown user", r.stderr)

    def test_sync_foreground_as_root_runs_workers_as_nobody(self):
        # The mission's own example, typed as root: no user configured,
        # so the worker drops to nobody and nogroup, as nginx does.
        try:
            gid = grp.getgrnam("nogroup").gr_gid
        except KeyError:
            gid = self.user.pw_gid
        with tempfile.TemporaryDirectory(prefix="hellod-test-") as d:
            conf = os.path.join(d, "hellod.conf")
            port = hellodtest.free_port()
            with open(conf, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:%d\n" % port)
            log = open(os.path.join(d, "log"), "wb+")
            p = subprocess.Popen([hellodtest.HELLOD, "--sync", "--foreground",
                                  "-c", conf], stdout=log,
                                 stderr=subprocess.STDOUT)
            try:
                def up():
                    try:
                        return hellodtest.answers(port)
                    except OSError:
                        return False
                wait_for(up, 10.0, what="hellod to answer")
                r = hellodtest.get(port=port)
                self.assertEqual(r.status, 200)
                self.assertEqual(r.body, hellodtest.greeting("127.0.0.1"))
                kids = wait_for(lambda: hellodtest.child_pids(p.pid), 5.0,
                                what="the worker")
                self.assertEqual(len(kids), 1, kids)
                u, g, groups = ids(kids[0])
                self.assertEqual(u, [self.user.pw_uid] * 4)
                self.assertEqual(g, [gid] * 4)
                self.assertEqual(groups, [gid])
                self.assertEqual(ids(p.pid)[0], [0] * 4)
                p.terminate()
                self.assertEqual(p.wait(15), 0)
                log.seek(0)
                text = log.read().decode()
                self.assertIn("started as root without [server] user: "
                              "workers run as nobody:nogroup", text)
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                log.close()


if __name__ == "__main__":
    hellodtest.main()
