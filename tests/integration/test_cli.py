#!/usr/bin/env python3
"""The command line: -t, configuration error messages, -c, --version,
--help, and the overrides -l, -w and --sync on a running server."""

import os
import re
import socket
import tempfile
import unittest

import hellodtest as ht

HOST = "127.0.0.1"


def _version():
    """configure.ac's AC_INIT version: passed on by make check, or read."""
    if os.environ.get("HELLOD_VERSION"):
        return os.environ["HELLOD_VERSION"]
    src = os.environ.get("SRCDIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..")
    with open(os.path.join(src, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[[^]]*\], \[([^]]+)\]",
                         f.read()).group(1)


VERSION = _version()
ADDR_REASON = ("invalid address '%s' (expected IPv4:PORT or [IPv6]:PORT, "
               "port 1-65535)")


class Cli(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="hellod-cli-")
        self.addCleanup(self.tmp.cleanup)
        self.port = ht.free_port()

    def conf(self, text, name="hellod.conf"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def good(self):
        return self.conf("# hellod test configuration\n"
                         "[server]\n"
                         "listen = %s:%d\n"
                         "%s"
                         "workers = 2\n"
                         "[http]\n"
                         "keepalive_timeout = 500ms\n"
                         "header_timeout = 2s\n"
                         "max_header_size = 16k\n"
                         "[log]\n"
                         "level = info\n"
                         % (HOST, self.port, ht.default_user()),
                         "good.conf")

    def run_ok(self, *args):
        p = ht.run_hellod(args)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stderr, "")
        return p.stdout

    def run_fail(self, *args, timeout=10.0):
        p = ht.run_hellod(args, timeout=timeout)
        self.assertEqual(p.returncode, 1,
                         "exit %d, stdout %r, stderr %r"
                         % (p.returncode, p.stdout, p.stderr))
        return p

    # --- -t ---

    def test_test_config_ok(self):
        path = self.good()
        # -t binds nothing: it succeeds while the port is taken.
        with socket.socket() as busy:
            busy.bind((HOST, self.port))
            busy.listen(1)
            self.assertEqual(self.run_ok("-t", "-c", path),
                             "configuration OK: %s\n" % path)
            self.assertEqual(self.run_ok("--test-config", "--config", path),
                             "configuration OK: %s\n" % path)

    def test_test_config_names_the_file(self):
        path = self.good()
        # A relative path is named as the absolute one hellod reads.
        p = ht.run_hellod(["-t", "-c", "good.conf"], cwd=self.tmp.name)
        self.assertEqual((p.returncode, p.stdout, p.stderr),
                         (0, "configuration OK: %s\n" % path, ""))
        p = ht.run_hellod(["-t", "--config=good.conf"], cwd=self.tmp.name)
        self.assertEqual(p.stdout, "configuration OK: %s\n" % path)
        # Without -c: the default file, or the built-in defaults.
        default = re.search(r"configuration file \(default (\S+)\)",
                            self.run_ok("--help")).group(1)
        p = ht.run_hellod(["-t"])
        if os.path.exists(default):
            self.assertEqual(p.stdout, "configuration OK: %s\n" % default)
        else:
            self.assertEqual((p.returncode, p.stdout, p.stderr),
                             (0, "configuration OK: built-in defaults (%s "
                              "does not exist)\n" % default, ""))

    def test_test_config_warns_about_idle_settings(self):
        base = "[server]\nlisten = %s:%d\n%s" % (HOST, self.port,
                                                ht.default_user())
        header = ("hellod: %s: warning: [proxy] header = x-forwarded-for "
                  "does nothing without [proxy] trusted: no proxy is "
                  "believed; list the proxies in trusted, or remove header\n")
        drain = ("hellod: %s: warning: [status] drain_notice does nothing "
                 "without [status] listen: /healthz is served by the status "
                 "listener; add one, or remove drain_notice\n")
        cases = [
            ("[proxy]\nheader = x-forwarded-for\n", header),
            ("[status]\ndrain_notice = 2s\n", drain),
            ("[proxy]\nheader = x-forwarded-for\n[status]\n"
             "drain_notice = 2s\n", header + drain),
            ("[proxy]\ntrusted = 10.0.0.0/8\nheader = x-forwarded-for\n"
             "[status]\nlisten = %s:%d\ndrain_notice = 2s\n"
             % (HOST, ht.free_port()), ""),
            ("[proxy]\nheader = none\n[status]\ndrain_notice = 0\n", ""),
        ]
        for text, warnings in cases:
            with self.subTest(text=text):
                path = self.conf(base + text)
                p = ht.run_hellod(["-t", "-c", path])
                self.assertEqual((p.returncode, p.stdout, p.stderr),
                                 (0, "configuration OK: %s\n" % path,
                                  warnings.replace("%s", path)))

    def test_test_config_errors(self):
        user = ht.default_user()
        cases = [
            # (file text, line of the error, message)
            ("[server]\n%s[http]\nheader_timeout = 2s\n"
             "keepalive_timeout = abc\n" % user, 4 + bool(user),
             "[http] keepalive_timeout: invalid duration 'abc'"),
            ("[server]\n%s[http]\nkeepalive_timeout = 5x\n" % user,
             3 + bool(user),
             "[http] keepalive_timeout: invalid duration '5x'"),
            ("; comment\n[http]\nfoo = 1\n", 3, "[http] foo: unknown key"),
            ("[server]\nworkers = 2\n\n[bogus]\nkey = 1\nother = 2\n", 5,
             "[bogus] key: unknown section"),
            ("[server]\nlisten = 1.2.3.4\n", 2,
             "[server] listen: " + ADDR_REASON % "1.2.3.4"),
            ("[server]\nlisten = 127.0.0.1:0\n", 2,
             "[server] listen: " + ADDR_REASON % "127.0.0.1:0"),
            ("[server]\nlisten = 127.0.0.1:65536\n", 2,
             "[server] listen: " + ADDR_REASON % "127.0.0.1:65536"),
            ("[server]\nlisten = ::1:8080\n", 2,
             "[server] listen: " + ADDR_REASON % "::1:8080"),
            ("[server]\nworkers = 2\nmode = async\nworkers = 3\n", 4,
             "[server] workers: duplicate key"),
            ("[server]\nmode = fast\n", 2,
             "[server] mode: invalid mode 'fast' (async, sync or uring)"),
            ("[server]\nworkers = 0\n", 2,
             "[server] workers: invalid worker count '0' (auto or 1-256)"),
        ]
        for text, line, msg in cases:
            with self.subTest(msg=msg):
                path = self.conf(text)
                p = self.run_fail("-t", "-c", path)
                self.assertEqual(p.stderr,
                                 "hellod: %s:%d: %s\n" % (path, line, msg))
                self.assertEqual(p.stdout, "")

    def test_syntax_error(self):
        path = self.conf("[server]\nworkers = 2\nthis is not ini\n")
        p = self.run_fail("-t", "-c", path)
        self.assertEqual(p.stderr, "hellod: %s:3: syntax error (expected "
                         "[section] or key = value)\n" % path)

    def test_missing_config_file(self):
        p = self.run_fail("-c", "/nonexistent/hellod.conf")
        self.assertIn("cannot open", p.stderr)
        self.assertEqual(p.stderr, "hellod: /nonexistent/hellod.conf: "
                         "cannot open: No such file or directory\n")
        p = self.run_fail("-t", "-c", "/nonexistent")
        self.assertIn("/nonexistent: cannot open", p.stderr)

    def test_cli_value_errors(self):
        path = self.good()
        p = self.run_fail("-t", "-c", path, "-w", "x")
        self.assertEqual(p.stderr, "hellod: --workers: invalid worker count "
                         "'x' (auto or 1-256)\n")
        p = self.run_fail("-t", "-c", path, "--workers", "257")
        self.assertIn("--workers: invalid worker count '257'", p.stderr)
        for addr in ("1.2.3.4", "127.0.0.1:0", "localhost:80", "[::1]"):
            with self.subTest(addr=addr):
                p = self.run_fail("-t", "-c", path, "-l", addr)
                self.assertEqual(p.stderr, "hellod: --listen: %s\n"
                                 % ADDR_REASON % addr)

    def test_unknown_option(self):
        p = self.run_fail("--bogus")
        self.assertIn("usage:", p.stderr)
        p = self.run_fail("-t", "-c", self.good(), "extra")
        self.assertIn("unexpected argument 'extra'", p.stderr)

    def test_version(self):
        self.assertEqual(self.run_ok("--version"), "hellod %s\n" % VERSION)
        self.assertEqual(self.run_ok("-v"), "hellod %s\n" % VERSION)

    def test_help(self):
        for opt in ("--help", "-h"):
            out = self.run_ok(opt)
            self.assertTrue(out.startswith("usage: hellod"), out)
            for word in ("--config", "--foreground", "--sync", "--workers",
                         "--listen", "--test-config", "--version"):
                self.assertIn(word, out)

    def test_ranges_in_the_keys_units(self):
        user = ht.default_user()
        cases = [
            ("[server]\n%sshutdown_timeout = 61m\n" % user,
             "[server] shutdown_timeout: duration '61m' out of range "
             "(0-60m)"),
            ("[server]\n%s[http]\nheader_timeout = 0\n" % user,
             "[http] header_timeout: duration '0' out of range (1ms-60m)"),
            ("[server]\n%s[http]\ndelay = 61s\n" % user,
             "[http] delay: duration '61s' out of range (0-1m)"),
            ("[server]\n%s[http]\nmax_header_size = 255\n" % user,
             "[http] max_header_size: size '255' out of range (256-1m)"),
            ("[server]\n%s[http]\nbody_padding = 65m\n" % user,
             "[http] body_padding: size '65m' out of range (0-64m)"),
            ("[server]\n%s[status]\ndrain_notice = 2d\n" % user,
             "[status] drain_notice: invalid duration '2d'"),
            ("[server]\n%s[status]\ndrain_notice = 3601s\n" % user,
             "[status] drain_notice: duration '3601s' out of range (0-60m)"),
        ]
        for text, msg in cases:
            with self.subTest(msg=msg):
                path = self.conf(text)
                p = self.run_fail("-t", "-c", path)
                line = text.count("\n")
                self.assertEqual(p.stderr, "hellod: %s:%d: %s\n"
                                 % (path, line, msg))

    # --- start-up ---

    def assert_errors_only(self, text, *wanted):
        """Every [warn] or [error] line of text is an [error]; each regex
        of wanted matches one of them."""
        problems = ht.log_problems(text)
        self.assertTrue(problems, text)
        for line in problems:
            self.assertIn("[error]", line, text)
        for w in wanted:
            self.assertTrue(any(re.search(w, l) for l in problems),
                            "no [error] line matches %r:\n%s" % (w, text))

    def test_pid_file_that_cannot_be_created_is_an_error(self):
        # A regular file where the pid file's directory should be.
        blocker = self.conf("", "not-a-directory")
        pidfile = os.path.join(blocker, "hellod.pid")
        path = self.conf("[server]\nlisten = %s:%d\npid_file = %s\n%s"
                         % (HOST, self.port, pidfile, ht.default_user()))
        reason = (r"cannot create the pid file %s: Not a directory; create "
                  r"its directory, let hellod write there, or change "
                  r"\[server\] pid_file$" % re.escape(pidfile))
        p = self.run_fail("-f", "-c", path)
        self.assert_errors_only(p.stdout + p.stderr,
                                r"\[error\] \d+#master: " + reason)
        self.assertTrue(ht.port_free(self.port))
        # Not yet detached, the daemon says why on stderr too, whatever
        # its error_log (here syslog, in place of stderr).
        p = self.run_fail("-c", path)
        self.assertRegex(p.stderr, r"(?m)^hellod: \[error\] " + reason)
        self.assertNotIn("[warn]", p.stderr)
        self.assertTrue(ht.port_free(self.port))

    def test_address_in_use_is_an_error(self):
        path = self.conf("[server]\nlisten = %s:%d\nworkers = 1\n%s"
                         % (HOST, self.port, ht.default_user()))
        with socket.socket() as busy:
            busy.bind((HOST, self.port))
            busy.listen(1)
            p = self.run_fail("-f", "-c", path)
        self.assert_errors_only(
            p.stdout + p.stderr,
            r"\[error\] .*bind\(\) to %s:%d failed \(98: Address already "
            r"in use\)$" % (HOST, self.port),
            r"\[error\] .*cannot open the listeners: another process "
            r"listens there: stop it, or change the address \(\[server\] "
            r"listen, proxy_listen, \[status\] listen\); exiting$")

    def test_counts_of_one_are_singular(self):
        with ht.start_hellod("[server]\nworkers = 1\n") as h:
            h.wait_log(r"started: 1 worker \(async\)")
            h.wait_log(r"worker 0 serving \(generation 1, async, "
                       r"1 listener\)")
            ht.reload_and_wait(h, 2, 1)
            h.wait_log(r"reloaded: generation 2, 1 worker \(async\)")
            self.assertNotRegex(h.log(), r"\b1 (worker|listener)s\b")
            self.assertEqual(h.stop(), 0)

    def test_config_error_at_start_binds_nothing(self):
        path = self.conf("[server]\nlisten = %s:%d\n%s[http]\n"
                         "header_timeout = soon\n"
                         % (HOST, self.port, ht.default_user()))
        line = 5 if ht.default_user() else 4
        for args in (("-f", "-c", path), ("-c", path)):
            with self.subTest(args=args):
                p = self.run_fail(*args)
                self.assertEqual(p.stderr, "hellod: %s:%d: [http] "
                                 "header_timeout: invalid duration 'soon'\n"
                                 % (path, line))
                self.assertNotIn("listening", p.stdout + p.stderr)
                self.assertTrue(ht.port_free(self.port),
                                "port %d taken" % self.port)
                with self.assertRaises(ConnectionRefusedError):
                    ht.connect(HOST, self.port, 1.0).close()

    def test_listen_overrides_file(self):
        other = ht.free_port()
        while other == self.port:
            other = ht.free_port()
        args = ["-l", "%s:%d" % (HOST, other)]
        port6 = None
        if ht.ipv6_loopback():
            port6 = ht.free_port(socket.AF_INET6, "::1")
            args += ["--listen", "[::1]:%d" % port6]
        with ht.start_hellod("[server]\nlisten = %s:%d\nworkers = 1\n"
                             % (HOST, self.port), args=args,
                             port=other) as h:
            resp = ht.get(HOST, other)
            self.assertEqual(resp.body, ht.greeting(HOST))
            if port6:
                resp = ht.get("::1", port6)
                self.assertEqual(resp.body, ht.greeting("::1"))
            with self.assertRaises(ConnectionRefusedError):
                ht.connect(HOST, self.port, 1.0).close()
            log = h.log()
            self.assertIn("listening on %s:%d" % (HOST, other), log)
            self.assertNotIn("%s:%d" % (HOST, self.port), log)
            self.assertEqual(h.stop(), 0)

    def test_workers_option(self):
        with ht.start_hellod("[server]\nworkers = 1\n",
                             args=["-w", "3"]) as h:
            h.wait_log(r"started: 3 workers \(async\)")
            h.wait_log(r"worker \d serving \(generation 1, async", count=3)
            self.assertEqual(len(h.worker_pids()), 3)
            for i in range(6):
                self.assertEqual(ht.get(HOST, h.port).status, 200)
            self.assertEqual(len(h.worker_pids()), 3)
            self.assertEqual(h.stop(), 0)

    def test_sync_option(self):
        with ht.start_hellod("[server]\nworkers = 4\nmode = async\n",
                             args=["--sync"]) as h:
            h.wait_log(r"started: 1 worker \(sync\)")
            h.wait_log(r"worker 0 serving \(generation 1, sync, "
                       r"1 listener\)")
            self.assertEqual(len(h.worker_pids()), 1)
            # Sync without keepalive_timeout in the file: no keep-alive.
            with ht.connect(HOST, h.port) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
                r = ht.Reader(s)
                resp = r.response()
                self.assertEqual(resp.status, 200)
                self.assertEqual(resp.header("connection"), "close")
                self.assertTrue(r.closed())
            self.assertEqual(len(re.findall(r"worker \d+ serving", h.log())),
                             1)
            self.assertEqual(len(h.worker_pids()), 1)
            self.assertEqual(h.stop(), 0)


if __name__ == "__main__":
    ht.main()
