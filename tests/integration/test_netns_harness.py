#!/usr/bin/env python3
"""The network namespace harness (netns.py) on its own, with stand-in
backends: a client and two backend hosts in namespaces, HAProxy and nginx
on this host's bridge address in front of them, ab and wrk from the client
namespace, and nothing left behind afterwards, not even after a run that
was killed.  Root only (skipped otherwise).  About 10 s."""

import ipaddress
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
import unittest

import hellodtest as ht
import netns

PREFIX = "harn"
NET = 250                   # 198.18.250.0/24
KILLED_PREFIX = "harnk"
KILLED_NET = 251
PLAIN, PROXY, CHECK = 8080, 8081, 9180
HAPROXY_PORT, NGINX_PORT, SPARE_PORT = 8000, 8001, 8002


def seen(host):
    """The stand-in backend's request counts and last PROXY headers, read
    from this host."""
    r = ht.get(host.addr, PLAIN, "/_seen")
    assert r is not None and r.status == 200, r
    return json.loads(r.body)


# Podman's default bridge network (a /16), spelled so that this file
# does not match itself.
PODMAN_RE = r"\b10\.%d\." % 88


class Addresses(unittest.TestCase):
    """Every test network lies in 198.18.0.0/15 (RFC 2544), clear of the
    networks container tools create; no root needed."""

    def test_topologies_in_the_benchmark_range(self):
        for n in range(256):
            self.assertTrue(netns.network(n).subnet_of(
                netns.BENCHMARK_RANGE), n)
        self.assertEqual(netns.BENCHMARK_RANGE,
                         ipaddress.ip_network("198.18.0.0/15"))

    def test_no_test_address_in_podmans_network(self):
        """Nothing in tests/ or deploy/ names an address of podman's
        default bridge network."""
        top = os.environ.get("SRCDIR") or os.path.join(
            os.path.dirname(os.path.abspath(__file__)), "..", "..")
        found = []
        for sub in ("tests", "deploy"):
            for dirpath, dirs, files in os.walk(os.path.join(top, sub)):
                dirs[:] = [d for d in dirs if d not in ("corpus",
                                                        "__pycache__")]
                for name in files:
                    path = os.path.join(dirpath, name)
                    try:
                        with open(path, encoding="utf-8") as f:
                            text = f.read()
                    except (UnicodeDecodeError, OSError):
                        continue
                    found += ["%s:%d" % (os.path.relpath(path, top),
                                         text.count("\n", 0, m.start()) + 1)
                              for m in re.finditer(PODMAN_RE, text)]
        self.assertEqual(found, [])


class WrkClock(unittest.TestCase):
    """netns.wrk_clock(): wrk's timeouts count unless the wall clock
    stepped during the run; no root needed."""

    class Watch:
        def __init__(self, step):
            self._step = step

        def step(self):
            return self._step

    REPORT = ("Running 1m test @ http://198.18.40.1:80/\n"
              "  18747 requests in 11.38s, 3.02MB read\n"
              "  Socket errors: connect 0, read 1, write 0, timeout 24\n"
              "Requests/sec:   1647.37\n")

    def test_steady_clock_counts_timeouts(self):
        d = netns.wrk_clock(netns.parse_wrk(self.REPORT), self.Watch(0.2))
        self.assertEqual((d["read"], d["timeout"], d["timeout_clock"]),
                         (1, 24, 0))

    def test_clock_step_moves_timeouts(self):
        for step in (6.35, -3.0):
            d = netns.wrk_clock(netns.parse_wrk(self.REPORT),
                                self.Watch(step))
            self.assertEqual((d["read"], d["timeout"], d["timeout_clock"],
                              d["clock_step"]), (1, 0, 24, step))

    def test_clock_watch_follows_the_clocks(self):
        watch = netns.ClockWatch()
        self.assertLess(abs(watch.step()), netns.CLOCK_STEP_LIMIT)
        watch.wall -= 5.0       # as if the wall clock jumped 5 s ahead
        self.assertAlmostEqual(watch.step(), 5.0, delta=0.5)


class Harness(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.topo = netns.Topology(PREFIX, hosts=2, net=NET)
        try:
            for h in cls.topo.hosts:
                h.echo_server(PLAIN, proxy_port=PROXY, check_port=CHECK)
        except BaseException:
            cls.topo.close()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.topo.close()
        left = netns.leftovers(PREFIX)
        if any(left.values()):
            raise AssertionError("left after close(): %r" % left)

    def setUp(self):
        self.topo = type(self).topo
        self.client = self.topo.client
        self.backends = [(h.addr, PLAIN) for h in self.topo.hosts]

    def assert_ab(self, port, **kw):
        d = netns.ab("http://%s:%d/" % (self.topo.addr, port),
                     ns=self.client, requests=200, concurrency=10,
                     timeout=30.0, **kw)
        summary = {k: v for k, v in d.items() if k != "output"}
        self.assertEqual(d["returncode"], 0, d["output"])
        self.assertEqual(d["complete"], 200, summary)
        self.assertEqual(d["failed"], 0, summary)
        self.assertEqual(d["non_2xx"], 0, summary)
        self.assertGreater(d["rps"], 0, summary)
        return d

    def test_addresses_and_routes(self):
        t = self.topo
        self.assertEqual(t.addr, "198.18.%d.1" % NET)
        self.assertEqual([n.addr for n in t.namespaces],
                         ["198.18.%d.%d" % (NET, i) for i in (2, 11, 12)])
        self.assertEqual([n.name for n in t.namespaces],
                         ["hd-harn-client", "hd-harn-h1", "hd-harn-h2"])
        for n in t.namespaces:
            routes = json.loads(n.run(["ip", "-j", "-4", "route"],
                                      check=True).stdout)
            self.assertEqual([r["dst"] for r in routes],
                             ["198.18.%d.0/24" % NET], n)
            # No way out of the small network (a local lookup; nothing
            # is sent).
            p = n.run(["ip", "route", "get", "192.0.2.1"])
            self.assertNotEqual(p.returncode, 0, p.stdout)
            self.assertIn("unreachable", p.stderr)
            self.assertEqual(n.sysctl("net.ipv6.conf.all.disable_ipv6"), "1")
        self.assertIn("hd-harn-br", netns.leftovers(PREFIX)["links"])

    def test_socket_from_namespace(self):
        # In-process: a socket made inside the client namespace (setns),
        # accepted on this host's bridge address.
        own = os.stat("/proc/thread-self/ns/net").st_ino
        with socket.socket() as lsock:
            lsock.bind((self.topo.addr, 0))
            lsock.listen(1)
            lsock.settimeout(5.0)
            with self.client.connect(self.topo.addr,
                                     lsock.getsockname()[1]) as c:
                conn, peer = lsock.accept()
                conn.close()
                self.assertEqual(peer[0], self.client.addr)
                self.assertEqual(c.getsockname()[0], self.client.addr)
        # This thread is back in its own namespace.
        self.assertEqual(os.stat("/proc/thread-self/ns/net").st_ino, own)

    def test_host_reaches_backends(self):
        for h in self.topo.hosts:
            r = ht.get(h.addr, PLAIN, "/x")
            self.assertEqual(r.status, 200)
            d = json.loads(r.body)
            self.assertEqual((d["server"], d["peer"], d["path"]),
                             (h.role, self.topo.addr, "/x"))

    def test_raw_exchange_with_proxy_header(self):
        h = self.topo.hosts[0]
        head = ("PROXY TCP4 198.18.%d.99 %s 4000 %d\r\n"
                % (NET, h.addr, PROXY)).encode()
        data, end = self.client.exchange(
            h.addr, PROXY, head + b"GET / HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n")
        self.assertEqual(end, "eof")
        d = json.loads(data.split(b"\r\n\r\n", 1)[1])
        self.assertEqual(d["proxy"]["src"], "198.18.%d.99" % NET)
        self.assertEqual(d["peer"], self.client.addr)

    def test_haproxy_forwardfor(self):
        lb = self.topo.haproxy(netns.haproxy_config(
            self.backends, self.topo.addr, HAPROXY_PORT, forwardfor=True,
            check_port=CHECK, retries=True))
        try:
            replies = self.client.http_get_all(self.topo.addr, HAPROXY_PORT,
                                               count=4)
            for r in replies:
                self.assertEqual(r.status, 200, r)
                d = r.json()
                self.assertEqual(d["headers"].get("x-forwarded-for"),
                                 self.client.addr, d)
                self.assertEqual(d["peer"], self.topo.addr)
            self.assertEqual({r.json()["server"] for r in replies},
                             {"h1", "h2"})
            self.assert_ab(HAPROXY_PORT)
            self.assert_ab(HAPROXY_PORT, keepalive=True)
            self.assertNotIn(" is DOWN", lb.log())
        finally:
            lb.stop()

    def proxied(self, option, version, check_port):
        """HAProxy in TCP mode with a server option sending a PROXY
        header; health checks go to check_port, or to the PROXY port when
        None.  Returns the last PROXY header a check carried."""
        key = "%d /healthz" % (check_port or PROXY)
        before = [seen(h)["requests"].get(key, 0) for h in self.topo.hosts]
        lb = self.topo.haproxy(netns.haproxy_config(
            [(h.addr, PROXY) for h in self.topo.hosts], self.topo.addr,
            SPARE_PORT, server_options=option, check=True,
            check_port=check_port))
        try:
            for h, n in zip(self.topo.hosts, before):
                ht.wait_for(lambda: seen(h)["requests"].get(key, 0) >= n + 2,
                            10.0, 0.05, "two health checks on %s" % h.name)
            replies = self.client.http_get_all(self.topo.addr, SPARE_PORT,
                                               count=2)
            for r in replies:
                p = r.json()["proxy"]
                self.assertEqual((p["version"], p["command"], p["src"],
                                  p["dst"], p["dport"]),
                                 (version, "proxy", self.client.addr,
                                  self.topo.addr, SPARE_PORT), p)
            self.assertEqual({r.json()["server"] for r in replies},
                             {"h1", "h2"})
            self.assert_ab(SPARE_PORT)
            self.assertNotIn(" is DOWN", lb.log())
        finally:
            lb.stop()
        return seen(self.topo.hosts[0])["proxy"].get(key)

    def test_haproxy_send_proxy(self):
        self.assertIsNone(self.proxied("send-proxy", 1, CHECK))

    def test_haproxy_send_proxy_v2(self):
        self.assertIsNone(self.proxied("send-proxy-v2", 2, CHECK))

    def test_haproxy_send_proxy_v2_checks_too(self):
        # HAProxy's checks carry a v2 header with the LOCAL command (no
        # addresses): a proxy_listen address must accept it.
        p = self.proxied("send-proxy-v2 check-send-proxy", 2, None)
        self.assertEqual((p["version"], p["command"]), (2, "local"), p)

    def test_nginx(self):
        lb = self.topo.nginx(netns.nginx_config(
            self.backends, self.topo.addr, NGINX_PORT,
            set_headers={"X-Real-IP": "$remote_addr"}))
        try:
            replies = self.client.http_get_all(self.topo.addr, NGINX_PORT,
                                               count=10)
            conns = set()
            for r in replies:
                self.assertEqual(r.status, 200, r)
                d = r.json()
                self.assertEqual(d["headers"].get("x-forwarded-for"),
                                 self.client.addr, d)
                self.assertEqual(d["headers"].get("x-real-ip"),
                                 self.client.addr, d)
                self.assertEqual(d["peer"], self.topo.addr)
                conns.add((d["server"], d["peer_port"]))
            self.assertEqual({s for s, _ in conns}, {"h1", "h2"})
            # Keep-alive upstream connections: ten requests, fewer
            # connections.
            self.assertLess(len(conns), 10, conns)
            self.assert_ab(NGINX_PORT)
            self.assert_ab(NGINX_PORT, keepalive=True)
            log = lb.log()
            self.assertNotIn("[emerg]", log)
            self.assertNotIn("/var/lib/nginx", log)
            self.assertTrue(os.path.exists(os.path.join(lb.dir, "nginx.pid")))
        finally:
            lb.stop()
        self.assertFalse(lb.alive())

    def test_wrk(self):
        lb = self.topo.nginx(netns.nginx_config(
            self.backends, self.topo.addr, NGINX_PORT))
        try:
            d = netns.wrk("http://%s:%d/" % (self.topo.addr, NGINX_PORT),
                          ns=self.client, seconds=1, connections=4)
        finally:
            lb.stop()
        self.assertEqual(d["returncode"], 0, d["output"])
        self.assertGreater(d["requests"], 0, d["output"])
        self.assertEqual((d["non_2xx_3xx"], d["connect"], d["read"],
                          d["write"], d["timeout"]), (0, 0, 0, 0, 0),
                         d["output"])

    def test_isolation(self):
        h = self.topo.hosts[0]
        with socket.socket() as lsock:
            lsock.bind((self.topo.addr, 0))
            lsock.listen(4)
            port = lsock.getsockname()[1]
            self.topo.isolate(True)
            try:
                # Namespaces reach this host, not each other.
                self.client.connect(self.topo.addr, port).close()
                with self.assertRaises(OSError):
                    self.client.connect(h.addr, PLAIN, timeout=1.0).close()
                self.assertEqual(ht.get(h.addr, PLAIN).status, 200)
            finally:
                self.topo.isolate(False)
        self.client.connect(h.addr, PLAIN).close()

    def test_hellod_in_a_namespace(self):
        if not os.access(ht.HELLOD, os.X_OK):
            self.skipTest("no hellod binary at %s (set HELLOD)" % ht.HELLOD)
        h = self.topo.hosts[0]
        d = ht.Hellod("[server]\nworkers = 2\n", host=h.addr, port=8090,
                      wrapper=h.wrapper, ready=False)
        try:
            netns.wait_listening(d.proc, h.addr, 8090, ns=h, log=d.log)
            d.wait_ready()
            self.assertTrue(h.holds(d.proc.pid))
            lb = self.topo.haproxy(netns.haproxy_config(
                [(h.addr, 8090)], self.topo.addr, SPARE_PORT,
                forwardfor=True))
            try:
                r = self.client.http_get(self.topo.addr, SPARE_PORT)
                self.assertEqual(r.status, 200)
                # Greets its peer, the balancer, until [proxy] lands.
                self.assertEqual(r.body, ht.greeting(self.topo.addr))
                self.assert_ab(SPARE_PORT)
            finally:
                lb.stop()
        except BaseException:
            d.close()
            raise
        ht.stop_and_close(d)


# Run by KilledRun in a child process that is then killed with SIGKILL.
KILLED_CHILD = r"""
import json, sys, time
import netns
topo = netns.Topology(%(prefix)r, hosts=1, net=%(net)d)
h = topo.hosts[0]
pids = [h.echo_server(8080).pid]
for start in (lambda: topo.haproxy(netns.haproxy_config(
                  [(h.addr, 8080)], topo.addr, 8000)),
              lambda: topo.nginx(netns.nginx_config(
                  [(h.addr, 8080)], topo.addr, 8001))):
    try:
        pids.append(start().pid)
    except netns.Skip:
        pass
# A process that outlives the run unless cleaned up: no parent-death
# signal, not in the topology's records.
sleeper = h.popen(["sleep", "120"], preexec_fn=None, start_new_session=True)
pids.append(sleeper.pid)
print(json.dumps(pids), flush=True)
time.sleep(120)
"""


class KilledRun(unittest.TestCase):

    def test_fresh_start_removes_a_killed_run(self):
        child = subprocess.Popen(
            [sys.executable, "-c", KILLED_CHILD % {"prefix": KILLED_PREFIX,
                                                   "net": KILLED_NET}],
            stdout=subprocess.PIPE, env=dict(
                os.environ, PYTHONPATH=os.path.dirname(
                    os.path.abspath(__file__))))
        try:
            ready, _, _ = select.select([child.stdout], [], [], 20.0)
            line = child.stdout.readline() if ready else b""
            self.assertTrue(line, "the child did not build its topology")
            pids = json.loads(line)
            # Every process of theirs, nginx workers too, by process group.
            procs = {}
            for name in os.listdir("/proc"):
                if name.isdigit():
                    st = netns._proc_stat(int(name))
                    if st and (st[0] in pids or int(name) in pids):
                        procs[int(name)] = st[1]
            self.assertGreaterEqual(len(procs), len(pids))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(10)
            child.stdout.close()
        left = netns.leftovers(KILLED_PREFIX)
        self.assertEqual(len(left["netns"]), 2, left)
        self.assertEqual(len(left["links"]), 3, left)
        self.assertTrue(left["state"], left)
        self.assertTrue(left["processes"], left)       # at least sleep

        start = time.monotonic()
        topo = netns.Topology(KILLED_PREFIX, hosts=1, net=KILLED_NET)
        try:
            took = time.monotonic() - start
            for pid, since in procs.items():
                st = netns._proc_stat(pid)
                # A zombie waits for init to reap it: gone enough.
                self.assertTrue(st is None or st[1] != since
                                or not ht.proc_alive(pid),
                                "pid %d of the killed run is alive" % pid)
            self.assertEqual(topo.leftovers()["processes"], [])
            self.assertLess(took, 10.0)
            r = topo.client.run(["ip", "-j", "-4", "addr", "show", "eth0"],
                                check=True)
            self.assertIn(topo.client.addr, r.stdout)
        finally:
            topo.close()
        left = netns.leftovers(KILLED_PREFIX)
        self.assertFalse(any(left.values()), left)


if __name__ == "__main__":
    netns.skip_unless_possible()
    ht.main()
