#!/usr/bin/env python3
"""The container image (Containerfile), run by `make check-image'.

1. `make image' builds $IMAGE with podman; the image is at most 5 MiB
   and holds exactly hellod (static), its configuration, /etc/passwd,
   /etc/group and the licence: no shell (listed with podman export).
2. podman run --read-only --user 65534, ports published on 127.0.0.1
   only: the greeting on 8080, /healthz and /metrics on 9180.
3. podman stop -t 15 (SIGTERM): /healthz answers 503 during drain_notice
   (5s) while greetings still succeed; the container exits 0 after the
   notice and within the grace period.
4. arm64: `make hellod-arm64' cross-compiles a static hellod that serves
   the greeting under qemu-aarch64-static; `make image-arm64' builds an
   arm64 image whose binary does the same (copied out of the image: no
   binfmt_misc is needed).

Environment: IMAGE, IMAGE_ARM64, PODMAN, MAKE, SRCDIR, BUILDDIR (set by
make check-image).  Exit 0 pass, 1 fail, 77 without podman; the arm64
part is skipped with a message without gcc-aarch64-linux-gnu or
qemu-user-static.  About 2 minutes when the images are cached, the
first run (a Debian base from mmdebstrap, two builds) about 5.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (BUILDDIR, SKIP, SRCDIR, fail, failures, ok,  # noqa: E402
                    free_port)

IMAGE = os.environ.get("IMAGE", "localhost/hellod:latest")
IMAGE_ARM64 = os.environ.get("IMAGE_ARM64", IMAGE + "-arm64")
PODMAN = shlex.split(os.environ.get("PODMAN", "podman"))
MAKE = os.environ.get("MAKE", "make")
MAX_SIZE = 5 * 1024 * 1024
# The test harness's limits: podman's defaults exceed this machine's
# hard limits.  Not part of what users type.
RUN_LIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096"]
# podman's default bridge network is left alone: the container runs on a
# network of its own, removed with its bridge afterwards, and the builds
# use the host's network, so that no bridge is left behind on the host.
NETWORK = "hellod-image-test-%d" % os.getpid()
SUBNET = "198.19.77.0/24"  # the benchmarking range (RFC 2544)
BUILD_FLAGS = "PODMAN_BUILD_FLAGS=--network=host"
EXPECTED_FILES = {"usr/sbin/hellod", "etc/hellod.conf", "etc/passwd",
                  "etc/group", "usr/share/doc/hellod/LICENSE"}
T0 = time.monotonic()


def run(cmd, timeout=900, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=timeout, **kw)
    return p.returncode, p.stdout


def make(*targets):
    env = dict(os.environ)
    for k in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "GNUMAKEFLAGS"):
        env.pop(k, None)
    t = time.monotonic()
    rc, out = run([MAKE, "-C", BUILDDIR, BUILD_FLAGS] + list(targets),
                  env=env)
    if rc != 0:
        fail("make %s: exit %d\n%s" % (" ".join(targets), rc, out[-4000:]))
        return False
    ok("make %s (%.0f s)" % (" ".join(targets), time.monotonic() - t))
    return True


def get(port, path="/", timeout=2):
    """(status, body) of a GET, or (None, error)."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path),
                                    timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")
    except (OSError, urllib.error.URLError) as e:
        return None, str(e)


def wait_for(port, path="/", deadline=20):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        st, body = get(port, path)
        if st == 200:
            return body
        time.sleep(0.1)
    return None


GREETING = re.compile(r"^<html><body><h1>Hello [0-9a-f.:]+</h1></body>"
                      r"</html>$")


def image_files(image, tmp):
    """{path: (type, size)} of an image's file system (podman export)."""
    name = "hellod-export-%d" % os.getpid()
    run(PODMAN + ["rm", "-f", name])
    rc, out = run(PODMAN + ["create", "--name", name, image])
    if rc != 0:
        fail("podman create %s: %s" % (image, out))
        return {}
    tar = os.path.join(tmp, "export.tar")
    try:
        rc, out = run(PODMAN + ["export", "-o", tar, name])
    finally:
        run(PODMAN + ["rm", "-f", name])
    if rc != 0:
        fail("podman export: %s" % out)
        return {}
    files = {}
    with tarfile.open(tar) as t:
        for m in t.getmembers():
            files[m.name.lstrip("./")] = ("dir" if m.isdir() else
                                          "link" if m.issym() or m.islnk()
                                          else "file", m.size)
    return files


def check_image_contents(tmp):
    rc, out = run(PODMAN + ["image", "inspect", "--format",
                            "{{.Size}} {{.Architecture}} {{.Config.User}}",
                            IMAGE])
    if rc != 0:
        fail("podman image inspect %s: %s" % (IMAGE, out))
        return
    size, arch, user = out.split()
    size = int(size)
    if size > MAX_SIZE:
        fail("%s is %d bytes, over 5 MiB" % (IMAGE, size))
    else:
        ok("%s: %d bytes (%.2f MiB), %s, user %s"
           % (IMAGE, size, size / 1048576, arch, user))
    if user != "65534:65534":
        fail("the image runs as %r, not 65534:65534" % user)
    files = image_files(IMAGE, tmp)
    regular = {p: s for p, (t, s) in files.items() if t == "file"}
    for p, s in sorted(regular.items()):
        print("  %8d  /%s" % (s, p))
    links = sorted(p for p, (t, _) in files.items() if t == "link")
    if links:
        fail("links in the image: %r" % links)
    if set(regular) != EXPECTED_FILES:
        fail("the image holds %r, wanted exactly %r"
             % (sorted(regular), sorted(EXPECTED_FILES)))
    elif any(os.path.basename(p) in ("sh", "bash", "busybox")
             for p in files):
        fail("a shell in the image")
    else:
        ok("the image holds exactly %d files (%d bytes), no shell"
           % (len(regular), sum(regular.values())))


def check_run():
    http, status = free_port(), free_port()
    name = "hellod-test-%d" % os.getpid()
    run(PODMAN + ["rm", "-f", name])
    cmd = PODMAN + ["run", "-d", "--name", name, "--read-only",
                    "--user", "65534", "--network", NETWORK] + RUN_LIMITS + [
        "-p", "127.0.0.1:%d:8080" % http,
        "-p", "127.0.0.1:%d:9180" % status, IMAGE]
    rc, out = run(cmd, timeout=120)
    if rc != 0:
        fail("%s: exit %d\n%s" % (" ".join(cmd), rc, out))
        return
    try:
        body = wait_for(http)
        if body is None or not GREETING.match(body):
            fail("no greeting from the container on 127.0.0.1:%d: %r"
                 % (http, body))
            print(run(PODMAN + ["logs", name])[1])
            return
        ok("podman run --read-only --user 65534: %s" % body)
        st, hz = get(status, "/healthz")
        st2, metrics = get(status, "/metrics")
        version = os.environ.get("HELLOD_VERSION") or version_of_image()
        if st != 200:
            fail("/healthz: %r %r" % (st, hz))
        elif st2 != 200 or 'hellod_build_info{version="%s"' % version \
                not in metrics:
            fail("/metrics: %r, no hellod_build_info of %s" % (st2, version))
        else:
            ok("/healthz 200, /metrics with hellod_build_info %s" % version)

        # podman stop: SIGTERM, drain_notice, exit 0.
        t = time.monotonic()
        stop = subprocess.Popen(PODMAN + ["stop", "-t", "15", name],
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                universal_newlines=True)
        seen503 = None
        while time.monotonic() - t < 4:
            st, _ = get(status, "/healthz", timeout=1)
            if st == 503:
                seen503 = time.monotonic() - t
                break
            time.sleep(0.05)
        greet, _ = get(http)
        greeted = time.monotonic() - t
        out, _ = stop.communicate(timeout=30)
        took = time.monotonic() - t
        rc, code = run(PODMAN + ["inspect", name, "--format",
                                 "{{.State.ExitCode}}"])
        if seen503 is None:
            fail("/healthz never answered 503 after podman stop")
        elif greet != 200:
            fail("a greeting during drain_notice got %r" % greet)
        elif stop.returncode != 0 or code.strip() != "0":
            fail("podman stop: exit %d, container exit code %r\n%s"
                 % (stop.returncode, code.strip(), out))
        elif not 4.5 <= took < 15:
            fail("podman stop took %.1f s: not after drain_notice (5 s) "
                 "and within the grace period (15 s)" % took)
        else:
            ok("podman stop -t 15: /healthz 503 after %.2f s, a greeting "
               "200 at %.2f s, exit 0 after %.1f s"
               % (seen503, greeted, took))
    finally:
        run(PODMAN + ["rm", "-f", name])


def remove_network():
    rc, bridge = run(PODMAN + ["network", "inspect", "--format",
                               "{{.NetworkInterface}}", NETWORK])
    run(PODMAN + ["network", "rm", "-f", NETWORK])
    bridge = bridge.strip()
    if rc == 0 and bridge and os.path.exists("/sys/class/net/" + bridge):
        run(["ip", "link", "delete", bridge])
    if rc == 0 and bridge and os.path.exists("/sys/class/net/" + bridge):
        fail("the bridge %s of %s is left behind" % (bridge, NETWORK))


def version_of_image():
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        return re.search(r"AC_INIT\(\[[^]]*\], \[([^]]+)\]",
                         f.read()).group(1)


def serve_under_qemu(qemu, binary, tmp, what):
    port = free_port()
    conf = os.path.join(tmp, "arm64.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\nworkers = 1\n"
                "[log]\nerror_log = stderr\n" % port)
    rc, out = run(["file", "-b", binary])
    p = subprocess.Popen([qemu, binary, "--foreground", "-c", conf],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         universal_newlines=True)
    try:
        body = wait_for(port, deadline=30)
    finally:
        p.terminate()
        try:
            log, _ = p.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            log, _ = p.communicate()
    if body is None or not GREETING.match(body) or p.returncode != 0:
        fail("%s under %s: %r, exit %r\n%s" % (what, qemu, body,
                                                p.returncode, log))
    else:
        ok("%s (%s, %d bytes) under qemu-aarch64-static: %s, exit 0"
           % (what, ",".join(out.strip().split(",")[:2]), os.path.getsize(binary),
              body))


def check_arm64(tmp):
    qemu = shutil.which("qemu-aarch64-static")
    cc = shutil.which("aarch64-linux-gnu-gcc")
    if qemu is None or cc is None:
        print("SKIP arm64: gcc-aarch64-linux-gnu, libev-dev:arm64, "
              "libinih-dev:arm64 and qemu-user-static are needed "
              "(./bootstrap --tests installs them)")
        return False
    if make("hellod-arm64"):
        serve_under_qemu(qemu, os.path.join(BUILDDIR, "arm64", "src",
                                            "hellod"), tmp,
                         "make hellod-arm64")
    if not make("image-arm64"):
        return True
    rc, out = run(PODMAN + ["image", "inspect", "--format",
                            "{{.Size}} {{.Architecture}}", IMAGE_ARM64])
    size, arch = out.split() if rc == 0 else ("0", out)
    if arch != "arm64" or int(size) > MAX_SIZE:
        fail("%s: %s, %s bytes" % (IMAGE_ARM64, arch, size))
    else:
        ok("%s: %s bytes, arm64" % (IMAGE_ARM64, size))
    files = image_files(IMAGE_ARM64, tmp)
    if set(p for p, (t, _) in files.items() if t == "file") != \
            EXPECTED_FILES:
        fail("%s holds %r" % (IMAGE_ARM64, sorted(files)))
    d = os.path.join(tmp, "arm64-image")
    os.mkdir(d)
    with tarfile.open(os.path.join(tmp, "export.tar")) as t:
        t.extract("usr/sbin/hellod", d)
    serve_under_qemu(qemu, os.path.join(d, "usr/sbin/hellod"), tmp,
                     "the hellod of " + IMAGE_ARM64)
    return True


def main():
    if shutil.which(PODMAN[0]) is None:
        print("SKIP: podman is not installed (Debian packages podman, "
              "buildah, runc; ./bootstrap --tests installs them)")
        return SKIP
    if not BUILDDIR:
        print("FAIL: BUILDDIR is not set")
        return 1
    tmp = tempfile.mkdtemp(prefix="hellod-image-")
    try:
        if make("image"):
            check_image_contents(tmp)
            rc, out = run(PODMAN + ["network", "create", "--subnet", SUBNET,
                                    NETWORK])
            if rc != 0:
                fail("podman network create: %s" % out)
            else:
                try:
                    check_run()
                finally:
                    remove_network()
        check_arm64(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("%.0f s" % (time.monotonic() - T0))
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
