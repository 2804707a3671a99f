"""Helpers for hellod's integration tests: start the real binary with a
config written by the test, talk to it over loopback sockets, stop it by
signal.  Standard library only.  Every wait has a deadline."""

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

HELLOD = os.environ.get("HELLOD", "src/hellod")
SKIP = 77


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    """A port that was free a moment ago on host (TCP)."""
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for(cond, timeout=10.0, interval=0.01, what="condition"):
    """Polls cond() until it returns a true value or timeout passes."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.1fs waiting for %s"
                                 % (timeout, what))
        time.sleep(interval)


def default_user():
    return "user = root\n" if os.geteuid() == 0 else ""


class Hellod:
    """One hellod master started in the foreground.

    conf: the body of the INI file; `listen` is added to [server] unless
    the text already sets it.  The log goes to a file read by log()."""

    def __init__(self, conf="", args=(), port=None, host="127.0.0.1",
                 env=None, ready=True, workers=None):
        self.dir = tempfile.TemporaryDirectory(prefix="hellod-test-")
        self.host = host
        self.port = port or free_port()
        self.conf_path = os.path.join(self.dir.name, "hellod.conf")
        self.log_path = os.path.join(self.dir.name, "stderr.log")
        self.write_conf(conf, workers)
        self.args = list(args)
        self.env = dict(os.environ, **(env or {}))
        self.proc = None
        self.start(ready)

    def write_conf(self, conf, workers=None):
        text = conf
        if "[server]" not in text:
            text = "[server]\n" + text
        head, rest = text.split("[server]\n", 1)
        extra = ""
        if not re.search(r"^\s*listen\s*=", rest, re.M):
            extra += "listen = %s:%d\n" % (self.host_text(), self.port)
        if not re.search(r"^\s*user\s*=", rest, re.M):
            extra += default_user()
        if workers is not None and not re.search(r"^\s*workers\s*=",
                                                  rest, re.M):
            extra += "workers = %s\n" % workers
        with open(self.conf_path, "w") as f:
            f.write(head + "[server]\n" + extra + rest)

    def host_text(self):
        return "[%s]" % self.host if ":" in self.host else self.host

    def start(self, ready=True):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [HELLOD, "--foreground", "-c", self.conf_path] + self.args,
            stdout=self.logf, stderr=subprocess.STDOUT, env=self.env)
        if ready:
            self.wait_ready()

    def wait_ready(self, timeout=10.0):
        """Until the expected number of workers logged that they serve
        and a request is answered."""
        def up():
            if self.proc.poll() is not None:
                raise AssertionError("hellod exited with %s:\n%s"
                                     % (self.proc.returncode, self.log()))
            try:
                return get(self.host, self.port, timeout=1.0).status == 200
            except OSError:
                return False
        wait_for(up, timeout, what="hellod to answer")

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_log(self, pattern, timeout=10.0, count=1):
        """Until pattern (a regex) matches count times in the log."""
        return wait_for(
            lambda: len(re.findall(pattern, self.log())) >= count,
            timeout, what="log %r x%d" % (pattern, count))

    def kill(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signals the master and returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError("hellod did not stop within %.0fs:\n%s"
                                 % (timeout, self.log()))

    def close(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.logf.close()
        self.dir.cleanup()

    def worker_pids(self):
        """Pids of the master's live children."""
        path = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
        with open(path) as f:
            return [int(p) for p in f.read().split()]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Response:
    def __init__(self, status, reason, headers, body, raw):
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (lower-case name, value)
        self.body = body
        self.raw = raw

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None


def connect(host="127.0.0.1", port=8080, timeout=5.0):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect((host, port))
    return s


class Reader:
    """Reads responses off one socket, one at a time (so pipelined
    responses can be taken in order)."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def _fill(self):
        if self.eof:
            return False
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def response(self, head=False):
        """The next response, or None on a clean EOF before any byte."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if self.buf:
                    raise AssertionError("truncated head: %r" % self.buf)
                return None
        head_bytes, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head_bytes.decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.1 (\d{3}) (.*)$", lines[0])
        if not m:
            raise AssertionError("bad status line %r" % lines[0])
        headers = []
        for line in lines[1:]:
            k, v = line.split(":", 1)
            headers.append((k.strip().lower(), v.strip()))
        length = 0
        for k, v in headers:
            if k == "content-length":
                length = int(v)
        if head:
            length = 0
        while len(self.buf) < length:
            if not self._fill():
                raise AssertionError("truncated body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return Response(int(m.group(1)), m.group(2), headers, body,
                        head_bytes + b"\r\n\r\n" + body)

    def closed(self, timeout=5.0):
        """True once the peer closes (EOF or reset) within timeout."""
        self.sock.settimeout(timeout)
        try:
            while self._fill():
                pass
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False
        return True


def exchange(data, host="127.0.0.1", port=8080, head=False, timeout=5.0,
             chunks=None):
    """Sends data (optionally in the given chunks), returns (first
    response or None, whether the server then closed)."""
    with connect(host, port, timeout) as s:
        if chunks:
            for c in chunks:
                s.sendall(c)
        else:
            s.sendall(data)
        r = Reader(s)
        resp = r.response(head)
        return resp, r.closed(timeout)


def get(host="127.0.0.1", port=8080, path="/", timeout=5.0):
    req = ("GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n"
           % path).encode()
    with connect(host, port, timeout) as s:
        s.sendall(req)
        return Reader(s).response()


def greeting(addr):
    return ("<html><body><h1>Hello %s</h1></body></html>" % addr).encode()


def main():
    """Runs the module's unittest cases; exit 0 pass, 1 fail, 77 when
    every test was skipped."""
    prog = unittest.main(module="__main__", exit=False, verbosity=2)
    res = prog.result
    if not res.wasSuccessful():
        sys.exit(1)
    if res.testsRun > 0 and len(res.skipped) == res.testsRun:
        sys.exit(SKIP)
    sys.exit(0)
