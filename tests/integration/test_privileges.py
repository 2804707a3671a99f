"""Dropping root in the workers: user = nobody gives workers nobody's
and nogroup's ids (real, effective, saved, fs) and only that group; the
master stays root; started as root with no user, workers run as nobody
and nogroup; user = root keeps root on purpose.  Workers and the status
server hold no capability and have no_new_privs set, however the master
was started: as root, as nobody with an ambient CAP_NET_BIND_SERVICE
(the packaged unit's model) on a port below 1024, or as nobody with no
capability."""

import contextlib
import grp
import random
import re
import shutil
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


CAP_NET_BIND_SERVICE = 1 << 10


def caps(pid):
    """The capability sets of a process, as numbers, and NoNewPrivs."""
    st = hellodtest.proc_status(pid)
    sets = {k: int(st[k][0], 16)
            for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")}
    return sets, int(st["NoNewPrivs"][0])


def low_port():
    """A free port below 1024."""
    for port in random.sample(range(600, 1000), 100):
        if hellodtest.port_free(port):
            return port
    raise unittest.SkipTest("no free port below 1024")


@unittest.skipUnless(os.geteuid() == 0,
                     "needs root to start hellod as another user")
@unittest.skipUnless(shutil.which("setpriv"),
                     "needs setpriv (Debian util-linux)")
class Capabilities(unittest.TestCase):

    @contextlib.contextmanager
    def hellod(self, port, wrapper=(), server=""):
        """hellod with 2 workers and a status server, started through
        wrapper; yields (master pid, the pids of its 3 children)."""
        status_port = hellodtest.free_port()
        with tempfile.TemporaryDirectory(prefix="hellod-test-") as d:
            os.chmod(d, 0o755)  # readable by nobody
            conf = os.path.join(d, "hellod.conf")
            with open(conf, "w") as f:
                f.write("[server]\nlisten = 127.0.0.1:%d\nworkers = 2\n%s"
                        "[status]\nlisten = 127.0.0.1:%d\n"
                        % (port, server, status_port))
            os.chmod(conf, 0o644)
            log = open(os.path.join(d, "log"), "wb+")
            p = subprocess.Popen(list(wrapper) + [hellodtest.HELLOD,
                                 "--foreground", "-c", conf],
                                 stdout=log, stderr=subprocess.STDOUT)

            def text():
                log.seek(0)
                return log.read().decode("utf-8", "replace")
            try:
                def up():
                    if p.poll() is not None:
                        raise AssertionError("hellod exited %d:\n%s"
                                             % (p.returncode, text()))
                    # Each child logs that it serves once it has dropped;
                    # one answer does not say that both workers did.
                    t = text()
                    return (len(re.findall(r"worker \d+ serving "
                                           r"\(generation 1,", t)) == 2 and
                            "status server on" in t and
                            len(hellodtest.child_pids(p.pid)) == 3)
                wait_for(up, 10.0, what="hellod to answer")
                yield p.pid, hellodtest.child_pids(p.pid)
                p.terminate()
                self.assertEqual(p.wait(15), 0, text())
            finally:
                if p.poll() is None:
                    p.kill()
                    p.wait()
                log.close()

    def assert_no_capabilities(self, pids, bounding=None):
        for pid in pids:
            sets, nnp = caps(pid)
            for k in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
                self.assertEqual(sets[k], 0, "child %d %s %x"
                                 % (pid, k, sets[k]))
            self.assertEqual(nnp, 1, "child %d NoNewPrivs" % pid)
            if bounding is not None:
                self.assertEqual(sets["CapBnd"], bounding,
                                 "child %d CapBnd" % pid)

    def test_ambient_net_bind_service(self):
        # The packaged unit's model: not root, CAP_NET_BIND_SERVICE as an
        # ambient capability, a port below 1024.
        port = low_port()
        with self.hellod(port, ["setpriv", "--reuid=nobody",
                                "--regid=nogroup", "--clear-groups",
                                "--inh-caps=+net_bind_service",
                                "--ambient-caps=+net_bind_service"]) \
                as (master, kids):
            sets, _ = caps(master)
            self.assertEqual(sets["CapAmb"], CAP_NET_BIND_SERVICE)
            self.assertEqual(sets["CapEff"], CAP_NET_BIND_SERVICE)
            self.assertEqual(hellodtest.get(port=port).status, 200)
            self.assert_no_capabilities(kids)

    def test_not_root_without_capabilities(self):
        with self.hellod(hellodtest.free_port(),
                         ["setpriv", "--reuid=nobody", "--regid=nogroup",
                          "--clear-groups"]) as (master, kids):
            self.assert_no_capabilities(kids)

    def test_root(self):
        # Started as root, children can also empty their bounding set.
        with self.hellod(low_port(), server="user = nobody\n") \
                as (master, kids):
            self.assertNotEqual(caps(master)[0]["CapEff"], 0)
            self.assert_no_capabilities(kids, bounding=0)

    def test_root_keeping_root(self):
        # user = root keeps uid 0, not its capabilities.
        with self.hellod(low_port(), server="user = root\n") \
                as (master, kids):
            self.assert_no_capabilities(kids, bounding=0)
            for pid in kids:
                self.assertEqual(ids(pid)[0], [0] * 4)


if __name__ == "__main__":
    hellodtest.main()
