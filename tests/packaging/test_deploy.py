#!/usr/bin/env python3
"""The deployment examples in deploy/, and how they fit together.

(a) hellod: "hellod -t" accepts deploy/hellod.conf and the hellod.conf
    that deploy/kubernetes/configmap.yaml holds.
(b) HAProxy: "haproxy -c -f deploy/haproxy.cfg" accepts the file; its
    servers are deploy/hellod.conf's proxy_listen port with send-proxy-v2,
    its health checks "GET /healthz" on the [status] port, the frontend
    address is in [proxy] trusted, and drain_notice is longer than
    inter x fall (the balancer marks a stopping hellod DOWN before it
    stops).
(c) nginx: "nginx -t" accepts deploy/nginx.conf, run on a copy whose pid
    and log files are in a temporary directory and whose listen addresses
    are free ports of 127.0.0.1 (nginx -t binds them), so that it works
    unprivileged.  Without the stream module (Debian package
    libnginx-mod-stream) the stream block is left out of the check.  The
    http upstream is hellod's listen port, with X-Forwarded-For and
    [proxy] header = x-forwarded-for, the stream upstream its proxy_listen
    port, the listen address is trusted, and nginx closes idle upstream
    connections before hellod's keepalive_timeout would.
(d) Kubernetes: every deploy/kubernetes/*.yaml is read by a strict YAML
    subset parser (block mappings and sequences, plain and quoted scalars,
    flow sequences of scalars, literal block scalars; no tabs, anchors,
    tags, duplicate keys or plain scalars that YAML 1.1 and 1.2 read
    differently, such as yes, on or 0755) and the objects are checked
    against each other: selectors and labels, the ConfigMap mounted where
    the command's -c points and --foreground given, the Service's
    targetPort and the http containerPort are hellod's listen port, both
    probes GET /healthz on the status port, the status listener on all
    addresses, terminationGracePeriodSeconds >= drain_notice +
    shutdown_timeout, the readiness probe failing within drain_notice and
    the liveness probe not, workers a number within the CPU limit, no file
    written with a read-only root file system, externalTrafficPolicy
    Local.  Also: the Deployment's image is the one `make image` builds
    (IMAGE_NAME in Makefile.am, the version of configure.ac's AC_INIT);
    the pod meets the restricted Pod Security Standard (runAsNonRoot,
    allowPrivilegeEscalation false, capabilities drop ALL, seccomp
    RuntimeDefault, a read-only root file system); topologySpread-
    Constraints over kubernetes.io/hostname; a PodDisruptionBudget, a
    NetworkPolicy and a PodMonitor that select the pods, the policy
    opening the http port to all and the status port only to selected
    peers, the PodMonitor scraping /metrics on the status port; and
    kustomization.yaml lists every other file.
(e) Kubernetes schema: where npm and node are installed, the npm packages
    yaml and kubernetes-models are installed into a temporary directory;
    each file must parse (YAML 1.2, unique keys) to exactly what (d) read,
    and validate against its kind's schema; the PodMonitor (a custom
    resource) against @kubernetes-models/prometheus-operator's.
    kustomization.yaml is no Kubernetes object and has no schema there:
    (d) checks its fields.  Without npm, or when the
    registry cannot be reached, this check is skipped with a message.

Environment: SRCDIR, HELLOD (set by make check).  Exit 0 pass, 1 fail, 77
when a tool is missing (haproxy, nginx, npm: after every other check
passed); each missing tool skips only its own check.
"""

import glob
import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checks import (HELLOD, SKIP, SRCDIR, fail, failures, ok,  # noqa: E402
                    free_port)

DEPLOY = os.path.join(SRCDIR, "deploy")
NPM_PACKAGES = ("yaml@2.8.1", "kubernetes-models@4.5.1",
                "@kubernetes-models/prometheus-operator@5.0.1")
skipped = []


def skip(msg):
    skipped.append(msg)
    print("SKIP: " + msg)


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def tool(name):
    path = shutil.which(name)
    if path is None:
        for d in ("/usr/sbin", "/sbin"):
            if os.access(os.path.join(d, name), os.X_OK):
                return os.path.join(d, name)
    return path


# --- hellod.conf ---

def parse_ini(text):
    """{(section, key): [values]} of a hellod.conf text."""
    out = {}
    section = None
    for line in text.splitlines():
        s = re.sub(r"\s[;#].*$", "", line).strip()
        if not s or s[0] in "#;":
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
            continue
        k, _, v = s.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return out


def ini_get(ini, section, key, default=None):
    v = ini.get((section, key))
    return " ".join(v) if v else default


def duration(text):
    """Seconds of a hellod.conf(5) duration."""
    m = re.match(r"^(\d+)(ms|s|m)?$", text.strip())
    if not m:
        raise ValueError("not a duration: %r" % text)
    return int(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60,
                              None: 1}[m.group(2)]


def addresses(value):
    """[(host, port)] of a listen value."""
    out = []
    for a in re.split(r"[\s,]+", value.strip()):
        if a:
            host, _, port = a.rpartition(":")
            out.append((host.strip("[]"), int(port)))
    return out


def hellod_t(text, what):
    """hellod -t on a configuration text."""
    with tempfile.TemporaryDirectory(prefix="hellod-deploy-") as d:
        path = os.path.join(d, "hellod.conf")
        with open(path, "w") as f:
            f.write(text)
        p = subprocess.run([HELLOD, "-t", "-c", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True,
                           timeout=30)
    if p.returncode == 0 and "configuration OK" in p.stdout:
        ok("hellod -t accepts %s" % what)
    else:
        fail("hellod -t on %s: exit %d: %s" % (what, p.returncode,
                                                p.stdout.strip()))


class HellodConf:
    def __init__(self, text):
        self.ini = ini = parse_ini(text)
        self.listen = addresses(ini_get(ini, "server", "listen",
                                        "0.0.0.0:8080"))
        self.proxy_listen = addresses(ini_get(ini, "server", "proxy_listen",
                                              ""))
        self.status = addresses(ini_get(ini, "status", "listen", ""))
        self.drain_notice = duration(ini_get(ini, "status", "drain_notice",
                                             "0s"))
        self.shutdown_timeout = duration(ini_get(ini, "server",
                                                 "shutdown_timeout", "10s"))
        self.keepalive = duration(ini_get(ini, "http", "keepalive_timeout",
                                          "5s"))
        self.trusted = [ipaddress.ip_network(n, strict=False) for n in
                        ini_get(ini, "proxy", "trusted", "").split()]
        self.header = ini_get(ini, "proxy", "header", "none")
        self.workers = ini_get(ini, "server", "workers", "auto")

    def ports(self, which):
        return sorted({p for _, p in getattr(self, which)})

    def trusts(self, addr):
        a = ipaddress.ip_address(addr)
        return any(a in n for n in self.trusted)


# --- HAProxy ---

def haproxy_time(text):
    """Seconds of an HAProxy time (a bare number is milliseconds)."""
    m = re.match(r"^(\d+)(us|ms|s|m|h|d)?$", text)
    if not m:
        raise ValueError("not an HAProxy time: %r" % text)
    return int(m.group(1)) * {"us": 1e-6, "ms": 0.001, "s": 1, "m": 60,
                              "h": 3600, "d": 86400, None: 0.001}[m.group(2)]


def check_haproxy(conf):
    before = len(failures)
    path = os.path.join(DEPLOY, "haproxy.cfg")
    text = read(path)
    lines = [re.sub(r"\s+#.*$", "", l).strip() for l in text.splitlines()]
    lines = [l for l in lines if l and not l.startswith("#")]
    servers = [l.split() for l in lines if l.startswith("server ")]
    defaults = [l.split()[1:] for l in lines
                if l.startswith("default-server ")]
    default = defaults[0] if defaults else []
    if not servers:
        fail("haproxy.cfg: no server line")
    for s in servers:
        opts = default + s[3:]
        port = int(s[2].rsplit(":", 1)[1])
        if port not in conf.ports("proxy_listen"):
            fail("haproxy.cfg: server %s port %d is not a proxy_listen port "
                 "of deploy/hellod.conf %r" % (s[1], port,
                                               conf.ports("proxy_listen")))
        if "send-proxy-v2" not in opts and "send-proxy" not in opts:
            fail("haproxy.cfg: server %s sends no PROXY header to the "
                 "proxy_listen port" % s[1])
        if "check" not in opts:
            fail("haproxy.cfg: server %s is not health-checked" % s[1])
        if "check-send-proxy" in opts:
            fail("haproxy.cfg: check-send-proxy, but the status listener "
                 "speaks plain HTTP")
        if "port" not in opts or int(opts[opts.index("port") + 1]) \
                not in conf.ports("status"):
            fail("haproxy.cfg: server %s is not checked on the [status] "
                 "port %r" % (s[1], conf.ports("status")))
        inter = haproxy_time(opts[opts.index("inter") + 1]) \
            if "inter" in opts else 2.0
        fall = int(opts[opts.index("fall") + 1]) if "fall" in opts else 3
        if not conf.drain_notice > inter * fall:
            fail("hellod.conf: drain_notice %gs is not longer than "
                 "HAProxy's inter x fall = %gs for %s"
                 % (conf.drain_notice, inter * fall, s[1]))
    if not any(re.match(r"option httpchk (GET )?/healthz$", l)
               for l in lines):
        fail("haproxy.cfg: no `option httpchk GET /healthz`")
    for l in lines:
        m = re.match(r"bind ([\d.]+):\d+", l)
        if m and not conf.trusts(m.group(1)):
            fail("haproxy.cfg binds %s, which [proxy] trusted of "
                 "hellod.conf does not name" % m.group(1))
    if len(failures) == before:
        ok("haproxy.cfg agrees with hellod.conf (ports, PROXY v2, "
           "/healthz, drain_notice)")

    exe = tool("haproxy")
    if exe is None:
        skip("haproxy is not installed (Debian package haproxy): "
             "haproxy -c not run")
        return
    p = subprocess.run([exe, "-c", "-f", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True,
                       timeout=30)
    if p.returncode == 0:
        ok("haproxy -c -f deploy/haproxy.cfg")
    else:
        fail("haproxy -c -f deploy/haproxy.cfg: exit %d:\n%s"
             % (p.returncode, p.stdout))


# --- nginx ---

def block(text, name):
    """(start, end) of the top-level `name { ... }` block of an nginx
    configuration, or None."""
    m = re.search(r"^%s\s*\{" % name, text, re.M)
    if not m:
        return None
    depth = 0
    for i in range(m.end() - 1, len(text)):
        if text[i] == "{":
            depth += 1
        elif text[i] == "}":
            depth -= 1
            if depth == 0:
                return m.start(), i + 1
    raise ValueError("unbalanced braces in the %s block" % name)


def upstream_ports(text):
    return sorted({int(p) for p in
                   re.findall(r"^\s*server\s+[\d.]+:(\d+)", text, re.M)})


def check_nginx(conf):
    before = len(failures)
    path = os.path.join(DEPLOY, "nginx.conf")
    text = read(path)
    nocomments = re.sub(r"#.*", "", text)
    http = block(nocomments, "http")
    stream = block(nocomments, "stream")
    if http is None:
        fail("nginx.conf: no http block")
        return
    h = nocomments[http[0]:http[1]]
    if upstream_ports(h) != conf.ports("listen"):
        fail("nginx.conf: http upstream ports %r, hellod listens on %r"
             % (upstream_ports(h), conf.ports("listen")))
    if not re.search(r"proxy_set_header\s+X-Forwarded-For\s+"
                     r"\$proxy_add_x_forwarded_for;", h):
        fail("nginx.conf: the http block sets no X-Forwarded-For")
    if conf.header != "x-forwarded-for":
        fail("hellod.conf: [proxy] header is %r, nginx sends "
             "X-Forwarded-For" % conf.header)
    m = re.search(r"keepalive_timeout\s+(\d+)s;", h)
    if not re.search(r"^\s*keepalive\s+\d+;", h, re.M):
        fail("nginx.conf: the upstream keeps no connection alive")
    elif m and not int(m.group(1)) < conf.keepalive:
        fail("nginx.conf: upstream keepalive_timeout %ss is not below "
             "hellod's keepalive_timeout %gs" % (m.group(1), conf.keepalive))
    if stream is not None:
        st = nocomments[stream[0]:stream[1]]
        if upstream_ports(st) != conf.ports("proxy_listen"):
            fail("nginx.conf: stream upstream ports %r, hellod's "
                 "proxy_listen %r" % (upstream_ports(st),
                                      conf.ports("proxy_listen")))
        if not re.search(r"^\s*proxy_protocol\s+on;", st, re.M):
            fail("nginx.conf: the stream block sends no PROXY header")
    for addr in re.findall(r"^\s*listen\s+([\d.]+):\d+", nocomments, re.M):
        if not conf.trusts(addr):
            fail("nginx.conf listens on %s, which [proxy] trusted of "
                 "hellod.conf does not name" % addr)
    if len(failures) == before:
        ok("nginx.conf agrees with hellod.conf (ports, X-Forwarded-For, "
           "PROXY, keep-alive)")

    exe = tool("nginx")
    if exe is None:
        skip("nginx is not installed (Debian package nginx-light): "
             "nginx -t not run")
        return
    test = text
    missing = [p for p in re.findall(r"^\s*load_module\s+(\S+);", text, re.M)
               if not os.path.exists(p)]
    if missing:
        # Without the module, check the rest.
        test = re.sub(r"^\s*load_module\s+\S+;\s*$", "", test, flags=re.M)
        s = block(test, "stream")
        if s:
            test = test[:s[0]] + test[s[1]:]
        skip("%s is not installed (Debian package libnginx-mod-stream): "
             "nginx -t ran without the stream block" % ", ".join(missing))
    with tempfile.TemporaryDirectory(prefix="hellod-nginx-") as d:
        test = re.sub(r"(?<=\s)(/run/|/var/log/nginx/)", d + "/", test)
        test = re.sub(r"(^\s*listen\s+)[\d.]+:\d+",
                      lambda m: "%s127.0.0.1:%d" % (m.group(1), free_port()),
                      test, flags=re.M)
        cpath = os.path.join(d, "nginx.conf")
        with open(cpath, "w") as f:
            f.write(test)
        p = subprocess.run([exe, "-t", "-p", d + "/", "-e",
                            os.path.join(d, "error.log"), "-c", cpath],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True, timeout=30)
    if p.returncode == 0:
        ok("nginx -t accepts deploy/nginx.conf%s"
           % (" (without its stream block)" if missing else ""))
    else:
        fail("nginx -t on deploy/nginx.conf: exit %d:\n%s"
             % (p.returncode, p.stdout))


# --- A strict YAML subset ---

class YamlError(ValueError):
    pass


KEY_RE = re.compile(r'^(?:([A-Za-z0-9_][A-Za-z0-9_./-]*)|"([^"\\]*)"|'
                    r"'([^']*)'):(?: +(.*))?$")
# Plain scalars that YAML 1.1 (Kubernetes' parser) and YAML 1.2 read
# differently, or that look like numbers they are not.
AMBIGUOUS = re.compile(r"^(y|yes|n|no|on|off)$|^[-+]?(0\d|0x|0o|\.inf|\.nan)"
                       r"|^\d[\d_]*:[0-5]\d|^[-+]?\d+e[-+]?\d+$|^\d+_\d",
                       re.I)
ESCAPES = {"\\": "\\", '"': '"', "n": "\n", "t": "\t", "/": "/"}


class YamlSubset:
    """One YAML document, in the subset described in (d)."""

    def __init__(self, text, name):
        self.name = name
        self.lines = text.split("\n")
        if self.lines and self.lines[-1] == "":
            self.lines.pop()
        self.pos = 0

    def error(self, msg, line=None):
        raise YamlError("%s:%d: %s" % (self.name, (self.pos if line is None
                                                   else line) + 1, msg))

    def peek(self):
        """(indent, content) of the next line that is not blank nor a
        comment, or None at the end."""
        while self.pos < len(self.lines):
            line = self.lines[self.pos]
            s = line.lstrip(" ")
            if s.startswith("\t"):
                self.error("a tab in the indentation")
            if s.strip() == "" or s.startswith("#"):
                self.pos += 1
                continue
            return len(line) - len(s), s.rstrip()
        return None

    def document(self):
        p = self.peek()
        if p == (0, "---"):
            self.pos += 1
            p = self.peek()
        if p is None:
            self.error("no document")
        if p[0] != 0:
            self.error("the document must start in the first column")
        node = self.block(0)
        if self.peek() is not None:
            self.error("more after the document (one per file)")
        return node

    @staticmethod
    def is_item(content):
        return content == "-" or content.startswith("- ")

    def block(self, indent):
        if self.is_item(self.peek()[1]):
            return self.sequence(indent)
        return self.mapping(indent)

    def sequence(self, indent):
        out = []
        while True:
            p = self.peek()
            if p is None or p[0] < indent:
                return out
            ind, content = p
            if ind > indent:
                self.error("indented %d, expected %d" % (ind, indent))
            if not self.is_item(content):
                return out      # the next key of the enclosing mapping
            rest = content[1:].lstrip(" ")
            if rest == "" or rest.startswith("#"):
                self.pos += 1
                q = self.peek()
                if q is None or q[0] <= indent:
                    self.error("an empty sequence item")
                out.append(self.block(q[0]))
            elif re.match(r"^\|(-?)\s*(#.*)?$", rest):
                line = self.pos
                self.pos += 1
                out.append(self.literal(indent, rest.startswith("|-"), line))
            elif KEY_RE.match(rest):
                # "- key: value": a mapping whose keys line up with key.
                inner = indent + len(content) - len(rest)
                self.lines[self.pos] = " " * inner + rest
                out.append(self.mapping(inner))
            elif self.is_item(rest):
                self.error("a sequence directly in a sequence item")
            else:
                out.append(self.scalar(rest))
                self.pos += 1

    def mapping(self, indent):
        out = {}
        while True:
            p = self.peek()
            if p is None or p[0] < indent:
                return out
            ind, content = p
            if ind > indent:
                self.error("indented %d, expected %d" % (ind, indent))
            if self.is_item(content):
                self.error("a sequence item where a key was expected")
            m = KEY_RE.match(content)
            if not m:
                self.error("expected `key: value`, found %r" % content)
            key = next(g for g in m.groups()[:3] if g is not None)
            if key in out:
                self.error("duplicate key %r" % key)
            rest = (m.group(4) or "").strip()
            line = self.pos
            self.pos += 1
            if rest == "" or rest.startswith("#"):
                q = self.peek()
                if q is None or q[0] < indent or (
                        q[0] == indent and not self.is_item(q[1])):
                    self.error("no value for %r (write null)" % key, line)
                out[key] = self.block(q[0])
            elif re.match(r"^\|(-?)\s*(#.*)?$", rest):
                out[key] = self.literal(indent, rest.startswith("|-"), line)
            else:
                out[key] = self.scalar(rest, line)

    def literal(self, indent, strip, line):
        """A literal block scalar (| or |-) under a key at indent."""
        lines = []
        inner = None
        while self.pos < len(self.lines):
            text = self.lines[self.pos]
            if text.strip() == "":
                lines.append("")
                self.pos += 1
                continue
            ind = len(text) - len(text.lstrip(" "))
            if text[ind] == "\t":
                self.error("a tab in the indentation")
            if inner is None:
                if ind <= indent:
                    break
                inner = ind
            elif ind < inner:
                if ind > indent:
                    self.error("a line less indented than its block scalar")
                break
            lines.append(text[inner:])
            self.pos += 1
        while lines and lines[-1] == "":
            lines.pop()
        if inner is None:
            self.error("an empty block scalar", line)
        return "\n".join(lines) + ("" if strip else "\n")

    def flow(self, text, line):
        """The scalars of a flow sequence at the start of text, and the
        index after its closing bracket."""
        items, cur, quote, i = [], "", None, 1
        while i < len(text):
            ch = text[i]
            if quote:
                cur += ch
                if quote == '"' and ch == "\\" and i + 1 < len(text):
                    cur += text[i + 1]
                    i += 2
                    continue
                if ch == quote:
                    if quote == "'" and text[i + 1:i + 2] == "'":
                        cur += "'"
                        i += 2
                        continue
                    quote = None
            elif ch in "\"'":
                quote = ch
                cur += ch
            elif ch == "]":
                if cur.strip() or items:
                    items.append(cur.strip())
                if "" in items:
                    self.error("an empty item in a flow sequence", line)
                return [self.scalar(x, line) for x in items], i + 1
            elif ch in "[{}":
                self.error("nested flow collections are not in the subset",
                           line)
            elif ch == ",":
                items.append(cur.strip())
                cur = ""
            else:
                cur += ch
            i += 1
        self.error("a flow sequence not closed on its line", line)

    def scalar(self, text, line=None):
        line = self.pos if line is None else line

        def tail(rest):
            rest = rest.strip()
            if rest and not rest.startswith("#"):
                self.error("unexpected %r after a value" % rest, line)
        if text.startswith('"'):
            out, i = [], 1
            while i < len(text) and text[i] != '"':
                if text[i] == "\\":
                    if i + 1 >= len(text) or text[i + 1] not in ESCAPES:
                        self.error("an escape this parser does not know",
                                   line)
                    out.append(ESCAPES[text[i + 1]])
                    i += 2
                else:
                    out.append(text[i])
                    i += 1
            if i >= len(text):
                self.error("an unterminated string", line)
            tail(text[i + 1:])
            return "".join(out)
        if text.startswith("'"):
            m = re.match(r"^'((?:[^']|'')*)'(.*)$", text)
            if not m:
                self.error("an unterminated string", line)
            tail(m.group(2))
            return m.group(1).replace("''", "'")
        if text.startswith("["):
            items, end = self.flow(text, line)
            tail(text[end:])
            return items
        if text.startswith("{"):
            if re.match(r"^\{\s*\}\s*(#.*)?$", text):
                return {}
            self.error("flow mappings are not in the subset", line)
        if text[0] in "&*!|>%@`?:-" and not re.match(r"^-\d", text):
            self.error("%r: anchors, aliases, tags, folded scalars and "
                       "other indicators are not in the subset" % text, line)
        value = re.sub(r"\s+#.*$", "", text).strip()
        if ": " in value or value.endswith(":") or "\t" in value:
            self.error("%r: quote this value" % value, line)
        if AMBIGUOUS.search(value):
            self.error("%r means different things in YAML 1.1 and 1.2: "
                       "quote it" % value, line)
        if value in ("true", "false"):
            return value == "true"
        if value in ("null", "~"):
            return None
        if re.match(r"^-?(0|[1-9]\d*)$", value):
            return int(value)
        if re.match(r"^-?(0|[1-9]\d*)\.\d+$", value):
            return float(value)
        if value.lower() in ("true", "false", "null"):
            self.error("%r: write %s" % (value, value.lower()), line)
        return value


def parse_yaml(path):
    return YamlSubset(read(path), os.path.relpath(path, SRCDIR)).document()


def self_test_parser():
    """The parser refuses what it does not read."""
    bad = {"tab": "a:\n\tb: 1\n", "dup": "a: 1\na: 2\n",
           "yes": "a: yes\n", "octal": "a: 0755\n", "anchor": "a: &x 1\n",
           "alias": "a: *x\n", "folded": "a: >\n  x\n",
           "two docs": "a: 1\n---\nb: 2\n", "indent": "a:\n  b: 1\n   c: 2\n",
           "colon": "a: b: c\n", "empty": "a:\nb: 1\n",
           "flow map": "a: {b: 1}\n", "On": "a: On\n", "sexagesimal":
           "a: 1:30\n"}
    for what, text in bad.items():
        try:
            YamlSubset(text, what).document()
        except YamlError:
            continue
        fail("the YAML subset parser accepts %s: %r" % (what, text))
    good = ("a:\n  - x\n  - k: 1\n    l: [\"-c\", b]\n  - |\n    t\n"
            "b: 'q''s'\nc:\n- 1\nd: \"2\"\ne: {}\n")
    want = {"a": ["x", {"k": 1, "l": ["-c", "b"]}, "t\n"], "b": "q's",
            "c": [1], "d": "2", "e": {}}
    got = YamlSubset(good, "good").document()
    if got != want:
        fail("the YAML subset parser reads %r as %r" % (good, got))


# --- Kubernetes ---

def lookup(d, *path, default=None):
    for p in path:
        if isinstance(d, dict) and p in d:
            d = d[p]
        elif isinstance(d, list) and isinstance(p, int) and p < len(d):
            d = d[p]
        else:
            return default
    return d


def cpu_cores(v):
    v = str(v)
    return int(v[:-1]) / 1000.0 if v.endswith("m") else float(v)


def check_kubernetes():
    before = len(failures)
    files = sorted(glob.glob(os.path.join(DEPLOY, "kubernetes", "*.yaml")))
    docs, by_kind = {}, {}
    for f in files:
        try:
            doc = parse_yaml(f)
        except YamlError as e:
            fail(str(e))
            continue
        docs[f] = doc
        by_kind.setdefault(lookup(doc, "kind"), []).append(doc)
    for kind in ("ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                 "NetworkPolicy", "PodMonitor", "Kustomization"):
        if len(by_kind.get(kind, [])) != 1:
            fail("deploy/kubernetes: %d %s, expected one"
                 % (len(by_kind.get(kind, [])), kind))
    if len(failures) > before:
        return docs
    ok("deploy/kubernetes: %d files read" % len(docs))
    cm, dep, svc = (by_kind[k][0] for k in ("ConfigMap", "Deployment",
                                            "Service"))
    cm_name = lookup(cm, "metadata", "name")
    data = lookup(cm, "data", default={})
    if list(data) != ["hellod.conf"]:
        fail("configmap: data should hold hellod.conf alone, not %r"
             % list(data))
        return docs
    text = data["hellod.conf"]
    hellod_t(text, "the ConfigMap's hellod.conf")
    conf = HellodConf(text)

    pod = lookup(dep, "spec", "template", default={})
    labels = lookup(pod, "metadata", "labels", default={})
    for what, sel in (("Deployment selector",
                       lookup(dep, "spec", "selector", "matchLabels")),
                      ("Service selector", lookup(svc, "spec", "selector"))):
        if not sel or any(labels.get(k) != v for k, v in sel.items()):
            fail("%s %r does not select the pod labels %r"
                 % (what, sel, labels))
    spec = lookup(pod, "spec", default={})
    volumes = [v["name"] for v in spec.get("volumes", [])
               if lookup(v, "configMap", "name") == cm_name]
    containers = [c for c in spec.get("containers", [])
                  if any(m.get("name") in volumes
                         for m in c.get("volumeMounts", []))]
    if len(volumes) != 1 or len(containers) != 1:
        fail("deployment: expected one container mounting ConfigMap %s "
             "(volumes %r)" % (cm_name, volumes))
        return docs
    c = containers[0]
    mount = next(m["mountPath"] for m in c["volumeMounts"]
                 if m["name"] in volumes)
    argv = list(c.get("command", [])) + list(c.get("args", []))
    want_conf = os.path.join(mount, "hellod.conf")
    if "-c" not in argv or argv[argv.index("-c") + 1] != want_conf:
        fail("deployment: the command %r does not read %s" % (argv,
                                                              want_conf))
    if "--foreground" not in argv and "-f" not in argv:
        fail("deployment: without --foreground hellod detaches and the "
             "container ends: %r" % argv)

    ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}

    def resolve(port):
        return ports.get(port) if isinstance(port, str) else port
    if resolve("http") not in conf.ports("listen"):
        fail("deployment: containerPort http %r is not hellod's listen "
             "port %r" % (resolve("http"), conf.ports("listen")))
    if not conf.status:
        fail("the ConfigMap's hellod.conf has no [status] listen")
        return docs
    for host, port in conf.status:
        if host not in ("0.0.0.0", "::"):
            fail("[status] listen %s: the kubelet probes the pod's address, "
                 "listen on all" % host)
    for probe in ("readinessProbe", "livenessProbe"):
        get = lookup(c, probe, "httpGet")
        if not get:
            fail("deployment: no %s.httpGet" % probe)
            continue
        if get.get("path") != "/healthz" or \
                resolve(get.get("port")) not in conf.ports("status"):
            fail("deployment: %s gets %s on port %r, not /healthz on the "
                 "status port %r" % (probe, get.get("path"),
                                     get.get("port"), conf.ports("status")))
    ready = lookup(c, "readinessProbe", default={})
    live = lookup(c, "livenessProbe", default={})
    unready = ready.get("periodSeconds", 10) * ready.get("failureThreshold",
                                                         3)
    dead = live.get("periodSeconds", 10) * live.get("failureThreshold", 3)
    if not unready < conf.drain_notice:
        fail("the readiness probe fails after %ds, not within "
             "drain_notice %gs" % (unready, conf.drain_notice))
    if not dead > conf.drain_notice:
        fail("the liveness probe could restart a draining pod: %ds <= "
             "drain_notice %gs" % (dead, conf.drain_notice))
    grace = spec.get("terminationGracePeriodSeconds", 30)
    need = conf.drain_notice + conf.shutdown_timeout
    if not grace >= need:
        fail("terminationGracePeriodSeconds %d < drain_notice + "
             "shutdown_timeout = %gs" % (grace, need))
    if "preStop" in lookup(c, "lifecycle", default={}):
        fail("deployment: a preStop hook, where drain_notice does the wait")
    limit = lookup(c, "resources", "limits", "cpu")
    if not re.match(r"^\d+$", conf.workers or ""):
        fail("hellod.conf: workers = %s counts the node's CPUs, not the "
             "pod's: give a number" % conf.workers)
    elif limit is not None and int(conf.workers) > max(1, cpu_cores(limit)):
        fail("hellod.conf: %s workers for a CPU limit of %s"
             % (conf.workers, limit))
    if lookup(c, "securityContext", "readOnlyRootFilesystem"):
        writes = [k for k in (("server", "pid_file"), ("log", "access_log"))
                  if ini_get(conf.ini, *k, default="") not in ("", "off")]
        if ini_get(conf.ini, "log", "error_log", "stderr") != "stderr":
            writes.append(("log", "error_log"))
        if writes:
            fail("hellod.conf writes files (%r) on a read-only root file "
                 "system" % writes)

    sp = lookup(svc, "spec", default={})
    if sp.get("externalTrafficPolicy") != "Local":
        fail("service: externalTrafficPolicy is %r: the pods would see a "
             "node's address, not the client's"
             % sp.get("externalTrafficPolicy"))
    if sp.get("type") not in ("LoadBalancer", "NodePort"):
        fail("service: type %r has no externalTrafficPolicy" % sp.get("type"))
    for p in sp.get("ports", []):
        if resolve(p.get("targetPort", p.get("port"))) not in \
                conf.ports("listen"):
            fail("service: port %r targets %r, not hellod's listen port %r"
                 % (p.get("port"), p.get("targetPort"), conf.ports("listen")))
    if len(failures) == before:
        ok("deploy/kubernetes: selectors, mount, command, ports, probes, "
           "grace period %ds >= %gs + %gs, Service policy"
           % (grace, conf.drain_notice, conf.shutdown_timeout))
    check_kubernetes_policy(files, by_kind, labels, spec, c, ports)
    return docs


def made_image():
    """The name `make image` gives the image: IMAGE_NAME:VERSION."""
    with open(os.path.join(SRCDIR, "Makefile.am")) as f:
        name = re.search(r"(?m)^IMAGE_NAME = (\S+)$", f.read()).group(1)
    with open(os.path.join(SRCDIR, "configure.ac")) as f:
        version = re.search(r"AC_INIT\(\[[^]]*\], \[([^]]+)\]",
                            f.read()).group(1)
    return "%s:%s" % (name, version)


def selects(selector, labels):
    sel = lookup(selector, "matchLabels")
    return bool(sel) and all(labels.get(k) == v for k, v in sel.items()) \
        and not lookup(selector, "matchExpressions")


def check_kubernetes_policy(files, by_kind, labels, spec, c, ports):
    """The image, the restricted Pod Security Standard, the spread, the
    PodDisruptionBudget, NetworkPolicy, PodMonitor and kustomization."""
    before = len(failures)
    image = made_image()
    if c.get("image") != image:
        fail("deployment: image %r, but make image builds %r"
             % (c.get("image"), image))

    psc = spec.get("securityContext", {})
    csc = c.get("securityContext", {})

    def both(*key):
        v = lookup(csc, *key)
        return lookup(psc, *key) if v is None else v
    if both("runAsNonRoot") is not True:
        fail("deployment: runAsNonRoot is not true")
    if both("runAsUser") == 0:
        fail("deployment: runAsUser 0")
    if both("seccompProfile", "type") not in ("RuntimeDefault", "Localhost"):
        fail("deployment: seccompProfile.type %r, the restricted standard "
             "wants RuntimeDefault" % both("seccompProfile", "type"))
    if csc.get("allowPrivilegeEscalation") is not False:
        fail("deployment: allowPrivilegeEscalation is not false")
    if lookup(csc, "capabilities", "drop") != ["ALL"] or \
            lookup(csc, "capabilities", "add"):
        fail("deployment: capabilities are not drop [ALL] with no add")
    if csc.get("readOnlyRootFilesystem") is not True:
        fail("deployment: the root file system is writable")

    spread = spec.get("topologySpreadConstraints", [])
    if not any(t.get("topologyKey") == "kubernetes.io/hostname" and
               selects(t.get("labelSelector"), labels) for t in spread):
        fail("deployment: no topologySpreadConstraints over "
             "kubernetes.io/hostname selecting the pods")

    pdb = by_kind["PodDisruptionBudget"][0]
    if not selects(lookup(pdb, "spec", "selector"), labels):
        fail("pdb: the selector does not select the pods")
    budget = lookup(pdb, "spec", "maxUnavailable")
    replicas = lookup(by_kind["Deployment"][0], "spec", "replicas", default=1)
    if budget is None:
        least = lookup(pdb, "spec", "minAvailable")
        if not isinstance(least, int) or not 0 < least < replicas:
            fail("pdb: minAvailable %r with %d replicas lets no pod be "
                 "evicted, or protects none" % (least, replicas))
    elif not isinstance(budget, int) or not 0 < budget < replicas:
        fail("pdb: maxUnavailable %r for %d replicas" % (budget, replicas))

    def port_number(p):
        return ports.get(p) if isinstance(p, str) else p
    np_ = by_kind["NetworkPolicy"][0]
    if not selects(lookup(np_, "spec", "podSelector"), labels):
        fail("networkpolicy: the podSelector does not select the pods")
    if "Ingress" not in lookup(np_, "spec", "policyTypes", default=[]):
        fail("networkpolicy: policyTypes has no Ingress")
    http_open = status_limited = False
    for rule in lookup(np_, "spec", "ingress", default=[]):
        rports = [port_number(p.get("port")) for p in rule.get("ports", [])]
        peers = rule.get("from")
        if not rule.get("ports"):
            fail("networkpolicy: an ingress rule for every port")
            continue
        if ports.get("status") in rports:
            if not peers or any(not (p.get("namespaceSelector") or
                                     p.get("podSelector")) or
                                "ipBlock" in p for p in peers):
                fail("networkpolicy: the status port is open to %r, not "
                     "to selected monitoring pods" % peers)
            elif not any(lookup(p, "namespaceSelector", "matchLabels")
                         for p in peers):
                fail("networkpolicy: the status port is open to pods of "
                     "hellod's own namespace only, not to monitoring's")
            else:
                status_limited = True
        if ports.get("http") in rports and not peers:
            http_open = True
    if not http_open:
        fail("networkpolicy: the http port is not open to all")
    if not status_limited:
        fail("networkpolicy: no rule lets monitoring reach the status port")

    pm = by_kind["PodMonitor"][0]
    if not selects(lookup(pm, "spec", "selector"), labels):
        fail("podmonitor: the selector does not select the pods")
    eps = lookup(pm, "spec", "podMetricsEndpoints", default=[])
    if not eps or any(e.get("port") != "status" or
                      e.get("path", "/metrics") != "/metrics" for e in eps):
        fail("podmonitor: endpoints %r, wanted /metrics on port status"
             % eps)

    kz = by_kind["Kustomization"][0]
    if kz.get("apiVersion") != "kustomize.config.k8s.io/v1beta1":
        fail("kustomization: apiVersion %r" % kz.get("apiVersion"))
    others = sorted(os.path.basename(f) for f in files
                    if os.path.basename(f) != "kustomization.yaml")
    if sorted(kz.get("resources", [])) != others:
        fail("kustomization: resources %r, the directory holds %r"
             % (kz.get("resources"), others))
    if len(failures) == before:
        ok("deploy/kubernetes: image %s as make image names it, restricted "
           "pod security, spread over nodes, PodDisruptionBudget, "
           "NetworkPolicy (status port for monitoring only), PodMonitor, "
           "kustomization of %d files" % (image, len(others)))


NODE_CHECK = r"""
const fs = require("fs");
const YAML = require("yaml");
(async () => {
  const out = {};
  for (const f of process.argv.slice(2)) {
    let doc;
    try {
      doc = YAML.parse(fs.readFileSync(f, "utf8"),
                       { strict: true, uniqueKeys: true });
    } catch (e) {
      out[f] = { json: null, error: "YAML: " + String(e.message || e) };
      continue;
    }
    if (doc.kind === "Kustomization") {
      // Not a Kubernetes object: no schema here; test_deploy.py checks it.
      out[f] = { json: doc, error: null, schema: false };
      continue;
    }
    let model;
    try {
      if (doc.apiVersion.startsWith("monitoring.coreos.com/")) {
        // The Prometheus operator's custom resources (an ES module).
        model = (await import("@kubernetes-models/prometheus-operator/" +
                              doc.apiVersion + "/" + doc.kind))[doc.kind];
      } else {
        model = require("kubernetes-models/" + doc.apiVersion + "/" +
                        doc.kind)[doc.kind];
      }
      if (!model) throw new Error("not exported");
    } catch (e) {
      out[f] = { json: doc, error: "no model for " + doc.apiVersion + " " +
                 doc.kind + ": " + String(e.message || e) };
      continue;
    }
    try {
      new model(doc).validate();
      out[f] = { json: doc, error: null };
    } catch (e) {
      out[f] = { json: doc, error: String(e.message || e) };
    }
  }
  process.stdout.write(JSON.stringify(out));
})();
"""


def check_kubernetes_schema(docs):
    npm, node = tool("npm"), tool("node") or tool("nodejs")
    if not docs:
        return
    if npm is None or node is None:
        skip("npm or node is not installed (Debian packages npm, nodejs): "
             "the manifests were not validated against the Kubernetes "
             "schema")
        return
    with tempfile.TemporaryDirectory(prefix="hellod-k8s-") as d:
        try:
            p = subprocess.run([npm, "install", "--no-audit", "--no-fund",
                                "--no-save", "--no-package-lock",
                                "--cache", os.path.join(d, "npm-cache"),
                                "--prefix", d] + list(NPM_PACKAGES),
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT,
                               universal_newlines=True, timeout=240, cwd=d,
                               env=dict(os.environ, npm_config_update_notifier
                                        ="false"))
        except subprocess.TimeoutExpired:
            skip("npm install %s did not finish in 240 s: the manifests "
                 "were not validated" % " ".join(NPM_PACKAGES))
            return
        if p.returncode != 0:
            skip("npm install %s failed (is the npm registry reachable?): "
                 "the manifests were not validated against the Kubernetes "
                 "schema\n%s" % (" ".join(NPM_PACKAGES),
                                 p.stdout.strip()[-600:]))
            return
        script = os.path.join(d, "check.js")
        with open(script, "w") as f:
            f.write(NODE_CHECK)
        p = subprocess.run([node, script] + sorted(docs),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, timeout=60, cwd=d)
    if p.returncode != 0:
        fail("the schema check failed: %s" % p.stderr.strip())
        return
    result = json.loads(p.stdout)
    for f, doc in sorted(docs.items()):
        r = result.get(f, {})
        name = os.path.relpath(f, SRCDIR)
        if r.get("error"):
            fail("%s: %s" % (name, r["error"]))
        elif r.get("json") != doc:
            fail("%s: the npm package yaml reads it otherwise than the "
                 "subset parser:\n  %r\n  %r" % (name, r.get("json"), doc))
        elif r.get("schema") is False:
            ok("%s: read alike by yaml and the subset parser (no schema "
               "for a %s; its fields are checked above)"
               % (name, doc["kind"]))
        else:
            ok("%s: a valid %s (%s), read alike by yaml and the subset "
               "parser" % (name, doc["kind"], " ".join(NPM_PACKAGES)))


def check_kubernetes_tls():
    """deploy/kubernetes/tls: an overlay of ../ whose hellod.conf serves
    HTTPS from the Secret's files.  Its configuration must pass hellod -t
    with real certificate files at the paths it names (made here), the
    Deployment patch must mount the Secret where the configuration reads
    it and name the port the Service patch targets, and the image must be
    the one `make image-tls` builds."""
    before = len(failures)
    d = os.path.join(DEPLOY, "kubernetes", "tls")
    docs = {}
    for name in ("kustomization", "configmap", "deployment", "service"):
        try:
            docs[name] = parse_yaml(os.path.join(d, name + ".yaml"))
        except YamlError as e:
            fail(str(e))
    if len(failures) > before:
        return
    kust = docs["kustomization"]
    if lookup(kust, "resources") != ["../"]:
        fail("tls/kustomization.yaml: resources should be ../ alone")
    patches = sorted(p.get("path") for p in lookup(kust, "patches",
                                                   default=[]))
    if patches != ["configmap.yaml", "deployment.yaml", "service.yaml"]:
        fail("tls/kustomization.yaml: patches %r" % patches)
    name, version = made_image().rsplit(":", 1)
    if (lookup(kust, "images", 0, "name") != name or
            lookup(kust, "images", 0, "newTag") != version + "-tls" or
            "IMAGE_TLS = $(IMAGE)-tls" not in read(os.path.join(SRCDIR,
                                                         "Makefile.am"))):
        fail("tls/kustomization.yaml: the image should be %s-tls, what make "
             "image-tls builds" % made_image())
    text = lookup(docs["configmap"], "data", "hellod.conf", default="")
    ini = parse_ini(text)
    cert = ini_get(ini, "tls", "certificate")
    key = ini_get(ini, "tls", "certificate_key")
    tls = addresses(ini_get(ini, "server", "tls_listen", ""))
    if not cert or not key or not tls:
        fail("tls/configmap.yaml: tls_listen, certificate and "
             "certificate_key are all needed")
        return
    pod = lookup(docs["deployment"], "spec", "template", "spec")
    mount = lookup(pod, "containers", 0, "volumeMounts", 0, default={})
    vol = lookup(pod, "volumes", 0, default={})
    if (os.path.dirname(cert) != mount.get("mountPath") or
            os.path.dirname(key) != mount.get("mountPath") or
            mount.get("name") != vol.get("name") or
            lookup(vol, "secret", "secretName") != "hellod-tls"):
        fail("tls/deployment.yaml: the Secret hellod-tls should be mounted "
             "at %s" % os.path.dirname(cert))
    port = lookup(pod, "containers", 0, "ports", 0, default={})
    if port.get("containerPort") != tls[0][1] or \
            lookup(docs["service"], "spec", "ports", 0, "targetPort") != \
            port.get("name"):
        fail("tls/: the https containerPort should be tls_listen's port and "
             "the Service's target")
    if lookup(pod, "securityContext", "fsGroup") != 65534:
        fail("tls/deployment.yaml: fsGroup 65534 makes the Secret's files "
             "readable by the pod's user")
    with tempfile.TemporaryDirectory(prefix="hellod-deploy-tls-") as t:
        crt, k = os.path.join(t, "tls.crt"), os.path.join(t, "tls.key")
        p = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                            "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                            "-keyout", k, "-out", crt, "-days", "2",
                            "-subj", "/CN=hellod"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           universal_newlines=True)
        if p.returncode != 0:
            fail("openssl req: %s" % p.stderr.strip())
            return
        hellod_t(text.replace(cert, crt).replace(key, k),
                 "tls/configmap.yaml's hellod.conf (test certificate at its "
                 "paths)")
    if len(failures) == before:
        ok("deploy/kubernetes/tls: the overlay serves tls_listen %s:%d from "
           "the Secret hellod-tls" % tls[0])


def main():
    if not os.access(HELLOD, os.X_OK):
        print("FAIL: %s: no built hellod" % HELLOD)
        return 1
    path = os.path.join(DEPLOY, "hellod.conf")
    hellod_t(read(path), "deploy/hellod.conf")
    conf = HellodConf(read(path))
    check_haproxy(conf)
    check_nginx(conf)
    self_test_parser()
    docs = check_kubernetes()
    check_kubernetes_schema(docs)
    check_kubernetes_tls()
    if failures:
        print("%d failure(s)" % len(failures))
        return 1
    if skipped:
        print("SKIP: every check that ran passed; not run: %s"
              % "; ".join(s.split(":")[0] for s in skipped))
        return SKIP
    return 0


if __name__ == "__main__":
    sys.exit(main())
