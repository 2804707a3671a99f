"""What the packaging checks share: the environment make check sets, and
a list of failures that lets one run report every problem at once."""

import os

SKIP = 77
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("SRCDIR") or os.path.normpath(
    os.path.join(HERE, "..", ".."))
BUILDDIR = os.environ.get("BUILDDIR", "")
HELLOD = os.environ.get("HELLOD") or os.path.join(BUILDDIR, "src", "hellod")

failures = []


def fail(msg):
    failures.append(msg)
    print("FAIL: " + msg)


def ok(msg):
    print("ok: " + msg)
