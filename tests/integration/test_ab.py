#!/usr/bin/env python3
"""The original benchmark: ApacheBench with 1000 requests from 150
concurrent clients, against async mode (2 workers) and sync mode.  Every
request must complete with a 2xx."""

import re
import shutil
import subprocess
import unittest

import hellodtest as ht

AB_TIMEOUT = 60.0


def ab_field(out, name):
    """The integer after "name:" in ab's report, or None when absent."""
    m = re.search(r"^%s:\s+(\d+)" % re.escape(name), out, re.M)
    return int(m.group(1)) if m else None


class Ab(unittest.TestCase):

    def ab(self, conf, extra=()):
        ab = shutil.which("ab")
        if ab is None:
            self.fail("ab (ApacheBench) is not installed; it comes with the "
                      "Debian package apache2-utils")
        with ht.start_hellod(conf) as h:
            url = "http://127.0.0.1:%d/" % h.port
            try:
                p = subprocess.run([ab, "-r", "-n1000", "-c150", "-l"] +
                                   list(extra) + [url],
                                   stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT,
                                   universal_newlines=True,
                                   timeout=AB_TIMEOUT)
            except subprocess.TimeoutExpired as e:
                self.fail("ab did not finish within %.0fs:\n%s\n%s"
                          % (AB_TIMEOUT, e.output, h.log()))
            out = p.stdout
            self.assertEqual(p.returncode, 0, out)
            self.assertEqual(ab_field(out, "Complete requests"), 1000, out)
            self.assertEqual(ab_field(out, "Failed requests"), 0, out)
            # ab prints these lines only when they are not zero.
            self.assertIn(ab_field(out, "Non-2xx responses"), (None, 0), out)
            self.assertIn(ab_field(out, "Write errors"), (None, 0), out)
            self.assertIn(ab_field(out, "Exceptions"), (None, 0), out)
            self.assertRegex(out, r"Server Software:\s+hellod\b")
            # Still serving afterwards, with a clean log.
            resp = ht.get("127.0.0.1", h.port)
            self.assertEqual(resp.body, ht.greeting("127.0.0.1"))
            self.assertEqual(ht.log_problems(h.log()), [])
            self.assertEqual(h.stop(), 0)
            return out

    def test_ab_async(self):
        self.ab("[server]\nmode = async\nworkers = 2\n")

    def test_ab_sync(self):
        self.ab("[server]\nmode = sync\n")

    def test_ab_keepalive_async(self):
        out = self.ab("[server]\nmode = async\nworkers = 2\n", ["-k"])
        self.assertEqual(ab_field(out, "Keep-Alive requests"), 1000, out)


if __name__ == "__main__":
    ht.main()
