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
(d) "hellod -t -c conf/hellod.conf" prints "configuration OK: FILE".
(e) The EXAMPLES section of hellod.conf(5) shows every key of keys[] under
    its [section] in the display it says has every key, and nothing else.
(f) Every "N sections" in hellod.conf(5), conf/hellod.conf and README.md
    counts the sections of keys[], and the sentence names each of them.
(g) The pages made in BUILDDIR (man/hellod.8, man/hellod.conf.5, from the
    .in files) name the configuration file in the configured sysconfdir,
    and no placeholder is left.
(h) Every nginx upstream block with "keepalive" in README.md and deploy/
    has a "keepalive_timeout" below hellod's keepalive_timeout in force
    (deploy/hellod.conf's, otherwise the built-in default of
    src/config.c): nginx must close an idle upstream connection before
    hellod does, or a request sent on it as hellod closes it fails.

The pages are written as man/hellod.8.in and man/hellod.conf.5.in (with
@sysconfdir@); (a) and (b) read those, (c) lints the made pages.

Environment: SRCDIR, BUILDDIR, HELLOD, MAKE (set by make check).  Exit 0
pass, 1 fail, 77 when mandoc is not installed (after every other check
passed).
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
    """(section, key) of every key hellod accepts: keys[] in src/config.c,
    and the [tls] keys, which src/config.c hands to src/tls_conf.c."""
    text = read("src/config.c")
    block = c_block(text, "keys", "src/config.c")
    keys = re.findall(r'\{\s*"([a-z0-9_]+)"\s*,\s*"([a-z0-9_]+)"\s*,', block)
    if len(keys) < 5:
        raise SystemExit("FAIL: src/config.c: only %d entries parsed from "
                         "keys[]; has the table's layout changed?" % len(keys))
    tls = re.findall(r'"([a-z0-9_]+)"',
                     c_block(read("src/tls_conf.c"), "tls_keys",
                             "src/tls_conf.c"))
    if len(tls) < 5:
        raise SystemExit("FAIL: src/tls_conf.c: only %d entries parsed from "
                         "tls_keys[]" % len(tls))
    return keys + [("tls", k) for k in tls]


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
    page = "man/hellod.conf.5.in"
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
    page = "man/hellod.8.in"
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
        path = os.path.join(BUILDDIR, page)
        if not os.path.exists(path):
            path = os.path.join(SRCDIR, page + ".in")
        p = subprocess.run([mandoc, "-Tlint", "-W", "warning", path],
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


# --- (e) EXAMPLES shows every key ----------------------------------------------

def mdoc_displays(text, sh):
    """The literal displays (.Bd -literal ... .Ed) of section `sh` of an
    mdoc page, each as (the text before it in the section, its lines)."""
    out = []
    inside, display, before = False, None, []
    for line in text.splitlines():
        if line.startswith(".Sh "):
            inside = line[4:].strip() == sh
            continue
        if not inside:
            continue
        if display is None and line.startswith(".Bd -literal"):
            display = []
        elif display is not None and line.startswith(".Ed"):
            out.append((" ".join(before), display))
            display, before = None, []
        elif display is not None:
            display.append(line)
        else:
            before.append(line)
    return out


def check_examples():
    keys = set(config_keys())
    page = "man/hellod.conf.5.in"
    displays = mdoc_displays(read(page), "EXAMPLES")
    full = [d for before, d in displays if "every key" in before]
    if not full:
        fail("%s: no display in EXAMPLES introduced as showing every key"
             % page)
        return
    shown = set()
    for n, section, line in ini_lines("\n".join(full[0])):
        m = re.match(r"([A-Za-z0-9_]+)\s*=", line)
        if m:
            shown.add((section, m.group(1)))
    for sec, key in sorted(keys - shown):
        fail("%s: EXAMPLES says it shows every key, but [%s] %s is "
             "missing" % (page, sec, key))
    for sec, key in sorted(shown - keys):
        fail("%s: EXAMPLES sets [%s] %s, which src/config.c does not "
             "accept" % (page, sec, key))
    if shown == keys:
        ok("%s: EXAMPLES shows the %d keys of src/config.c"
           % (page, len(keys)))


# --- (f) section counts -----------------------------------------------------------

NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
           "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def config_sections():
    """The sections of keys[], and those src/config.c hands to another
    file by name (strcmp(section, "tls"))."""
    text = read("src/config.c")
    return {sec for sec, _ in config_keys()} | set(
        re.findall(r'strcmp\(section,\s*"([a-z]+)"\)\s*==\s*0', text))


def check_section_counts():
    sections = config_sections()
    claims = 0
    before = len(failures)
    # The packaged file's opening comment names the sections.
    head = []
    for line in read("conf/hellod.conf").splitlines():
        if not line.startswith("#"):
            break
        head.append(line)
    named = set(re.findall(r"\[([a-z]+)\]", " ".join(head)))
    if named and named != sections:
        fail("conf/hellod.conf: the opening comment names the sections %s, "
             "src/config.c has %s" % (sorted(named), sorted(sections)))
    for rel in ("man/hellod.conf.5.in", "conf/hellod.conf", "README.md"):
        text = read(rel)
        # One paragraph: mdoc macros and comment leaders do not count.
        flat = re.sub(r"(?m)^[#;]\s?|^\.[A-Z][a-z]\s?", "", text)
        flat = re.sub(r"\s+", " ", flat)
        for m in re.finditer(r"\b(%s|\d+) sections\b([^.]*)"
                             % "|".join(NUMBERS), flat, re.I):
            claims += 1
            word = m.group(1).lower()
            n = NUMBERS.get(word) or int(word)
            if n != len(sections):
                fail("%s: says \"%s\", but src/config.c has %d sections "
                     "(%s)" % (rel, m.group(0)[:60], len(sections),
                               ", ".join(sorted(sections))))
            named = set(re.findall(r"\[([a-z]+)\]", m.group(2)))
            if named and named != sections:
                fail("%s: \"%s\" names %s, src/config.c has %s"
                     % (rel, m.group(0)[:80], sorted(named),
                        sorted(sections)))
    if len(failures) == before:
        ok("%d section count(s) and conf/hellod.conf's list checked "
           "against the %d sections of src/config.c"
           % (claims, len(sections)))


# --- (g) the made pages name the configured paths ------------------------------

def configured_dirs():
    make = os.environ.get("MAKE") or "make"
    p = subprocess.run([make, "-s", "-C", BUILDDIR, "print-dirs"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       universal_newlines=True, timeout=120)
    if p.returncode != 0:
        fail("%s -C %s print-dirs: %s" % (make, BUILDDIR, p.stdout))
        return {}
    return dict(l.split("=", 1) for l in p.stdout.splitlines() if "=" in l)


def check_made_pages():
    if not BUILDDIR:
        fail("BUILDDIR is not set: the made pages cannot be checked")
        return
    sysconfdir = configured_dirs().get("sysconfdir")
    if not sysconfdir:
        return
    for page in ("man/hellod.8", "man/hellod.conf.5"):
        path = os.path.join(BUILDDIR, page)
        if not os.path.exists(path):
            fail("%s: not made from %s.in in the build directory"
                 % (path, page))
            continue
        with open(path, encoding="utf-8") as f:
            text = f.read()
        left = sorted(set(re.findall(r"@[A-Za-z_]+@", text)))
        if left:
            fail("%s: placeholders left: %s" % (path, " ".join(left)))
        dirs = re.findall(r"(/[\w./-]*)/hellod\.conf\b", text)
        if not dirs:
            fail("%s: names no configuration file" % path)
        for d in sorted(set(dirs) - {sysconfdir}):
            fail("%s: names %s/hellod.conf, but this build reads "
                 "%s/hellod.conf" % (path, d, sysconfdir))
        if dirs and set(dirs) == {sysconfdir}:
            ok("%s names %s/hellod.conf" % (page, sysconfdir))


# --- (h) nginx closes idle upstream connections before hellod -------------

def duration_ms(text, bare):
    """"4s", "500ms", "1m", "1h"; a bare number is in unit `bare`."""
    m = re.fullmatch(r"(\d+)(ms|s|m|h)?", text.strip())
    if m is None:
        return None
    mul = {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}
    return int(m.group(1)) * mul[m.group(2) or bare]


def hellod_keepalive_ms(rel):
    """keepalive_timeout of the hellod configuration file rel (None: the
    file does not set it), or src/config.c's default."""
    if rel is not None:
        for n, section, line in ini_lines(read(rel)):
            m = re.match(r"keepalive_timeout\s*=\s*([^\s;#]+)", line)
            if section == "http" and m:
                return duration_ms(m.group(1), "s")
    m = re.search(r"cf_keepalive_timeout\s*=\s*(\d+)\s*;",
                  read("src/config.c"))
    return int(m.group(1)) if m else None


def upstream_blocks(text):
    """(line number, lines) of each nginx `upstream NAME {` block, taken
    from the column where `upstream` starts, so that a block printed
    beside another text (README's two columns) reads alone."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        m = re.search(r"\bupstream\s+[\w.-]+\s*\{", line)
        if m is None or line.lstrip().startswith("#"):
            continue
        col, body = m.start(), []
        for rest in lines[i + 1:]:
            part = rest[col:].strip() if len(rest) > col else ""
            if part.startswith("}"):
                break
            body.append(part)
        yield i + 1, body


def check_upstream_keepalive():
    sources = [("README.md", None)]
    deploy = os.path.join(SRCDIR, "deploy")
    for name in sorted(os.listdir(deploy)):
        path = os.path.join(deploy, name)
        if os.path.isfile(path):
            sources.append((os.path.join("deploy", name),
                            "deploy/hellod.conf"))
    checked = 0
    for rel, conf in sources:
        hellod_ms = hellod_keepalive_ms(conf)
        for n, body in upstream_blocks(read(rel)):
            code = [b.split("#", 1)[0] for b in body]
            if not any(re.match(r"keepalive\s+\d+\s*;", c) for c in code):
                continue
            checked += 1
            t = [re.match(r"keepalive_timeout\s+(\S+?)\s*;", c)
                 for c in code]
            t = [m.group(1) for m in t if m]
            if not t:
                fail("%s:%d: upstream with keepalive but no "
                     "keepalive_timeout (nginx's default, 60s, outlives "
                     "hellod's %dms)" % (rel, n, hellod_ms))
                continue
            ms = duration_ms(t[0], "s")
            if ms is None or hellod_ms is None or ms >= hellod_ms:
                fail("%s:%d: upstream keepalive_timeout %s is not below "
                     "hellod's keepalive_timeout (%sms)"
                     % (rel, n, t[0], hellod_ms))
            else:
                ok("%s:%d: upstream keepalive_timeout %s < hellod's %dms"
                   % (rel, n, t[0], hellod_ms))
    if checked == 0:
        fail("no nginx upstream block with keepalive found in README.md "
             "or deploy/")


def main():
    check_keys()
    check_examples()
    check_section_counts()
    check_options()
    have_mandoc = check_mandoc()
    check_made_pages()
    check_upstream_keepalive()
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
