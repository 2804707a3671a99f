#!/usr/bin/env python3
"""The load-balancer engineer's test target behind real balancers, across
network namespaces: /json through HAProxy (PROXY v2, `option
forwardfor`) and nginx (X-Forwarded-For) names the client, the peer, the
source and the hops, trusted and untrusted; HAProxy marks a server
timeout for ?delay= (504, sH) and ?delay_body= (sD); and HAProxy's
agent-check on [status] agent_listen drains one of three hellods during
its drain_notice while the others answer, with no failed request.  Root
only (exit 77 otherwise); a case skips when HAProxy or nginx is missing.

    bridge 198.18.246.1: HAProxy and nginx
      client  198.18.246.2
      h1 198.18.246.11  async, trusted = the bridge address
      h2 198.18.246.12  sync,  trusted = the bridge address
      h3 198.18.246.13  async, trusted = a network without the balancer

Each hellod: plain 8080, PROXY 8081, status 9000, agent 9001."""

import json
import os
import re
import signal
import socket
import subprocess
import time
import unittest

import hellodtest as ht
import netns

PREFIX = "lbapi"
NET = 246
PLAIN, PROXY, STATUS, AGENT = 8080, 8081, 9000, 9001
V2, V2_UNTRUSTED, XFF, SLOW, POOL = 8002, 8022, 8003, 8005, 8006
NGINX, NGINX_UNTRUSTED = 8100, 8101
OTHER_NET = "198.51.100.0/24"
SPOOFED = "203.0.113.7"
AGENT_INTER = 0.3           # s
DRAIN_NOTICE = 4.0          # s
SLOW_TIMEOUT = "400ms"


def hellod_conf(addr, trusted):
    return ("[server]\nlisten = %(a)s:%(plain)d\nproxy_listen = %(a)s:%(proxy)d\n"
            "workers = 2\n"
            "[http]\nendpoints = on\nidentity = on\nquery_knobs = on\n"
            "query_max_delay = 5s\n"
            "[proxy]\ntrusted = %(t)s\nheader = x-forwarded-for\n"
            "[status]\nlisten = %(a)s:%(status)d\n"
            "agent_listen = %(a)s:%(agent)d\ndrain_notice = %(dn)dms\n"
            % {"a": addr, "plain": PLAIN, "proxy": PROXY, "t": trusted,
               "status": STATUS, "agent": AGENT,
               "dn": int(DRAIN_NOTICE * 1000)})


def haproxy_conf(topo, stats_socket):
    h1, h2, h3 = (h.addr for h in topo.hosts)
    br = topo.addr
    agent = ("check inter 300ms fall 2 rise 1 agent-check agent-port %d "
             "agent-inter %dms" % (AGENT, int(AGENT_INTER * 1000)))
    lines = netns.haproxy_head(stats_socket)
    fronts = [
        (V2, "tcp", [], ["server s %s:%d send-proxy-v2" % (h1, PROXY)]),
        (V2_UNTRUSTED, "tcp", [],
         ["server s %s:%d send-proxy-v2" % (h3, PROXY)]),
        (XFF, "http", ["option forwardfor"],
         ["server s %s:%d" % (h1, PLAIN)]),
        (SLOW, "http", ["timeout server %s" % SLOW_TIMEOUT],
         ["server s %s:%d" % (h1, PLAIN)]),
        (POOL, "http", ["balance roundrobin", "option forwardfor"],
         ["server h1 %s:%d %s" % (h1, PLAIN, agent),
          "server h2 %s:%d %s" % (h2, PLAIN, agent),
          "server h3 %s:%d %s" % (h3, PLAIN, agent)]),
    ]
    for port, mode, extra, servers in fronts:
        lines += ["frontend fe%d" % port, "    mode %s" % mode,
                  "    option %slog" % mode, "    bind %s:%d" % (br, port),
                  "    default_backend be%d" % port, "",
                  "backend be%d" % port, "    mode %s" % mode]
        lines += ["    " + x for x in extra + servers] + [""]
    return "\n".join(lines)


def nginx_conf(topo):
    h1, _, h3 = (h.addr for h in topo.hosts)
    out = ""
    for port, addr in ((NGINX, h1), (NGINX_UNTRUSTED, h3)):
        out += ("    server {\n"
                "        listen %s:%d;\n"
                "        location / {\n"
                "            proxy_pass http://%s:%d;\n"
                "            proxy_http_version 1.1;\n"
                "            proxy_set_header Connection \"\";\n"
                "            proxy_set_header X-Forwarded-For "
                "$proxy_add_x_forwarded_for;\n"
                "        }\n"
                "    }\n" % (topo.addr, port, addr, PLAIN))
    return out


# Runs in the client namespace: GETs /json through the pool for `seconds`,
# a few connections at a time (bounded), each request on a new connection;
# prints one JSON line per request: start time, status or error, listener.
LOAD = r"""
import http.client, json, sys, threading, time
host, port, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.time() + seconds
out, lock = [], threading.Lock()
def run():
    while time.time() < end:
        t = time.time()
        rec = {"t": t}
        try:
            c = http.client.HTTPConnection(host, port, timeout=5)
            c.request("GET", "/json", headers={"Connection": "close"})
            r = c.getresponse()
            body = r.read()
            c.close()
            rec["status"] = r.status
            if r.status == 200:
                rec["listener"] = json.loads(body)["server"]["listener"]["address"]
        except Exception as e:
            rec["error"] = repr(e)
        with lock:
            out.append(rec)
        time.sleep(0.01)
ts = [threading.Thread(target=run) for _ in range(4)]
for t in ts: t.start()
for t in ts: t.join()
print(json.dumps(out))
"""


class BalancerApi(netns.BalancedHellods, unittest.TestCase):

    PREFIX, NET, HOSTS, CLIENTS = PREFIX, NET, 3, 1

    @classmethod
    def start_hellods(cls):
        topo = cls.topo
        br = "%s/32" % topo.addr
        for (name, trusted, args), h in zip(
                [("h1", br, ()), ("h2", br, ("--sync",)),
                 ("h3", OTHER_NET, ())], topo.hosts):
            d = ht.Hellod(hellod_conf(h.addr, trusted), args=args,
                          host=h.addr, port=PLAIN, wrapper=h.wrapper,
                          ready=False)
            cls.hellods.append(d)
            for port in (PLAIN, PROXY, AGENT):
                netns.wait_listening(d.proc, h.addr, port, ns=h, log=d.log)
            cls.hd[name] = d

    @classmethod
    def haproxy_text(cls):
        return haproxy_conf(cls.topo, cls.stats_socket)

    @classmethod
    def nginx_text(cls):
        return nginx_conf(cls.topo)

    def setUp(self):
        self.br = self.topo.addr
        self.client = self.topo.client
        self.h1, self.h2, self.h3 = (h.addr for h in self.topo.hosts)

    def need_haproxy(self):
        if self.haproxy is None:
            self.skipTest(self.haproxy_missing)

    def need_nginx(self):
        if self.nginx is None:
            self.skipTest(self.nginx_missing)

    def json_via(self, port, headers=None):
        r = self.client.http_get(self.br, port, "/json", headers=headers)
        self.assertEqual(r.status, 200)
        return json.loads(r.body)

    # --- /json behind the balancers ---

    def test_haproxy_proxy_v2(self):
        self.need_haproxy()
        j = self.json_via(V2)
        self.assertEqual(j["client"], self.client.addr)
        self.assertEqual(j["peer"], self.br)
        self.assertEqual(j["source"], "proxy")
        self.assertEqual(j["proxy"], {"source": self.client.addr,
                                      "believed": True})
        self.assertEqual(j["server"]["listener"],
                         {"address": "%s:%d" % (self.h1, PROXY),
                          "kind": "proxy"})
        # Untrusted: parsed, named, not believed.
        j = self.json_via(V2_UNTRUSTED)
        self.assertEqual(j["client"], self.br)
        self.assertEqual(j["source"], "peer")
        self.assertEqual(j["proxy"], {"source": self.client.addr,
                                      "believed": False})

    def test_haproxy_forwardfor(self):
        self.need_haproxy()
        j = self.json_via(XFF)
        self.assertEqual((j["client"], j["peer"], j["source"]),
                         (self.client.addr, self.br, "x-forwarded-for"))
        self.assertEqual(j["forwarded"], {"header": "x-forwarded-for",
                                          "hops": 1, "trusted": 0})
        # A spoofed element left of the real client is not believed.
        j = self.json_via(XFF, {"X-Forwarded-For": SPOOFED})
        self.assertEqual(j["client"], self.client.addr)
        self.assertEqual(j["forwarded"], {"header": "x-forwarded-for",
                                          "hops": 2, "trusted": 0})

    def test_nginx_forwarded_for(self):
        self.need_nginx()
        j = self.json_via(NGINX)
        self.assertEqual((j["client"], j["peer"], j["source"]),
                         (self.client.addr, self.br, "x-forwarded-for"))
        self.assertEqual(j["forwarded"]["hops"], 1)
        # h3 does not trust nginx: the peer, nothing walked.
        j = self.json_via(NGINX_UNTRUSTED, {"X-Forwarded-For": SPOOFED})
        self.assertEqual((j["client"], j["peer"], j["source"]),
                         (self.br, self.br, "peer"))
        self.assertEqual(j["forwarded"], {"header": "x-forwarded-for",
                                          "hops": 0, "trusted": 0})

    # --- faults seen by HAProxy ---

    def test_server_timeouts(self):
        self.need_haproxy()
        r = self.client.http_get(self.br, SLOW, "/?delay=1s")
        self.assertEqual(r.status, 504)
        # The head in time, the body late: HAProxy cuts the response.
        data, end = self.client.exchange(
            self.br, SLOW, b"GET /?delay_body=1s HTTP/1.1\r\n"
            b"Host: a\r\nUser-Agent: Mozilla/5.0\r\n"
            b"Connection: close\r\n\r\n", timeout=5.0)
        self.assertTrue(data.startswith(b"HTTP/1.1 200 OK\r\n"), data)
        head, body = data.split(b"\r\n\r\n", 1)
        length = int(re.search(rb"Content-Length: (\d+)", head,
                               re.I).group(1))
        self.assertLess(len(body), length, "the body was not cut")
        log = ht.wait_for(lambda: (lambda t: t if re.search(r" sD--", t)
                                   else None)(self.haproxy.log()),
                          5.0, 0.05, "an sD termination in HAProxy's log")
        self.assertRegex(log, r" 504 .* sH--")

    # --- the agent ---

    def stat(self, sv):
        return netns.haproxy_stat(self.stats_socket)[("be%d" % POOL, sv)]

    def test_agent_drain(self):
        self.need_haproxy()
        for sv in ("h1", "h2", "h3"):
            ht.wait_for(lambda: self.stat(sv)["status"] == "UP", 10.0, 0.05,
                        "%s UP" % sv)
        # The agent's own answer, straight (from this host: the client
        # reaches the balancers only).
        with socket.create_connection((self.h2, AGENT), timeout=5) as s:
            line, data = b"", b"x"
            while data:
                data = s.recv(64)
                line += data
        self.assertRegex(line.decode(), r"^up ready \d+%\n$")
        seconds = DRAIN_NOTICE + 4.0
        load = self.client.popen([__import__("sys").executable, "-c", LOAD,
                                  self.br, str(POOL), str(seconds)],
                                 stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
        try:
            time.sleep(1.0)     # load on all three first
            t_term = time.time()
            self.hd["h2"].kill(signal.SIGTERM)
            seen = []

            def drained():
                st = self.stat("h2")
                seen.append((st["status"], st.get("agent_status"),
                             st.get("weight")))
                # "DRAIN" or "DRAIN (agent)", by HAProxy's version
                return st["status"].startswith("DRAIN")
            try:
                ht.wait_for(drained, AGENT_INTER * 3 + 1.0, 0.02,
                            "h2 DRAIN")
            except AssertionError:
                raise AssertionError("h2: %r" % sorted(set(seen)))
            t_drain = time.time()
            self.assertLess(t_drain - t_term, AGENT_INTER * 3 + 1.0)
            self.assertEqual(self.stat("h1")["status"], "UP")
            self.assertEqual(self.stat("h3")["status"], "UP")
            out, err = load.communicate(timeout=seconds + 30)
        finally:
            if load.poll() is None:
                load.kill()
                load.communicate()
        recs = json.loads(out)
        failed = [r for r in recs if r.get("status") != 200]
        self.assertEqual(failed, [], "failed requests")
        by = lambda addr, cond: [r for r in recs if cond(r["t"]) and
                                 r["listener"].startswith(addr + ":")]
        self.assertTrue(by(self.h2, lambda t: t < t_term), "h2 never served")
        # Once HAProxy shows DRAIN (plus one request in flight), h2 gets
        # no new request; the others go on.
        late = by(self.h2, lambda t: t > t_drain + 0.1)
        self.assertEqual(late, [])
        self.assertTrue(by(self.h1, lambda t: t > t_drain))
        self.assertTrue(by(self.h3, lambda t: t > t_drain))
        self.assertGreater(len(recs), 50)
        self.assertEqual(self.hd["h2"].wait_exit(15.0), 0)
        # Started again, h2 is READY again: "up ready" ends the drain.
        h = self.topo.hosts[1]
        d = ht.Hellod(hellod_conf(h.addr, "%s/32" % self.br),
                      args=("--sync",), host=h.addr, port=PLAIN,
                      wrapper=h.wrapper, ready=False)
        self.hellods.append(d)
        self.hd["h2"] = d
        netns.wait_listening(d.proc, h.addr, AGENT, ns=h, log=d.log)
        ht.wait_for(lambda: self.stat("h2")["status"] == "UP", 10.0, 0.05,
                    "h2 UP again after its restart")


if __name__ == "__main__":
    ht.main()
