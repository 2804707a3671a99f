#!/usr/bin/env python3
"""Documentation against the code.

(a) Every key of the keys[] table in src/config.c is documented in
    hellod.conf(5) (an ".It Cm key" item under the section's ".Sh" heading)
    and set in the packaged conf/hellod.conf (as "key =" under its
    [section]); and nothing is documented or packaged that the parser does
    not accept.
(b) Every long option of longopts[] in src/main.c has an ".It" item in the
    OPTIONS section of hellod(8) naming "Fl -long", and also "Fl x" when
    the option has a short form in the getopt_long() option string; and
    the page documents no option the program does not have.
(c) "mandoc -Tlint -W warning" is silent on both pages and exits 0.
(d) "hellod -t -c conf/hellod.conf" prints "configuration OK".

Environment: SRCDIR, BUILDDIR, HELLOD (set by make check).  Exit 0 pass,
1 fail, 77 when mandoc is not installed (after every other check passed).
"""

import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (BUILDDIR, HELLOD, SKIP, SRCDIR, fail,  # noqa: E402
                    failures, ini_lines, ok)


def read(rel):
    with open(os.path.join(SRCDIR, rel), encoding="utf-8") as f:
        return f.read()


def c_block(text, name, path):
    """The initializer of `name[] = { ... };` in a C source."""
    m = re.search(r"\b%s\s*\[\s*\]\s*=\s*\{(.*?)\n\s*\}\s*;" % re.escape(name),
                  text, re.S)
    if m is None:
        raise SystemExit("FAIL: %s: no %s[] table found" % (path, name))
    # Drop comments so that a commented-out entry does not count.
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", m.group(1), flags=re.S)


def config_keys():
    text = read("src/config.c")
    block = c_block(text, "keys", "src/config.c")
    keys = re.findall(r'\{\s*"([a-z0-9_]+)"\s*,\s*"([a-z0-9_]+)"\s*,', block)
    if len(keys) < 5:
        raise SystemExit("FAIL: src/config.c: only %d entries parsed from "
                         "keys[]; has the table's layout changed?" % len(keys))
    return keys


def long_options():
    text = read("src/main.c")
    block = c_block(text, "longopts", "src/main.c")
    m = re.search(r'getopt_long\s*\([^,]+,[^,]+,\s*"([^"]*)"', text)
    if m is None:
        raise SystemExit("FAIL: src/main.c: no getopt_long() option string")
    optstring = m.group(1)
    opts = []
    for name, val in re.findall(
            r'\{\s*"([^"]+)"\s*,[^,]*,[^,]*,\s*([^}]*?)\s*\}', block):
        short = None
        cm = re.fullmatch(r"'(.)'", val)
        if cm and cm.group(1) in optstring.replace(":", ""):
            short = cm.group(1)
        opts.append((name, short))
    if len(opts) < 3:
        raise SystemExit("FAIL: src/main.c: only %d entries parsed from "
                         "longopts[]" % len(opts))
    return opts


def mdoc_lines(text):
    """Macro lines of an mdoc page, with \\- unescaped, as token lists."""
    out = []
    for line in text.splitlines():
        if line.startswith("."):
            out.append(line.replace("\\-", "-").split())
    return out


# --- (a) configuration keys -------------------------------------------------

def check_keys():
    keys = config_keys()
    page = "man/hellod.conf.5"
    documented = {}             # (section, key) -> number of items
    section = None
    for tok in mdoc_lines(read(page)):
        if tok[0] == ".Sh":
            m = re.fullmatch(r"([A-Z]+) SECTION", " ".join(tok[1:]))
            section = m.group(1).lower() if m else None
        elif tok[0] == ".It" and section and len(tok) >= 3 \
                and tok[1] == "Cm":
            k = (section, tok[2])
            documented[k] = documented.get(k, 0) + 1

    conf = "conf/hellod.conf"
    packaged = {}               # (section, key) -> line number
    for n, section, line in ini_lines(read(conf)):
        m = re.match(r"([A-Za-z0-9_]+)\s*=", line)
        if m:
            if (section, m.group(1)) in packaged:
                fail("%s:%d: [%s] %s set twice" % (conf, n, section,
                                                   m.group(1)))
            packaged[(section, m.group(1))] = n

    for sec, key in keys:
        if documented.get((sec, key), 0) == 0:
            fail("%s: [%s] %s is accepted by src/config.c but has no "
                 "'.It Cm %s' item under '.Sh %s SECTION'"
                 % (page, sec, key, key, sec.upper()))
        elif documented[(sec, key)] > 1:
            fail("%s: [%s] %s is documented %d times"
                 % (page, sec, key, documented[(sec, key)]))
        if (sec, key) not in packaged:
            fail("%s: [%s] %s is accepted by src/config.c but not set "
                 "('%s = ...') in the packaged file" % (conf, sec, key, key))
    known = set(keys)
    for sec, key in sorted(set(documented) - known):
        fail("%s: documents [%s] %s, which src/config.c does not accept"
             % (page, sec, key))
    for sec, key in sorted(set(packaged) - known):
        fail("%s:%d: sets [%s] %s, which src/config.c does not accept"
             % (conf, packaged[(sec, key)], sec, key))
    ok("%d keys of src/config.c checked against %s and %s"
       % (len(keys), page, conf))


# --- (b) command line options -----------------------------------------------

def check_options():
    opts = long_options()
    page = "man/hellod.8"
    items = []
    in_options = False
    for tok in mdoc_lines(read(page)):
        if tok[0] == ".Sh":
            in_options = tok[1:] == ["OPTIONS"]
        elif tok[0] == ".It" and in_options:
            items.append(tok)
    if not items:
        fail("%s: no .It items in the OPTIONS section" % page)

    def flags(tok):
        return {tok[i + 1] for i in range(len(tok) - 1) if tok[i] == "Fl"}

    names = set()
    for name, short in opts:
        names.add(name)
        hit = [t for t in items if "-" + name in flags(t)]
        if not hit:
            fail("%s: option --%s (src/main.c longopts[]) has no "
                 "'.It ... Fl -%s' item in OPTIONS" % (page, name, name))
            continue
        if short and not any(short in flags(t) for t in hit):
            fail("%s: the item of --%s does not name its short form "
                 "'Fl %s'" % (page, name, short))
    for t in items:
        for f in flags(t):
            if f.startswith("-") and f[1:] not in names:
                fail("%s: documents option %s, which src/main.c's "
                     "longopts[] does not have" % (page, f))
    ok("%d long options of src/main.c checked against %s"
       % (len(opts), page))


# --- (c) mandoc lint -----------------------------------------------------------

def check_mandoc():
    mandoc = shutil.which("mandoc")
    if mandoc is None:
        return False
    for page in ("man/hellod.8", "man/hellod.conf.5"):
        p = subprocess.run([mandoc, "-Tlint", "-W", "warning",
                            os.path.join(SRCDIR, page)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=60)
        # Only messages about the page count; "STYLE:" cannot appear with
        # -W warning, and notes about the system's mandoc.db are not about
        # the page.
        msgs = [l for l in p.stdout.splitlines()
                if l.strip() and ": STYLE: " not in l
                and "mandoc.db" not in l]
        if p.returncode != 0 or msgs:
            fail("mandoc -Tlint -W warning %s: exit %d\n%s"
                 % (page, p.returncode, p.stdout.rstrip()))
        else:
            ok("mandoc -Tlint -W warning %s: clean" % page)
    return True


# --- (d) the packaged configuration is valid ------------------------------

def check_conf():
    conf = os.path.join(SRCDIR, "conf", "hellod.conf")
    if not os.access(HELLOD, os.X_OK):
        fail("%s: no built hellod (set HELLOD or BUILDDIR)" % HELLOD)
        return
    p = subprocess.run([HELLOD, "-t", "-c", conf], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True,
                       timeout=60)
    if p.returncode != 0 or p.stdout != "configuration OK: %s\n" % conf \
            or p.stderr != "":
        fail("hellod -t -c conf/hellod.conf: exit %d, stdout %r, stderr %r "
             "(the packaged user and group must exist on this system)"
             % (p.returncode, p.stdout, p.stderr))
    else:
        ok("hellod -t -c conf/hellod.conf: configuration OK")


def main():
    check_keys()
    check_options()
    have_mandoc = check_mandoc()
    check_conf()
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    if not have_mandoc:
        print("SKIP: mandoc is not installed (Debian package mandoc); "
              "the pages were not linted, every other check passed")
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
