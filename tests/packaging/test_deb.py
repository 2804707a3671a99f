#!/usr/bin/env python3
"""The Debian package (debian/), built and installed into a throw-away
Debian root.

1. The version of debian/changelog is configure.ac's AC_INIT version
   (always checked, even when the rest is skipped).
2. dpkg-buildpackage -us -uc -b builds the package from a clean copy of
   the distribution (make distdir); lintian reports no error and no
   warning (when lintian is installed).
3. In a Debian bookworm root made by mmdebstrap --variant=apt (with the
   package's dependencies, read from the .deb; cached as
   $BUILDDIR/packaging-cache/*.tar, made once from the host's apt mirror,
   about 70 s), as root with chroot:
   - dpkg -i installs the files where hellod(8) and the units say:
     /usr/sbin/hellod, /etc/hellod.conf (a conffile), the manual pages,
     /lib/systemd/system/hellod.{service,socket}; hellod.service is
     enabled, nothing else; hellod -v prints the version and hellod -t
     accepts the packaged /etc/hellod.conf;
   - systemd-analyze verify (on this host) accepts the installed units,
     copied with their ExecStart= binary resolved inside the root;
   - a modified /etc/hellod.conf survives the installation of a newer
     version (the same package repacked by dpkg-deb as VERSION+1), and
     hellod -t still accepts it;
   - apt-get purge hellod leaves the root as it was before the
     installation (every path outside dpkg's and apt's own records).

Environment: SRCDIR, BUILDDIR (set by make check); HELLOD_DEB, a .deb to
test instead of building one; HELLOD_PACKAGING_CACHE, where to cache the
root instead of $BUILDDIR/packaging-cache (CI shares one between its
builds).  Exit 0 pass, 1 fail, 77 when
dpkg-buildpackage, mmdebstrap or root is missing.  About 2 minutes, the
first run 90 s more.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import BUILDDIR, SKIP, SRCDIR, fail, failures, ok  # noqa: E402

SUITE = "bookworm"
# Besides the package's own dependencies (read from the .deb), so that
# dpkg -i needs no mirror: deb-systemd-helper, which enables the unit.
ROOT_EXTRA = ["init-system-helpers"]
EXPECTED = ["/usr/sbin/hellod", "/etc/hellod.conf",
            "/usr/share/man/man8/hellod.8.gz",
            "/usr/share/man/man5/hellod.conf.5.gz",
            "/lib/systemd/system/hellod.service",
            "/lib/systemd/system/hellod.socket",
            "/usr/share/doc/hellod/copyright",
            "/usr/share/doc/hellod/NEWS.gz",
            "/usr/share/doc/hellod/changelog.gz"]
# What dpkg and apt record about an installation and a purge.
BOOKKEEPING = re.compile(r"^/(var/lib/dpkg|var/lib/apt|var/cache|var/log|"
                         r"tmp|proc|dev|run)(/|$)")
T0 = time.monotonic()


def run(cmd, timeout=600, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout, **kw)
    return p.returncode, p.stdout


# The package build and lintian take a core for a minute: at the lowest
# priority, next to make check's timing-sensitive tests.
os.nice(19)


def must(cmd, what, **kw):
    rc, out = run(cmd, **kw)
    if rc != 0:
        fail("%s: %s: exit %d\n%s" % (what, " ".join(cmd), rc, out[-3000:]))
        raise SystemExit(report())
    return out


def report():
    print("%.0f s" % (time.monotonic() - T0))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


def configure_version():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[[^]]*\], \[([^]]+)\]",
                         f.read()).group(1)


def changelog_version():
    with open(os.path.join(SRCDIR, "debian", "changelog")) as f:
        m = re.match(r"^hellod \(([^)]+)\) ", f.readline())
    return m.group(1) if m else None


def check_version():
    v, d = configure_version(), changelog_version()
    # A native package: the Debian version is the upstream one, or the
    # upstream one with a +suffix for a Debian-only rebuild.
    if d is None or not (d == v or d.startswith(v + "+")):
        fail("debian/changelog's version %r is not configure.ac's %r: add a "
             "debian/changelog entry for %s" % (d, v, v))
    else:
        ok("debian/changelog %s matches configure.ac AC_INIT %s" % (d, v))
    return v


def build_deb(tmp, version):
    """dpkg-buildpackage in a make distdir copy; the .deb's path."""
    if os.environ.get("HELLOD_DEB"):
        return os.environ["HELLOD_DEB"]
    src = os.path.join(tmp, "hellod-" + version)
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS", "DESTDIR"):
        env.pop(k, None)
    must([os.environ.get("MAKE", "make"), "-s", "-C", BUILDDIR, "distdir",
          "distdir=" + src, "top_distdir=" + src], "make distdir", env=env)
    t = time.monotonic()
    must(["dpkg-buildpackage", "-us", "-uc", "-b"], "dpkg-buildpackage",
         cwd=src, env=env, timeout=900)
    debs = [d for d in glob.glob(os.path.join(tmp, "hellod_*.deb"))]
    if len(debs) != 1:
        fail("dpkg-buildpackage made %r, not one hellod_*.deb" % debs)
        raise SystemExit(report())
    ok("dpkg-buildpackage -us -uc -b: %s (%d bytes) in %.0f s"
       % (os.path.basename(debs[0]), os.path.getsize(debs[0]),
          time.monotonic() - t))
    lint = shutil.which("lintian")
    if lint is None:
        print("note: lintian is not installed (Debian package lintian): "
              "not run")
        return debs[0]
    changes = glob.glob(os.path.join(tmp, "hellod_*.changes"))
    rc, out = run([lint, "--fail-on", "error,warning"] + changes, cwd=tmp,
                  timeout=300)
    out = "\n".join(l for l in out.splitlines()
                    if "running with root privileges" not in l)
    tags = [l for l in out.splitlines() if re.match(r"^[EW]: ", l)]
    if rc != 0 or tags:
        fail("lintian: exit %d\n%s" % (rc, out))
    else:
        ok("lintian: no error, no warning")
    return debs[0]


def depends(deb):
    """The packages a .deb depends on (first of each alternative)."""
    out = must(["dpkg-deb", "-f", deb, "Depends"], "dpkg-deb -f")
    names = [re.split(r"[\s(:]", alt.split("|")[0].strip())[0]
             for alt in out.split(",") if alt.strip()]
    return sorted(set(names + ROOT_EXTRA))


def base_root(packages):
    """The cached mmdebstrap tarball of a minimal bookworm holding
    packages."""
    cache = os.environ.get("HELLOD_PACKAGING_CACHE") or \
        os.path.join(BUILDDIR, "packaging-cache")
    os.makedirs(cache, exist_ok=True)
    tar = os.path.join(cache, "%s-apt-%s.tar" % (SUITE, "_".join(packages)))
    if os.path.exists(tar):
        return tar
    t = time.monotonic()
    part = tar + ".part"
    # The host's apt sources name the mirror mmdebstrap uses.
    must(["mmdebstrap", "--quiet", "--variant=apt", "--format=tar",
          "--include=" + ",".join(packages), SUITE, part], "mmdebstrap",
         timeout=900)
    os.rename(part, tar)
    ok("mmdebstrap %s root cached in %s (%.0f s)"
       % (SUITE, os.path.relpath(tar, BUILDDIR), time.monotonic() - t))
    return tar


def tree(root):
    """Every path of a root (type and target or size), outside dpkg's
    and apt's records."""
    out = {}
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            rel = "/" + os.path.relpath(p, root)
            if BOOKKEEPING.match(rel):
                continue
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isdir(p):
                out[rel] = "dir"
            else:
                out[rel] = "file"
    return out


def chroot(root, *cmd, timeout=300):
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C.UTF-8",
           "DEBIAN_FRONTEND": "noninteractive"}
    return run(["chroot", root] + list(cmd), timeout=timeout, env=env)


def repack(deb, tmp, version):
    """The same package as VERSION (dpkg-deb -R, edit, dpkg-deb -b)."""
    d = os.path.join(tmp, "repack")
    must(["dpkg-deb", "-R", deb, d], "dpkg-deb -R")
    control = os.path.join(d, "DEBIAN", "control")
    with open(control) as f:
        text = f.read()
    with open(control, "w") as f:
        f.write(re.sub(r"(?m)^Version: .*$", "Version: " + version, text))
    out = os.path.join(tmp, "hellod_%s.deb" % version)
    must(["dpkg-deb", "--root-owner-group", "-b", d, out], "dpkg-deb -b")
    return out


def check_units(root, tmp):
    """systemd-analyze verify on this host, on copies of the installed
    units whose ExecStart= names the root's /usr/sbin/hellod (the root
    has no systemd for --root=)."""
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        print("note: systemd-analyze is not installed (Debian package "
              "systemd): the installed units were not verified")
        return
    d = os.path.join(tmp, "units")
    os.mkdir(d)
    units = []
    for u in ("hellod.service", "hellod.socket"):
        with open(os.path.join(root, "lib/systemd/system", u)) as f:
            text = f.read()
        text = re.sub(r"(?m)^(ExecStart=[-@:+!]*)(/\S+)",
                      lambda m: m.group(1) + root + m.group(2), text)
        units.append(os.path.join(d, u))
        with open(units[-1], "w") as f:
            f.write(text)
    env = dict(os.environ, SYSTEMD_LOG_LEVEL="notice", SYSTEMD_COLORS="0",
               LC_ALL="C.UTF-8")
    rc, out = run([analyze, "verify", "--man=no"] + units, env=env,
                  timeout=120, cwd=d)
    lines = [l for l in out.splitlines() if l.strip()]
    if rc != 0 or lines:
        fail("systemd-analyze verify on the installed units: exit "
             "%d\n%s" % (rc, out))
    else:
        ok("systemd-analyze verify: the installed hellod.service and "
           "hellod.socket are clean")


def main():
    version = check_version()
    if failures:
        return report()
    missing = [t for t in ("dpkg-buildpackage", "dpkg-deb", "mmdebstrap")
               if shutil.which(t) is None]
    if missing:
        print("SKIP: %s not installed (Debian packages dpkg-dev, "
              "mmdebstrap, debhelper; ./bootstrap --tests installs them)"
              % ", ".join(missing))
        return SKIP
    if os.geteuid() != 0:
        print("SKIP: installing into a throw-away root needs root (chroot)")
        return SKIP
    if not BUILDDIR:
        print("FAIL: BUILDDIR is not set")
        return 1

    tmp = tempfile.mkdtemp(prefix="hellod-deb-", dir=BUILDDIR)
    try:
        deb = build_deb(tmp, version)
        tar = base_root(depends(deb))
        root = os.path.join(tmp, "root")
        os.mkdir(root)
        must(["tar", "-C", root, "-xf", tar], "tar -x")
        before = tree(root)

        shutil.copy(deb, os.path.join(root, "tmp", "hellod.deb"))
        rc, out = chroot(root, "dpkg", "-i", "/tmp/hellod.deb")
        if rc != 0:
            fail("dpkg -i hellod.deb: exit %d\n%s" % (rc, out))
            return report()
        ok("dpkg -i %s in a %s root" % (os.path.basename(deb), SUITE))
        missing = [p for p in EXPECTED
                   if not os.path.lexists(root + p)]
        if missing:
            fail("not installed: %s" % " ".join(missing))
        else:
            ok("installed: %s" % " ".join(EXPECTED))
        with open(os.path.join(root, "var/lib/dpkg/info/hellod.conffiles")) \
                as f:
            conffiles = f.read().split()
        if conffiles != ["/etc/hellod.conf"]:
            fail("conffiles %r, wanted /etc/hellod.conf" % conffiles)
        else:
            ok("/etc/hellod.conf is the one conffile")
        wants = os.path.join(root, "etc/systemd/system/multi-user.target."
                             "wants/hellod.service")
        sockets = os.path.join(root, "etc/systemd/system/sockets.target."
                               "wants/hellod.socket")
        if not os.path.islink(wants) or os.path.lexists(sockets):
            fail("enabled: hellod.service %s, hellod.socket %s (wanted "
                 "the service only)" % (os.path.lexists(wants),
                                        os.path.lexists(sockets)))
        else:
            ok("hellod.service enabled, hellod.socket not")
        rc, out = chroot(root, "/usr/sbin/hellod", "-v")
        # (Without /proc in the chroot, hellod warns that it cannot
        # upgrade in place; the version is the last line.)
        if rc != 0 or out.strip().splitlines()[-1:] != ["hellod " + version]:
            fail("hellod -v: exit %d: %r" % (rc, out))
        rc, out = chroot(root, "/usr/sbin/hellod", "-t", "-c",
                         "/etc/hellod.conf")
        if rc != 0 or "configuration OK" not in out:
            fail("hellod -t -c /etc/hellod.conf: exit %d: %s" % (rc, out))
        else:
            ok("hellod -v: %s; hellod -t accepts the packaged "
               "/etc/hellod.conf" % version)
        check_units(root, tmp)

        # A modified conffile survives an upgrade.
        conf = os.path.join(root, "etc/hellod.conf")
        with open(conf) as f:
            text = f.read()
        text = text.replace("listen = 0.0.0.0:8080",
                            "listen = 127.0.0.1:8088", 1)
        text += "# changed by the administrator\n"
        with open(conf, "w") as f:
            f.write(text)
        newer = repack(deb, tmp, version + "+1")
        shutil.copy(newer, os.path.join(root, "tmp", "hellod-newer.deb"))
        rc, out = chroot(root, "dpkg", "-i", "/tmp/hellod-newer.deb")
        with open(conf) as f:
            after = f.read()
        rc2, ver = chroot(root, "dpkg-query", "-W", "-f=${Version}",
                          "hellod")
        if rc != 0 or ver != version + "+1":
            fail("dpkg -i of %s+1: exit %d, installed %r\n%s"
                 % (version, rc, ver, out))
        elif after != text:
            fail("the upgrade to %s+1 replaced the modified "
                 "/etc/hellod.conf" % version)
        else:
            rc, out = chroot(root, "/usr/sbin/hellod", "-t")
            if rc != 0:
                fail("hellod -t on the kept configuration: %s" % out)
            else:
                ok("upgrade to %s+1 kept the modified /etc/hellod.conf"
                   % version)
        os.unlink(os.path.join(root, "tmp", "hellod.deb"))
        os.unlink(os.path.join(root, "tmp", "hellod-newer.deb"))

        rc, out = chroot(root, "apt-get", "purge", "-y", "-q", "hellod")
        if rc != 0:
            fail("apt-get purge hellod: exit %d\n%s" % (rc, out))
        left = tree(root)
        added = sorted(set(left) - set(before))
        removed = sorted(set(before) - set(left))
        changed = sorted(p for p in set(left) & set(before)
                         if left[p] != before[p])
        if added or removed or changed:
            fail("after apt-get purge: left behind %r, removed %r, changed "
                 "%r" % (added, removed, changed))
        else:
            ok("apt-get purge hellod: the root is as before (%d paths)"
               % len(before))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return report()


if __name__ == "__main__":
    sys.exit(main())
