#!/usr/bin/env python3
"""The systemd units as make generates them ($BUILDDIR/systemd/).

1. The service declares what the contract requires: Type=notify, a reload
   by SIGHUP to $MAINPID, the hardening directives, DynamicUser= (or a
   User=), only CAP_NET_BIND_SERVICE, and LimitNOFILE >= 20000.
2. "systemd-analyze verify" accepts hellod.service and hellod.socket.  They
   are copied into a temporary directory, with the service's ExecStart=
   binary (the configured sbindir, not installed) replaced by $HELLOD, and
   a MANPATH holding the pages made in $BUILDDIR/man so that the
   Documentation=man: references resolve.  Any message fails the test,
   except "Command 'man ...' failed" when the man command itself cannot
   find the pages.
3. "systemd-analyze security --offline=yes" rates the service at an
   overall exposure of at most 2.0.

Environment: SRCDIR, BUILDDIR, HELLOD (set by make check).  Exit 0 pass,
1 fail, 77 when systemd-analyze is not installed.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (BUILDDIR, HELLOD, SKIP, SRCDIR, fail,  # noqa: E402
                    failures, ini_lines, ok)

MAX_EXPOSURE = 2.0
MIN_NOFILE = 20000
UNITS = ("hellod.service", "hellod.socket")
TRUE = ("yes", "true", "on", "1")


def parse_unit(path):
    """{(section, key): [values in order]}; an empty assignment resets."""
    d = {}
    with open(path, encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    for _, section, s in ini_lines(text):
        k, sep, v = s.partition("=")
        if not sep:
            fail("%s: not a key=value line: %r" % (path, s))
            continue
        k, v = k.strip(), v.strip()
        if v == "":
            d[(section, k)] = []
        else:
            d.setdefault((section, k), []).append(v)
    return d


def check_directives(path):
    u = parse_unit(path)

    def last(key):
        v = u.get(("Service", key))
        return v[-1] if v else None

    def want(key, pred, what):
        v = last(key)
        if v is None or not pred(v):
            fail("hellod.service: %s=%s wanted, found %s"
                 % (key, what, "nothing" if v is None else repr(v)))

    want("Type", lambda v: v == "notify", "notify")
    want("ExecReload", lambda v: re.search(r"\bkill\s+-HUP\s+\$MAINPID\b", v),
         "<path>/kill -HUP $MAINPID")
    for key in ("NoNewPrivileges", "PrivateTmp", "PrivateDevices",
                "ProtectKernelTunables", "ProtectKernelModules",
                "ProtectKernelLogs", "ProtectControlGroups", "ProtectClock",
                "RestrictNamespaces", "LockPersonality",
                "MemoryDenyWriteExecute"):
        want(key, lambda v: v.lower() in TRUE, "yes")
    want("ProtectSystem", lambda v: v == "strict", "strict")
    want("ProtectHome", lambda v: v.lower() in TRUE + ("read-only", "tmpfs"),
         "yes")
    want("SystemCallArchitectures", lambda v: v.split() == ["native"],
         "native")

    # Lists: the assignments add up.
    fams = " ".join(u.get(("Service", "RestrictAddressFamilies"), []))
    if fams.startswith("~") or set(fams.split()) != {
            "AF_INET", "AF_INET6", "AF_UNIX"}:
        fail("hellod.service: RestrictAddressFamilies=AF_INET AF_INET6 "
             "AF_UNIX wanted, found %r" % fams)
    allow = [v for v in u.get(("Service", "SystemCallFilter"), [])
             if not v.startswith("~")]
    if not any("@system-service" in v.split() for v in allow):
        fail("hellod.service: SystemCallFilter=@system-service wanted, found "
             "%r" % u.get(("Service", "SystemCallFilter")))
    caps = " ".join(u.get(("Service", "CapabilityBoundingSet"), []))
    if caps.startswith("~") or set(caps.split()) != {"CAP_NET_BIND_SERVICE"}:
        fail("hellod.service: CapabilityBoundingSet=CAP_NET_BIND_SERVICE "
             "wanted, found %r" % caps)

    dyn = last("DynamicUser")
    user = last("User")
    if not ((dyn and dyn.lower() in TRUE) or (user and user != "root")):
        fail("hellod.service: DynamicUser=yes or a User= other than root "
             "wanted, found DynamicUser=%r User=%r" % (dyn, user))

    nofile = last("LimitNOFILE")
    soft = (nofile or "").split(":")[0]
    if soft != "infinity" and not (soft.isdigit() and
                                   int(soft) >= MIN_NOFILE):
        fail("hellod.service: LimitNOFILE >= %d wanted, found %r"
             % (MIN_NOFILE, nofile))
    ok("hellod.service directives checked")
    return u


def unit_tmpdir(tmp):
    """Copies of the generated units, with ExecStart= running $HELLOD."""
    for name in UNITS:
        with open(os.path.join(BUILDDIR, "systemd", name),
                  encoding="utf-8") as f:
            text = f.read()
        if name.endswith(".service"):
            text, n = re.subn(r"(?m)^(ExecStart=[-@:+!]*)(\S+)",
                              lambda m: m.group(1) + HELLOD, text)
            if n != 1:
                fail("hellod.service: %d ExecStart= lines, wanted 1" % n)
        with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
            f.write(text)
    # Documentation=man:... is checked with man(1): give it the pages.
    for page, sect in (("hellod.8", "8"), ("hellod.conf.5", "5")):
        d = os.path.join(tmp, "man", "man" + sect)
        os.makedirs(d, exist_ok=True)
        shutil.copy(os.path.join(BUILDDIR, "man", page), d)


def analyze_env(tmp):
    env = dict(os.environ)
    env.update(SYSTEMD_LOG_LEVEL="notice", SYSTEMD_COLORS="0",
               SYSTEMD_PAGER="cat", PAGER="cat", SYSTEMD_LOG_COLOR="0",
               MANPATH=os.path.join(tmp, "man"), LC_ALL="C.UTF-8")
    return env


def check_verify(analyze, tmp):
    paths = [os.path.join(tmp, n) for n in UNITS]
    opts = []
    if shutil.which("man") is None:
        # Documentation=man: is checked by running man(1).
        print("note: man is not installed (Debian package man-db): "
              "Documentation=man: references not checked")
        opts = ["--man=no"]
    p = subprocess.run([analyze, "verify"] + opts + paths, cwd=tmp,
                       env=analyze_env(tmp), stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=120)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    man = [l for l in lines
           if re.search(r"Command 'man [^']*' failed", l)]
    other = [l for l in lines if l not in man]
    print("systemd-analyze verify: exit %d" % p.returncode)
    for l in lines:
        print("  " + l)
    if other or (p.returncode != 0 and not man):
        fail("systemd-analyze verify %s: exit %d, %d message(s) other than "
             "missing manual pages" % (" ".join(UNITS), p.returncode,
                                       len(other)))
    elif man:
        ok("systemd-analyze verify: only man: references failed "
           "(tolerated)")
    else:
        ok("systemd-analyze verify %s: clean" % " ".join(UNITS))


def check_security(analyze, tmp):
    path = os.path.join(tmp, "hellod.service")
    p = subprocess.run([analyze, "security", "--offline=yes", "--no-pager",
                        path], cwd=tmp, env=analyze_env(tmp),
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       universal_newlines=True, timeout=120)
    m = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)",
                  p.stdout)
    if m is None:
        fail("systemd-analyze security --offline=yes: exit %d, no overall "
             "exposure level in the output:\n%s%s"
             % (p.returncode, p.stdout, p.stderr))
        return
    level = float(m.group(1))
    print("systemd-analyze security: overall exposure level %s "
          "(at most %.1f allowed)" % (m.group(1), MAX_EXPOSURE))
    if level > MAX_EXPOSURE:
        print(p.stdout)
        fail("hellod.service: exposure level %s > %.1f"
             % (m.group(1), MAX_EXPOSURE))
    else:
        ok("exposure level %s <= %.1f" % (m.group(1), MAX_EXPOSURE))


def main():
    if not BUILDDIR:
        print("FAIL: BUILDDIR is not set")
        return 1
    missing = [n for n in UNITS
               if not os.path.exists(os.path.join(BUILDDIR, "systemd", n))]
    if missing:
        # make builds them with "all"; build them if this runs by hand.
        subprocess.run(["make", "-s", "-C", BUILDDIR] +
                       ["systemd/" + n for n in missing], timeout=300)
    for n in UNITS:
        if not os.path.exists(os.path.join(BUILDDIR, "systemd", n)):
            print("FAIL: %s/systemd/%s was not generated" % (BUILDDIR, n))
            return 1
    if not os.access(HELLOD, os.X_OK):
        print("FAIL: %s: no built hellod" % HELLOD)
        return 1

    check_directives(os.path.join(BUILDDIR, "systemd", "hellod.service"))

    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        if failures:
            return 1
        print("SKIP: systemd-analyze is not installed (Debian package "
              "systemd); only the directives were checked")
        return SKIP
    with tempfile.TemporaryDirectory(prefix="hellod-unit-") as tmp:
        unit_tmpdir(tmp)
        check_verify(analyze, tmp)
        check_security(analyze, tmp)
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
