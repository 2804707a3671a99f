"""The counters in shared memory against their own children and across
builds.

Sealed: a worker running as nobody holds no descriptor on the counters'
memfd (so nothing to ftruncate()), cannot open the master's through
/proc/MASTER/fd/N (for writing, when both run as nobody), and maps the master area read-only from a read-only
descriptor: gdb, attached to the worker, finds mprotect() refused with
EACCES and cannot write there through ptrace either; its own slot is its
only writable page, and mremap() or remap_file_pages() cannot stretch or
move that mapping over other pages (EPERM).  The status server maps everything read-only.  The
master goes on serving and counting.  (Needs root and gdb.)

LayoutUpgrade: an upgrade in place (SIGUSR2) to a build whose counters
are laid out otherwise (tests/hellod-altlayout, built by make check with
-DHELLOD_STATS_LAYOUT_TEST) logs a warning and starts the counters
afresh instead of misreading them; they count on from zero, the master
keeps its pid and serves; back to the first build, the same again; and
an upgrade to a build of the same layout keeps every figure."""

import os
import re
import shutil
import signal
import subprocess
import tempfile
import unittest

import hellodtest
from hellodtest import Hellod, wait_for

MEMFD = "/memfd:hellod-stats"
EACCES = 13
EPERM = 1


def memfds(pid):
    """Descriptor numbers of pid open on the counters' memfd."""
    out = []
    d = "/proc/%d/fd" % pid
    for name in os.listdir(d):
        try:
            if os.readlink(os.path.join(d, name)).startswith(MEMFD):
                out.append(int(name))
        except FileNotFoundError:
            pass
    return sorted(out)


def region_maps(pid):
    """(start, end, perms, offset) of pid's mappings of the memfd."""
    out = []
    with open("/proc/%d/maps" % pid) as f:
        for line in f:
            if MEMFD[1:] not in line:
                continue
            f_ = line.split()
            lo, hi = (int(x, 16) for x in f_[0].split("-"))
            out.append((lo, hi, f_[1], int(f_[2], 16)))
    return out


def scrape(port):
    """/metrics as {series: value}."""
    r = hellodtest.get(port=port, path="/metrics")
    assert r.status == 200, r.raw[:200]
    out = {}
    for line in r.body.decode().splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def requests_200(port):
    return int(scrape(port)['hellod_http_requests_total{code="200"}'])


def gets(port, n):
    for _ in range(n):
        assert hellodtest.get(port=port).status == 200


class Base(unittest.TestCase):

    def start(self, conf="", exe=None, wrapper=(), user="user = nobody\n"):
        self.sport = hellodtest.free_port()
        port = hellodtest.free_port()
        saved = hellodtest.HELLOD
        if exe is not None:
            hellodtest.HELLOD = exe
        try:
            h = hellodtest.start_hellod(
                "listen = 127.0.0.1:%d\nworkers = 1\n%s"
                "shutdown_timeout = 5s\n%s[status]\nlisten = 127.0.0.1:%d\n"
                % (port, user, conf, self.sport), port=port, wrapper=wrapper)
        finally:
            hellodtest.HELLOD = saved
        self.addCleanup(h.close)
        hellodtest.generation_serving(h, 1, 1)
        wait_for(lambda: hellodtest.get(port=self.sport,
                                        path="/healthz").status == 200,
                 10.0, what="the status server")
        return h

    def children(self, h, n=2):
        return wait_for(lambda: len(h.worker_pids()) == n and
                        h.worker_pids(), 10.0, what="%d children" % n)

    def status_pid(self, h):
        """The status server's pid, by its log line."""
        m = re.findall(r"(\d+)#status: status server on", h.log())
        self.assertTrue(m, h.log())
        return int(m[-1])


@unittest.skipUnless(os.geteuid() == 0, "needs root: the workers must run "
                     "as another user than the master")
@unittest.skipUnless(shutil.which("gdb"), "needs gdb (Debian gdb)")
class Sealed(Base):

    def gdb(self, pid, *commands):
        """Runs commands in pid under gdb; returns the values printed, in
        order, and gdb's whole output."""
        args = ["gdb", "-nx", "-batch", "-p", str(pid)]
        for c in commands:
            args += ["-ex", c]
        r = subprocess.run(args, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        out = r.stdout.decode("utf-8", "replace")
        return [int(v) for v in re.findall(r"^\$\d+ = (-?\d+)$", out,
                                           re.M)], out

    def test_a_worker_cannot_touch_what_the_master_relies_on(self):
        # Started as root, the worker runs as nobody.
        self.check(self.start(), read_master_fd=False)

    def test_same_user_without_capabilities(self):
        # Started as nobody with no capability, master and worker share
        # a user: the worker may reach /proc/MASTER/fd/N, and can open
        # the region there for reading only.
        wrapper = ["sh", "-c", 'chmod 755 "${4%/*}" && exec setpriv '
                   "--reuid=nobody --regid=nogroup --clear-groups "
                   '"$@"', "sh"]
        self.check(self.start(wrapper=wrapper, user=""), read_master_fd=True)

    def check(self, h, read_master_fd):
        master = h.proc.pid
        status = self.status_pid(h)
        kids = self.children(h)
        [worker] = [p for p in kids if p != status]
        gets(h.port, 10)
        before = requests_200(self.sport)

        # The master holds the region (read-write, and read-only for its
        # children to map from); no child holds a descriptor on it, so
        # there is nothing to ftruncate() or to map again.
        self.assertEqual(memfds(worker), [])
        self.assertEqual(memfds(status), [])
        theirs = memfds(master)
        self.assertEqual(len(theirs), 2, theirs)

        # The worker: the master area read-only at offset 0, and one
        # page read-write, its own slot, further on.
        page = os.sysconf("SC_PAGE_SIZE")
        maps = region_maps(worker)
        ro = [m for m in maps if m[2] == "r--s"]
        rw = [m for m in maps if m[2] == "rw-s"]
        self.assertEqual(len(maps), 2, maps)
        self.assertEqual(len(ro), 1, maps)
        self.assertEqual(len(rw), 1, maps)
        self.assertEqual(ro[0][3], 0)
        self.assertEqual(rw[0][1] - rw[0][0], page)
        self.assertGreater(rw[0][3], 0)
        # The status server: everything, read-only.
        smaps = region_maps(status)
        self.assertEqual([m[2] for m in smaps], ["r--s"], smaps)

        lo, hi = ro[0][0], ro[0][1]
        errno = "*((int *(*)(void))__errno_location)()"
        values, out = self.gdb(
            worker,
            'print (int)open("/proc/%d/fd/%d", 0)' % (master, theirs[0]),
            "print " + errno,
            'print (int)open("/proc/%d/fd/%d", 2)' % (master, theirs[0]),
            "print " + errno,
            "print (int)mprotect(%d, %d, 3)" % (lo, hi - lo),
            "print " + errno,
            # Its own slot's mapping cannot be stretched over the next
            # slots, nor pointed at the master area.
            "print (long)mremap(%d, %d, %d, 1)" % (rw[0][0], page, 2 * page),
            "print " + errno,
            "print (long)mremap(%d, 0, %d, 1)" % (rw[0][0], 2 * page),
            "print " + errno,
            "print (int)remap_file_pages(%d, %d, 0, 0, 0)" % (rw[0][0], page),
            "print " + errno,
            "set {int}%d = 1" % lo,
            "print *(unsigned int *)%d" % lo)
        self.assertEqual(len(values), 13, out)
        if read_master_fd:
            self.assertGreaterEqual(values[0], 0, out)
        else:
            self.assertEqual(values[0:2], [-1, EACCES], out)
        self.assertEqual(values[2:4], [-1, EACCES], out)
        self.assertEqual(values[4:6], [-1, EACCES], out)
        self.assertEqual(values[6:12], [-1, EPERM] * 3, out)
        # ptrace cannot write it either: the mapping never was writable.
        self.assertIn("Cannot access memory at address", out)
        self.assertNotEqual(values[12], 1, out)
        self.assertEqual(region_maps(worker), maps)

        # The master is unharmed, serves, and counts on.
        self.assertTrue(hellodtest.proc_alive(master))
        self.assertTrue(hellodtest.proc_alive(worker))
        gets(h.port, 5)
        self.assertEqual(requests_200(self.sport), before + 5)
        self.assertEqual(h.worker_pids(), kids)
        self.assertEqual(h.stop(), 0, h.log())


class LayoutUpgrade(Base):

    def setUp(self):
        builddir = os.environ.get("BUILDDIR", ".")
        self.alt = os.path.join(builddir, "tests", "hellod-altlayout")
        if not os.access(self.alt, os.X_OK):
            self.skipTest("no %s: run through make check" % self.alt)
        d = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.addCleanup(d.cleanup)
        os.chmod(d.name, 0o755)
        self.exe = os.path.join(d.name, "hellod")
        shutil.copy2(hellodtest.HELLOD, self.exe)

    def upgrade_to(self, h, src, generation):
        tmp = self.exe + ".new"
        shutil.copy2(src, tmp)
        os.rename(tmp, self.exe)
        h.kill(signal.SIGUSR2)
        hellodtest.generation_serving(h, generation, 1)
        # The previous image's worker and status server drain and go.
        wait_for(lambda: len(h.worker_pids()) == 2, 15.0,
                 what="the old generation to leave")
        wait_for(lambda: hellodtest.get(port=self.sport,
                                        path="/healthz").status == 200,
                 10.0, what="the new status server")

    afresh = (r"\[warn\] \d+#master: statistics handed over by the "
              r"previous image do not fit this one \([a-z ]+\): counters "
              r"start afresh")

    def test_another_layout_starts_afresh(self):
        h = self.start(exe=self.exe)
        master = h.proc.pid
        gets(h.port, 30)
        first = requests_200(self.sport)
        self.assertGreaterEqual(first, 30)
        start = scrape(self.sport)["hellod_start_time_seconds"]

        # To the other layout: a warning, counters from zero.
        self.upgrade_to(h, self.alt, 2)
        self.assertEqual(len(re.findall(self.afresh, h.log())), 1, h.log())
        self.assertEqual(h.proc.pid, master)
        self.assertIsNone(h.proc.poll())
        self.assertEqual(requests_200(self.sport), 0)
        gets(h.port, 7)
        self.assertEqual(requests_200(self.sport), 7)
        m = scrape(self.sport)
        self.assertGreaterEqual(m["hellod_start_time_seconds"], start)
        self.assertEqual(m["hellod_config_generation"], 2)

        # Back: afresh again.
        self.upgrade_to(h, hellodtest.HELLOD, 3)
        self.assertEqual(len(re.findall(self.afresh, h.log())), 2, h.log())
        self.assertEqual(requests_200(self.sport), 0)
        gets(h.port, 4)
        self.assertEqual(requests_200(self.sport), 4)

        # The same layout: every figure kept.
        self.upgrade_to(h, hellodtest.HELLOD, 4)
        self.assertEqual(len(re.findall(self.afresh, h.log())), 2, h.log())
        self.assertEqual(requests_200(self.sport), 4)
        gets(h.port, 3)
        self.assertEqual(requests_200(self.sport), 7)
        self.assertEqual(h.proc.pid, master)
        self.assertEqual(h.stop(), 0, h.log())
        # No warning or error but the two above.
        self.assertEqual([p for p in hellodtest.log_problems(h.log())
                          if not re.search(self.afresh, p)], [], h.log())


if __name__ == "__main__":
    hellodtest.main()
