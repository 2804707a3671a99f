#!/usr/bin/env python3
"""hellod behind real load balancers, across network namespaces: HAProxy
(PROXY protocol v1 and v2, `option forwardfor`) and nginx (`proxy_pass`
with X-Forwarded-For over keep-alive upstream connections) on this host's
bridge address, hellod in backend namespaces, requests and ab from client
namespaces.  The greeting must name the client's address, not the
balancer's, wherever the balancer is trusted, and the balancer's where it
is not.  Root only (exit 77 otherwise); a case skips when HAProxy, nginx
or ab is missing.  About 5 s.

    bridge 198.18.252.1: HAProxy and nginx
      client  198.18.252.2        client2  198.18.252.3
      h1  198.18.252.11  async, [proxy] trusted = the bridge address
      h2  198.18.252.12  sync (--sync), same configuration
      h3  198.18.252.13  async, trusted = a network without the balancer
      h4  198.18.252.14  async, no [proxy] section (trusted empty)

Every hellod has a plain listener on 8080 and a PROXY one on 8081, and
writes its access log into the test's directory.  Port isolation on the
bridge: the clients reach the balancers only, never a backend."""

import os
import re
import subprocess
import unittest

import hellodtest as ht
import netns

PREFIX = "bal"
NET = 252                   # 198.18.252.0/24
PLAIN, PROXY = 8080, 8081
# Frontends on the bridge address: HAProxy ...
V1, V2, XFF, V2_CRC = 8001, 8002, 8003, 8004
SYNC_V2, SYNC_XFF = 8011, 8013
UNTRUSTED_V2 = 8022
OPEN_V1, OPEN_V2_HTTPCHK = 8031, 8032
# ... and nginx.
NGINX, NGINX_SYNC, NGINX_UNTRUSTED = 8100, 8101, 8102
# Trusted by h3: a documentation network, not the balancer.
OTHER_NET = "198.51.100.0/24"
# What a client puts in its own X-Forwarded-For to pass for someone else.
SPOOFED = "203.0.113.7"
LOAD_REQUESTS, LOAD_CONCURRENCY = 2000, 20
CHECK_PATH = "/hc"

# One access log line (combined): client, body bytes, user agent and the
# extra quoted field naming the peer when it differs from the client.
ACCESS_RE = re.compile(
    r'^(?P<client>\S+) - - \[[^\]]+\] "(?P<request>[^"]*)" (?P<status>\d{3}) '
    r'(?P<bytes>\d+) "(?P<referer>[^"]*)" "(?P<agent>[^"]*)"'
    r'(?: "(?P<peer>[^"]*)")?$')


def hellod_conf(addr, trusted, access_log):
    """A backend: plain listener (added by Hellod), PROXY listener, two
    workers (ignored by --sync), X-Forwarded-For believed from trusted
    peers."""
    text = ("[server]\nworkers = 2\nproxy_listen = %s:%d\n" % (addr, PROXY))
    if trusted is not None:
        text += "[proxy]\ntrusted = %s\nheader = x-forwarded-for\n" % trusted
    text += "[log]\naccess_log = %s\n" % access_log
    return text


def haproxy_conf(topo, stats_socket):
    """HAProxy: one frontend and backend per path; health checks every
    200 ms where a server line has `check`."""
    a, s, u, o = (h.addr for h in topo.hosts)
    br = topo.addr
    check = "check inter 200ms fall 2 rise 1"
    paths = [
        # (port, mode, server address:port, server options, backend lines)
        (V1, "tcp", (a, PROXY), "send-proxy check-send-proxy " + check, []),
        (V2, "tcp", (a, PROXY), "send-proxy-v2 check-send-proxy " + check,
         []),
        (V2_CRC, "tcp", (a, PROXY),
         "send-proxy-v2 proxy-v2-options crc32c,unique-id", []),
        (XFF, "http", (a, PLAIN), check,
         ["option forwardfor", "http-reuse always"]),
        (SYNC_V2, "tcp", (s, PROXY), "send-proxy-v2 check-send-proxy "
         + check, []),
        (SYNC_XFF, "http", (s, PLAIN), check, ["option forwardfor"]),
        (UNTRUSTED_V2, "tcp", (u, PROXY), "send-proxy-v2 check-send-proxy "
         + check, []),
        (OPEN_V1, "tcp", (o, PROXY), "send-proxy", []),
        (OPEN_V2_HTTPCHK, "tcp", (o, PROXY), "send-proxy-v2 check-send-proxy "
         + check, ["option httpchk GET %s" % CHECK_PATH]),
    ]
    # a UNIQUE_ID TLV where a server sends one
    lines = netns.haproxy_head(stats_socket, defaults=(
        "unique-id-format %{+X}o\\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid",))
    for port, mode, (addr, sport), options, extra in paths:
        lines += ["frontend fe%d" % port,
                  "    mode %s" % mode,
                  "    option %slog" % mode,
                  "    bind %s:%d" % (br, port),
                  "    default_backend be%d" % port,
                  "",
                  "backend be%d" % port,
                  "    mode %s" % mode]
        lines += ["    " + x for x in extra]
        lines += ["    server s %s:%d %s" % (addr, sport, options), ""]
    return "\n".join(lines)


def nginx_conf(topo):
    """nginx: X-Forwarded-For from $proxy_add_x_forwarded_for over
    keep-alive HTTP/1.1 upstream connections, one server per backend."""
    a, s, u, _ = (h.addr for h in topo.hosts)
    out = ""
    for name, port, addr in (("a", NGINX, a), ("s", NGINX_SYNC, s),
                             ("u", NGINX_UNTRUSTED, u)):
        out += ("    upstream %(name)s {\n"
                "        server %(addr)s:%(plain)d max_fails=0;\n"
                "        keepalive 16;\n"
                "    }\n"
                "    server {\n"
                "        listen %(br)s:%(port)d;\n"
                "        location / {\n"
                "            proxy_pass http://%(name)s;\n"
                "            proxy_http_version 1.1;\n"
                "            proxy_set_header Host $host;\n"
                "            proxy_set_header Connection \"\";\n"
                "            proxy_set_header X-Forwarded-For "
                "$proxy_add_x_forwarded_for;\n"
                "        }\n"
                "    }\n" % {"name": name, "addr": addr, "plain": PLAIN,
                            "br": topo.addr, "port": port})
    return out




class Balancers(netns.BalancedHellods, unittest.TestCase):

    PREFIX, NET, HOSTS, CLIENTS = PREFIX, NET, 4, 2

    @classmethod
    def start_hellods(cls):
        topo = cls.topo
        br = topo.addr
        specs = [("async", "%s/32" % br, ()), ("sync", "%s/32" % br,
                                                ("--sync",)),
                 ("untrusted", OTHER_NET, ()), ("open", None, ())]
        cls.access = {}
        for (name, trusted, args), h in zip(specs, topo.hosts):
            log = os.path.join(cls.dir.name, "access-%s.log" % name)
            d = ht.Hellod(hellod_conf(h.addr, trusted, log), args=args,
                          host=h.addr, port=PLAIN, wrapper=h.wrapper,
                          ready=False)
            cls.hellods.append(d)
            netns.wait_listening(d.proc, h.addr, PLAIN, ns=h, log=d.log)
            netns.wait_listening(d.proc, h.addr, PROXY, ns=h, log=d.log)
            d.wait_ready()
            cls.hd[name] = d
            cls.access[name] = log

    @classmethod
    def haproxy_text(cls):
        return haproxy_conf(cls.topo, cls.stats_socket)

    @classmethod
    def nginx_text(cls):
        return nginx_conf(cls.topo)

    # --- helpers ---

    def setUp(self):
        self.topo = type(self).topo
        self.br = self.topo.addr
        self.client = self.topo.client
        self.client2 = self.topo.ns("client2")

    def need_haproxy(self):
        if self.haproxy is None:
            self.skipTest(self.haproxy_missing)

    def need_nginx(self):
        if self.nginx is None:
            self.skipTest(self.nginx_missing)

    def greet(self, port, client=None, xff=None, requests=1):
        """requests GETs, one after the other on one connection from
        client's namespace (the first client by default) to the balancer's
        port; the list of responses, each checked to be a 200."""
        client = client or self.client
        extra = "X-Forwarded-For: %s\r\n" % xff if xff else ""
        out = []
        with client.connect(self.br, port) as s:
            r = ht.Reader(s)
            for i in range(requests):
                last = i == requests - 1
                s.sendall(("GET / HTTP/1.1\r\nHost: hellod\r\n%s%s\r\n"
                           % (extra, "Connection: close\r\n" if last
                              else "")).encode())
                resp = r.response()
                self.assertIsNotNone(resp, "no response %d through port %d"
                                     % (i, port))
                self.assertEqual(resp.status, 200, resp.raw)
                out.append(resp)
        return out

    def assert_greets(self, port, addr, client=None, xff=None, requests=1):
        """The greeting through port names addr on every response."""
        for resp in self.greet(port, client, xff, requests):
            self.assertEqual(resp.body, ht.greeting(addr),
                             "through port %d from %s" %
                             (port, (client or self.client).addr))

    def access_lines(self, name, start=0):
        """The access log lines of one hellod from byte offset start."""
        with open(self.access[name], "rb") as f:
            f.seek(start)
            return f.read().decode("utf-8", "replace").splitlines()

    def access_size(self, name):
        return os.path.getsize(self.access[name])

    def assert_access(self, name, start, expect, count=None):
        """The access log lines of hellod `name` written since offset
        start: each is a 200 for the client the greeting named and names
        the peer (None: no peer field).  expect: a list of (client, peer)
        in order, or one pair for every line with count lines in all.  The
        lines are there by the time the responses arrived (a line is
        written before its response).  Health checks (GET /hc) are checked
        apart: each names the balancer, with no peer field (LOCAL)."""
        if count is None:
            want = list(expect)
        else:
            want = [expect] * count

        def requests():
            ls = [l for l in self.access_lines(name, start)
                  if not self.is_check(l)]
            return ls if len(ls) >= len(want) else None
        lines = ht.wait_for(requests, 5.0, 0.02, "%d access log lines of %s"
                            % (len(want), name))
        self.assertEqual(len(lines), len(want), lines[-5:])
        for line, (client, peer) in zip(lines, want):
            m = ACCESS_RE.match(line)
            self.assertIsNotNone(m, "not a combined line: %r" % line)
            self.assertEqual((m.group("client"), m.group("peer"),
                              m.group("status"), int(m.group("bytes"))),
                             (client, peer, "200",
                              len(ht.greeting(client))), line)
        for line in self.access_lines(name, start):
            if self.is_check(line):
                self.assert_check_line(line)
        return lines

    @staticmethod
    def is_check(line):
        return '"GET %s HTTP/1.' % CHECK_PATH in line

    def assert_check_line(self, line):
        """An HTTP health check after a v2 LOCAL header: the socket's peer
        stands, the balancer, and the line has no peer field."""
        m = ACCESS_RE.match(line)
        self.assertIsNotNone(m, "not a combined line: %r" % line)
        self.assertEqual((m.group("client"), m.group("peer"),
                          m.group("status"), int(m.group("bytes"))),
                         (self.br, None, "200", len(ht.greeting(self.br))),
                         line)

    def upstream_ports(self, program, addr, port):
        """The local ports of the established connections that program
        (nginx, haproxy) on this host holds to addr:port."""
        ss = netns.need("ss", "iproute2")
        p = subprocess.run([ss, "-Htnp", "state", "established", "dst",
                            "%s:%d" % (addr, port)], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, universal_newlines=True,
                           timeout=10.0, check=True)
        # Recv-Q Send-Q Local Peer Process
        return sorted(int(line.split()[2].rsplit(":", 1)[1])
                      for line in p.stdout.splitlines()
                      if '(("%s",' % program in line)

    def assert_quiet(self, name):
        """No warning or error in the log of hellod `name`."""
        self.assertEqual(ht.log_problems(self.hd[name].log()), [],
                         self.hd[name].log())

    def server(self, port, timeout=10.0):
        """The stats row of the one server behind frontend port, once a
        health check has passed (UP with a completed check)."""
        key = ("be%d" % port, "s")

        def passed():
            row = netns.haproxy_stat(self.stats_socket).get(key)
            if row and row["status"] == "UP" and \
                    row["check_status"] in ("L4OK", "L7OK"):
                return row
            return None
        try:
            return ht.wait_for(passed, timeout, 0.05,
                               "a passed health check of %s/%s" % key)
        except AssertionError as e:
            row = netns.haproxy_stat(self.stats_socket).get(key) or {}
            raise AssertionError("%s: %r\n%s" % (
                e, {k: row.get(k) for k in ("status", "check_status",
                                            "check_code", "check_desc",
                                            "chkfail", "chkdown")},
                self.haproxy.log()[-3000:])) from None

    # --- 1. HAProxy mode tcp, send-proxy (v1) ---

    def test_1_haproxy_send_proxy(self):
        self.need_haproxy()
        start = self.access_size("async")
        self.assert_greets(V1, self.client.addr)
        self.assert_greets(V1, self.client2.addr, client=self.client2)
        # One header per connection: every request on it is the client's.
        self.assert_greets(V1, self.client.addr, requests=3)
        self.assert_access("async", start,
                           [(self.client.addr, self.br),
                            (self.client2.addr, self.br)]
                           + [(self.client.addr, self.br)] * 3)
        # check-send-proxy on a v1 server: the checks (a v1 header that
        # names the balancer's own addresses, then a reset) pass and are
        # accepted without a warning.
        self.server(V1)
        self.assert_quiet("async")

    def test_1_haproxy_send_proxy_trusted_empty(self):
        # No [proxy] section: a PROXY listener believes its headers.
        self.need_haproxy()
        start = self.access_size("open")
        self.assert_greets(OPEN_V1, self.client.addr)
        self.assert_greets(OPEN_V1, self.client2.addr, client=self.client2)
        self.assert_access("open", start, [(self.client.addr, self.br),
                                           (self.client2.addr, self.br)])
        self.assert_quiet("open")

    # --- 2. HAProxy mode tcp, send-proxy-v2, check-send-proxy ---

    def test_2_haproxy_send_proxy_v2_with_checks(self):
        self.need_haproxy()
        # TCP checks (a v2 LOCAL header, then the check closes) and HTTP
        # checks (a LOCAL header, then GET /hc) pass.
        row = self.server(V2)
        self.assertEqual((row["status"], row["chkfail"], row["chkdown"]),
                         ("UP", "0", "0"), row)
        hc = self.server(OPEN_V2_HTTPCHK)
        self.assertEqual((hc["status"], hc["check_status"],
                          hc["check_code"], hc["chkfail"]),
                         ("UP", "L7OK", "200", "0"), hc)
        # Checks go on every 200 ms; three more HTTP checks answered mean
        # the TCP checks of the same interval ran as often.

        def checks():
            return [l for l in self.access_lines("open") if self.is_check(l)]
        before = len(checks())
        lines = ht.wait_for(lambda: (lambda c: c if len(c) >= before + 3
                                     else None)(checks()),
                            10.0, 0.05, "three more HTTP health checks")
        for line in lines:
            self.assert_check_line(line)
        start = self.access_size("async")
        self.assert_greets(V2, self.client.addr)
        self.assert_greets(V2, self.client2.addr, client=self.client2)
        self.assert_greets(V2, self.client.addr, requests=3)
        self.assert_access("async", start,
                           [(self.client.addr, self.br),
                            (self.client2.addr, self.br)]
                           + [(self.client.addr, self.br)] * 3)
        start = self.access_size("open")
        self.assert_greets(OPEN_V2_HTTPCHK, self.client.addr)
        self.assert_access("open", start, [(self.client.addr, self.br)])
        row = netns.haproxy_stat(self.stats_socket)[("be%d" % V2, "s")]
        self.assertEqual((row["status"], row["chkfail"]), ("UP", "0"), row)
        # No "closing connections without a valid PROXY header" for the
        # checks, nor anything else.
        self.assert_quiet("async")
        self.assert_quiet("open")

    def test_2_haproxy_send_proxy_v2_with_tlv(self):
        # proxy-v2-options crc32c: a TLV after the addresses, verified.
        self.need_haproxy()
        start = self.access_size("async")
        self.assert_greets(V2_CRC, self.client.addr, requests=2)
        self.assert_access("async", start, (self.client.addr, self.br), 2)
        self.assert_quiet("async")

    # --- 3. HAProxy mode http, option forwardfor ---

    def test_3_haproxy_forwardfor(self):
        self.need_haproxy()
        start = self.access_size("async")
        key = ("be%d" % XFF, "s")
        before = netns.haproxy_stat(self.stats_socket)[key]
        # Alternating clients over reused server connections
        # (http-reuse always): each request names its own client.
        for c in (self.client, self.client2, self.client, self.client2):
            self.assert_greets(XFF, c.addr, client=c)
        self.assert_greets(XFF, self.client.addr, requests=3)
        # The client's own X-Forwarded-For comes first and is not
        # believed: the element the balancer added names the client.
        self.assert_greets(XFF, self.client.addr, xff=SPOOFED)
        self.assert_access("async", start,
                           [(c.addr, self.br) for c in
                            (self.client, self.client2) * 2]
                           + [(self.client.addr, self.br)] * 4)
        after = netns.haproxy_stat(self.stats_socket)[key]
        # The connections to hellod were reused, across clients too.
        self.assertGreaterEqual(int(after["reuse"]) - int(before["reuse"]),
                                4, (before["reuse"], after["reuse"],
                                    before["connect"], after["connect"]))
        self.assert_quiet("async")

    # --- 4. nginx proxy_pass with X-Forwarded-For, keep-alive upstream ---

    def test_4_nginx_forwarded_for(self):
        self.need_nginx()
        start = self.access_size("async")
        # One idle upstream connection carries the requests of both
        # clients in turn: hellod keeps it open, nginx reuses it.
        a = self.topo.hosts[0].addr
        ports = []
        for c in (self.client, self.client2, self.client, self.client2):
            self.assert_greets(NGINX, c.addr, client=c)
            ports.append(self.upstream_ports("nginx", a, PLAIN))
        # No new connection after the first request (ones left idle by
        # an earlier test may be closed meanwhile).
        for p in ports:
            self.assertTrue(p and set(p) <= set(ports[0]), ports)
        self.assert_greets(NGINX, self.client.addr, requests=3)
        self.assert_greets(NGINX, self.client2.addr, client=self.client2,
                           xff=SPOOFED)
        self.assert_access("async", start,
                           [(c.addr, self.br) for c in
                            (self.client, self.client2) * 2]
                           + [(self.client.addr, self.br)] * 3
                           + [(self.client2.addr, self.br)])
        self.assert_quiet("async")

    # --- 5. a trust list without the balancer ---

    def test_5_untrusted_haproxy_send_proxy_v2(self):
        # The PROXY header is parsed (the request is answered) but not
        # believed: the greeting names the balancer.
        self.need_haproxy()
        self.server(UNTRUSTED_V2)
        start = self.access_size("untrusted")
        self.assert_greets(UNTRUSTED_V2, self.br)
        self.assert_greets(UNTRUSTED_V2, self.br, client=self.client2,
                           requests=2)
        self.assert_access("untrusted", start, (self.br, None), 3)
        self.assert_quiet("untrusted")

    def test_5_untrusted_nginx_forwarded_for(self):
        self.need_nginx()
        start = self.access_size("untrusted")
        self.assert_greets(NGINX_UNTRUSTED, self.br)
        self.assert_greets(NGINX_UNTRUSTED, self.br, client=self.client2,
                           xff=SPOOFED)
        self.assert_access("untrusted", start, (self.br, None), 2)
        self.assert_quiet("untrusted")

    # --- 6. the sync mode ---

    def test_6_sync_haproxy_send_proxy_v2(self):
        self.need_haproxy()
        self.server(SYNC_V2)
        start = self.access_size("sync")
        self.assert_greets(SYNC_V2, self.client.addr)
        self.assert_greets(SYNC_V2, self.client2.addr, client=self.client2)
        self.assert_access("sync", start, [(self.client.addr, self.br),
                                           (self.client2.addr, self.br)])
        row = netns.haproxy_stat(self.stats_socket)[("be%d" % SYNC_V2, "s")]
        self.assertEqual((row["status"], row["chkfail"]), ("UP", "0"), row)
        self.assert_quiet("sync")

    def test_6_sync_haproxy_forwardfor(self):
        self.need_haproxy()
        start = self.access_size("sync")
        for c in (self.client, self.client2, self.client):
            self.assert_greets(SYNC_XFF, c.addr, client=c)
        self.assert_greets(SYNC_XFF, self.client.addr, xff=SPOOFED)
        self.assert_access("sync", start,
                           [(c.addr, self.br) for c in
                            (self.client, self.client2, self.client,
                             self.client)])
        self.assert_quiet("sync")

    def test_6_sync_nginx_forwarded_for(self):
        self.need_nginx()
        start = self.access_size("sync")
        for c in (self.client, self.client2, self.client):
            self.assert_greets(NGINX_SYNC, c.addr, client=c)
        self.assert_greets(NGINX_SYNC, self.client2.addr,
                           client=self.client2, xff=SPOOFED)
        self.assert_access("sync", start,
                           [(c.addr, self.br) for c in
                            (self.client, self.client2, self.client,
                             self.client2)])
        self.assert_quiet("sync")

    # --- 7. load through each path ---

    def load(self, port, keepalive=False):
        """ab from the client namespace through the balancer's port to the
        async hellod: every request a 2xx, and one access log line per
        request naming the client, then the balancer as the peer."""
        start = self.access_size("async")
        d = netns.ab("http://%s:%d/" % (self.br, port), ns=self.client,
                     requests=LOAD_REQUESTS, concurrency=LOAD_CONCURRENCY,
                     keepalive=keepalive, timeout=30.0)
        summary = {k: v for k, v in d.items() if k != "output"}
        self.assertEqual(d["returncode"], 0, d["output"])
        self.assertEqual((d["complete"], d["failed"], d["non_2xx"],
                          d["write_errors"], d["exceptions"]),
                         (LOAD_REQUESTS, 0, 0, 0, 0), summary)
        if keepalive:
            self.assertGreater(d["keepalive"], 0, summary)
        lines = self.assert_access("async", start,
                                   (self.client.addr, self.br),
                                   LOAD_REQUESTS)
        for line in lines:
            self.assertRegex(line, r'"GET / HTTP/1\.[01]" 200 \d+ "-" '
                             r'"ApacheBench/')
        self.assert_quiet("async")
        return d

    def test_7_load_haproxy_send_proxy(self):
        self.need_haproxy()
        self.load(V1)

    def test_7_load_haproxy_send_proxy_v2(self):
        self.need_haproxy()
        self.load(V2)
        row = netns.haproxy_stat(self.stats_socket)[("be%d" % V2, "s")]
        self.assertEqual((row["status"], row["chkfail"]), ("UP", "0"), row)

    def test_7_load_haproxy_forwardfor(self):
        self.need_haproxy()
        self.load(XFF)

    def test_7_load_nginx(self):
        self.need_nginx()
        self.load(NGINX)
        self.load(NGINX, keepalive=True)


if __name__ == "__main__":
    netns.skip_unless_possible()
    ht.main()
