"""What the packaging checks share: the environment make check sets, and
a list of failures that lets one run report every problem at once."""

import os
import sys

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("SRCDIR") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(SRCDIR, "tests", "integration"))
from hellodtest import free_port  # noqa: E402,F401
BUILDDIR = os.environ.get("BUILDDIR", "")
HELLOD = os.environ.get("HELLOD") or os.path.join(BUILDDIR, "src", "hellod")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def ok(msg):
    print("ok: " + msg)


def ini_lines(text):
    """(line number, section, line) for each line of an INI-style text
    (hellod.conf, a systemd unit) that is neither blank, a comment nor a
    section header."""
    section = None
    for n, line in enumerate(text.splitlines(), 1):
        s = line.strip()
        if not s or s[0] in "#;":
            continue
        if s[0] == "[" and s[-1] == "]":
            section = s[1:-1]
            continue
        yield n, section, s
