#!/usr/bin/env python3
"""The built hellod carries the hardening configure adds (readelf):

- a position-independent executable (ELF type DYN, readelf -h);
- immediate binding (DT_FLAGS BIND_NOW or DT_FLAGS_1 NOW, readelf -d);
- a GNU_RELRO program header, and a GNU_STACK one without E (readelf -lW);
- stack protector: __stack_chk_fail among the dynamic symbols;
- _FORTIFY_SOURCE: at least one __*_chk symbol (e.g. __memcpy_chk).

Skipped (77) for a build configured with --enable-sanitizers or
--disable-hardening (read from $BUILDDIR/config.log), and when readelf is
not installed.  A build whose CFLAGS turn optimization off (-O0, or no -O)
gets no _FORTIFY_SOURCE from glibc, so the fortify check is then only
reported, not enforced.

Environment: BUILDDIR, HELLOD (set by make check).  Exit 0 pass, 1 fail.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import BUILDDIR, HELLOD, SKIP, fail, failures, ok  # noqa: E402


def config_log():
    try:
        with open(os.path.join(BUILDDIR, "config.log"),
                  encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError as e:
        print("FAIL: %s" % e)
        sys.exit(1)


def unhardened_reason(log):
    """Why this build is not meant to be hardened, or None."""
    if re.search(r"enable_sanitizers=yes|enable_hardening=no", log):
        return "config.log records enable_sanitizers=yes/enable_hardening=no"
    m = re.search(r"^  \$ (.*)$", log, re.M)      # the configure command
    args = []
    if m:
        try:
            args = shlex.split(m.group(1))
        except ValueError:
            args = m.group(1).split()
    for a in args:
        if a in ("--enable-sanitizers", "--enable-sanitizers=yes"):
            return "configured with " + a
        if a in ("--disable-hardening", "--enable-hardening=no"):
            return "configured with " + a
    m = re.search(r"^HARDEN_CFLAGS='(.*)'$", log, re.M)
    if m and "-fsanitize" in m.group(1):
        return "HARDEN_CFLAGS has -fsanitize"
    return None


def optimized(log):
    m = re.search(r"^CFLAGS='(.*)'$", log, re.M)
    flags = m.group(1).split() if m else []
    olevels = [f for f in flags if f.startswith("-O")]
    return bool(olevels) and olevels[-1] != "-O0"


def readelf(readelf_path, *args):
    p = subprocess.run([readelf_path] + list(args) + [HELLOD],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=60,
                       env=dict(os.environ, LC_ALL="C"))
    if p.returncode != 0:
        fail("readelf %s: exit %d: %s" % (" ".join(args), p.returncode,
                                          p.stderr.strip()))
    return p.stdout


def main():
    if not BUILDDIR:
        print("FAIL: BUILDDIR is not set")
        return 1
    log = config_log()
    why = unhardened_reason(log)
    if why:
        print("SKIP: not a hardened build (%s)" % why)
        return SKIP
    tool = shutil.which("readelf")
    if tool is None:
        print("SKIP: readelf is not installed (Debian package binutils)")
        return SKIP
    if not os.access(HELLOD, os.X_OK):
        print("FAIL: %s: no built hellod" % HELLOD)
        return 1

    hdr = readelf(tool, "-hW")
    m = re.search(r"^\s*Type:\s*(\S+)", hdr, re.M)
    if m and m.group(1) == "DYN":
        ok("PIE (ELF type DYN)")
    else:
        fail("not a PIE: ELF type %s, wanted DYN"
             % (m.group(1) if m else "unknown"))

    dyn = readelf(tool, "-dW")
    now = re.search(r"\(FLAGS\)\s+.*\bBIND_NOW\b", dyn) or \
        re.search(r"\(FLAGS_1\)\s+.*\bNOW\b", dyn)
    if now:
        ok("immediate binding (BIND_NOW)")
    else:
        fail("no DT_FLAGS BIND_NOW nor DT_FLAGS_1 NOW in readelf -d")

    phdrs = readelf(tool, "-lW")
    if re.search(r"^\s*GNU_RELRO\s", phdrs, re.M):
        ok("GNU_RELRO program header")
    else:
        fail("no GNU_RELRO program header (link with -z relro)")
    # GNU_STACK Offset VirtAddr PhysAddr FileSiz MemSiz Flg Align, where
    # Flg is up to three letters, possibly with spaces ("RW ", "RWE").
    stack = [l.split() for l in phdrs.splitlines()
             if l.split()[:1] == ["GNU_STACK"]]
    if not stack or len(stack[0]) < 8:
        fail("no GNU_STACK program header (link with -z noexecstack)")
    else:
        flg = "".join(stack[0][6:-1])
        if "E" in flg:
            fail("executable stack: GNU_STACK flags %s" % flg)
        else:
            ok("non-executable stack (GNU_STACK %s)" % flg)

    syms = set()
    for line in readelf(tool, "--dyn-syms", "-W").splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].endswith(":"):
            syms.add(f[7].split("@")[0])
    if "__stack_chk_fail" in syms:
        ok("stack protector (__stack_chk_fail)")
    else:
        fail("no __stack_chk_fail: not built with -fstack-protector-strong")
    chk = sorted(s for s in syms if re.fullmatch(r"__\w+_chk", s)
                 and s != "__stack_chk_fail")
    if chk:
        ok("_FORTIFY_SOURCE: %s" % ", ".join(chk))
    elif not optimized(log):
        print("note: no __*_chk symbol, but CFLAGS disable optimization, "
              "so _FORTIFY_SOURCE has no effect; not counted as a failure")
    else:
        fail("no __*_chk symbol: not built with _FORTIFY_SOURCE")

    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
