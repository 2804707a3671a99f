#!/usr/bin/env python3
"""hellod behind HAProxy on one, two and three hosts.

Each host is a network namespace of its own, built by
tests/integration/netns.py on a bridge of this machine:

    bridge hd-bcl-br   198.18.240.1   HAProxy, one frontend per host count
      hd-bcl-client    198.18.240.2   ab and wrk (or h2load)
      hd-bcl-h1        198.18.240.11  hellod: listen :8080, proxy_listen
      hd-bcl-h2        198.18.240.12    :8081, status :9180, [proxy]
      hd-bcl-h3        198.18.240.13    trusted = 198.18.240.1/32

Bridge port isolation lets the client reach HAProxy only, never a host.
HAProxy runs in mode tcp with send-proxy-v2 to each host's proxy_listen,
checks each host's status server (GET /healthz on :9180) every 200 ms,
and balances round-robin.  For one, two and three hosts in turn, this
script starts HAProxy in front of that many, waits until every check
passes, sends one request per host (each must greet the client by its
own address, carried in the PROXY v2 header), then runs

  1. the article's command from the client namespace:
     ab -r -n1000 -c150 -l http://198.18.240.1:PORT/
  2. a sustained keep-alive load: wrk -t1 -c100 -d5s (or h2load --h1
     -c100 -D5 without wrk)

and prints, per host count, the article's fields (requests per second,
failed requests, time per request both ways), each host's share of the
requests from its /metrics (hellod_http_requests_total after minus
before, every status code), HAProxy's sessions per server, and the CPU
per request of the hellods, of HAProxy and of the load generator (from
/proc and getrusage).  It ends with what a machine of this size can
and cannot show about scaling.

Every load is bounded in requests and time and goes only to the bridge
address; everything built here is removed at the end (and at the start
of the next run, after a killed one).  Needs root, iproute2, haproxy,
ab, and wrk or h2load; exits 77 with the reason when something is
missing.  Python 3 standard library only.

Output (--out DIR): results.txt (what is printed), results.csv (one row
per host count x load x host), raw/ (every tool's output, each host's
hellod log, HAProxy's configuration and log).

Exit status: 0 success, 1 a run failed or a request failed, 2 usage
error, 77 skipped."""

import argparse
import csv
import os
import re
import resource
import shutil
import signal
import sys
import tempfile
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree

import bench  # noqa: E402  (tests/bench/bench.py: /proc and table helpers)
import netns  # noqa: E402  (tests/integration/netns.py)

PREFIX = "bcl"              # hd-bcl-*: not used by any test
NET = 240                   # 198.18.240.0/24
PLAIN, PROXY, STATUS = 8080, 8081, 9180
FRONTEND = 8000             # HAProxy for N hosts listens on FRONTEND + N
SKIP = 77
ARTICLE = (("blocking", 529.0, 130), ("asyncio", 705.0, 44))
CHECK_INTERVAL = "inter 200ms fall 2 rise 1"


class ClusterError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def skip(why):
    log("bench_cluster.py: skipped: %s" % why)
    sys.exit(SKIP)


# --------------------------------------------------------------- helpers

def http_get(addr, port, path, timeout=2.0):
    """One GET from this machine's namespace (the bridge reaches every
    host); (status, body) or None."""
    return bench.http_get(addr, port, path, timeout)


def requests_total(addr):
    """hellod_http_requests_total of the host at addr, summed over the
    status codes, and the 200s alone; (total, ok)."""
    got = http_get(addr, STATUS, "/metrics", 5.0)
    if not got or got[0] != 200:
        raise ClusterError("GET http://%s:%d/metrics answered %r"
                           % (addr, STATUS, got and got[0]))
    total = ok = 0
    for m in re.finditer(rb'^hellod_http_requests_total\{code="(\d+)"\} '
                         rb'(\d+)$', got[1], re.M):
        total += int(m.group(2))
        if m.group(1) == b"200":
            ok += int(m.group(2))
    return total, ok


def haproxy_stat(path):
    """The backend's servers in HAProxy's `show stat`: {name: row}."""
    return {sv: r for (px, sv), r in netns.haproxy_stat(path).items()
            if px == "be" and sv not in ("BACKEND", "FRONTEND")}


def ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0,
                           "m": 60000.0}[unit]


def num(pattern, text, cast=float):
    m = re.search(pattern, text, re.M)
    return cast(m.group(1)) if m else None


# ------------------------------------------------------------------ loads

class Cluster:
    def __init__(self, args, tools):
        self.args, self.tools = args, tools
        self.raw = os.path.join(args.out, "raw")
        os.makedirs(self.raw, exist_ok=True)
        self.tmp = tempfile.TemporaryDirectory(prefix="hellod-cluster-")
        self.topo = None
        self.hellods = []           # netns.Process, one per host
        self.report = []
        self.rows = []              # for results.csv
        self.summary = []           # one dict per host count

    def emit(self, text=""):
        print(text, flush=True)
        self.report.append(text)

    # setup ------------------------------------------------------------
    def build(self):
        n = max(self.args.hosts)
        try:
            self.topo = netns.Topology(PREFIX, hosts=n, clients=1,
                                       net=self.args.net, isolate=True)
        except RuntimeError as e:
            raise ClusterError("cannot build the namespaces: %s" % e)
        for h in self.topo.hosts:
            self.hellods.append(self.start_hellod(h))

    def start_hellod(self, h):
        conf = os.path.join(self.tmp.name, "hellod-%s.conf" % h.role)
        lines = ["[server]", "listen = %s:%d" % (h.addr, PLAIN),
                 "proxy_listen = %s:%d" % (h.addr, PROXY),
                 "workers = %s" % self.args.workers,
                 "shutdown_timeout = 5s", "user = root",
                 "[proxy]", "trusted = %s/32" % self.topo.addr,
                 "[status]", "listen = %s:%d" % (h.addr, STATUS),
                 "[log]", "level = info"]
        with open(conf, "w") as f:
            f.write("\n".join(lines) + "\n")
        p = h.start([self.args.hellod, "--foreground", "-c", conf],
                    name="hellod-%s" % h.role)
        try:
            for port in (PLAIN, PROXY, STATUS):
                p.wait_listening(h.addr, port, 15.0)
            bench.wait_for(lambda: (http_get(h.addr, STATUS, "/healthz")
                                    or (0,))[0] == 200,
                           15, "/healthz of %s to say 200" % h.role)
        except (AssertionError, bench.BenchError) as e:
            raise ClusterError("hellod on %s did not start: %s\n%s"
                               % (h.role, e, p.log()[-2000:]))
        return p

    def start_haproxy(self, k):
        hosts = self.topo.hosts[:k]
        sock = os.path.join(self.tmp.name, "haproxy-%d.sock" % k)
        conf = netns.haproxy_config(
            [(h.addr, PROXY) for h in hosts], self.topo.addr, FRONTEND + k,
            mode="tcp", server_options="send-proxy-v2",
            check_port=STATUS, check_path="/healthz")
        # The harness's configuration plus a stats socket, to see the
        # checks pass and the sessions each server got.
        conf = conf.replace("global\n", "global\n    stats socket %s mode 600"
                            " level admin\n" % sock, 1)
        with open(os.path.join(self.raw, "haproxy-%dhosts.cfg" % k),
                  "w") as f:
            f.write(conf)
        try:
            lb = self.topo.haproxy(conf)
        except AssertionError as e:
            raise ClusterError("HAProxy did not start: %s" % e)
        names = ["s%d" % (i + 1) for i in range(k)]

        def all_up():
            try:
                st = haproxy_stat(sock)
            except OSError:
                return False
            if all(st.get(n, {}).get("status") == "UP" and
                   st[n].get("check_status") == "L7OK" for n in names):
                return st
            return False
        try:
            st = bench.wait_for(all_up, 15, "every health check to pass")
        except bench.BenchError as e:
            raise ClusterError("%s: %s\n%s" % (e, haproxy_stat(sock),
                                               lb.log()[-2000:]))
        checks = {n: "%s %s" % (st[n]["check_status"], st[n]["check_code"])
                  for n in names}
        return lb, sock, checks

    # measuring ----------------------------------------------------------
    def snapshot(self, sock):
        """Requests counted by every host's /metrics, HAProxy's sessions
        per server, CPU seconds of every hellod and of HAProxy."""
        st = haproxy_stat(sock)
        return {
            "metrics": [requests_total(h.addr) for h in self.topo.hosts],
            "sessions": [int(st.get("s%d" % (i + 1), {}).get("stot") or 0)
                         for i in range(len(self.topo.hosts))],
            "hd_cpu": sum(bench.tree_cpu_time(p.pid) for p in
                          self.hellods),
            "lb_cpu": bench.tree_cpu_time(self.lb.pid),
        }

    def client_run(self, argv, timeout, raw_name):
        """argv in the client namespace; (exit status, output, wall
        seconds, client CPU seconds)."""
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        try:
            p = self.topo.client.run(argv, timeout=timeout)
        except AssertionError as e:     # killed at timeout
            raise ClusterError(str(e)[:2000])
        wall = time.monotonic() - t0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        out = p.stdout + p.stderr
        with open(os.path.join(self.raw, raw_name + ".txt"), "w") as f:
            f.write("$ %s\n%s" % (" ".join(argv), out))
        return p.returncode, out, wall, cpu

    def measure(self, k, load, argv, timeout, parse):
        before = self.snapshot(self.sock)
        rc, out, wall, ccpu = self.client_run(
            argv, timeout, "%s-%dhosts" % (load, k))
        after = self.snapshot(self.sock)
        res = parse(out)
        res.update(load=load, hosts=k, rc=rc, wall=wall,
                   client_cpu_pct=100.0 * ccpu / wall if wall else None)
        if res.get("complete") is None:
            raise ClusterError("%s with %d host(s) gave no result (exit %s):"
                               "\n%s" % (load, k, rc, out[-2000:]))
        done = res["complete"]
        res["counted"] = [a[0] - b[0] for a, b in
                          zip(after["metrics"], before["metrics"])]
        res["counted_ok"] = [a[1] - b[1] for a, b in
                             zip(after["metrics"], before["metrics"])]
        res["sessions"] = [a - b for a, b in
                           zip(after["sessions"], before["sessions"])]
        res["hd_us"] = ((after["hd_cpu"] - before["hd_cpu"]) * 1e6 / done
                        if done else None)
        res["lb_us"] = ((after["lb_cpu"] - before["lb_cpu"]) * 1e6 / done
                        if done else None)
        res["client_us"] = ccpu * 1e6 / done if done else None
        return res

    def ab(self, k, url):
        a = self.args
        argv = [self.tools["ab"], "-r", "-n", str(a.requests), "-c",
                str(a.concurrency), "-l", "-s", "10", url]
        return self.measure(k, "ab", argv, 120, parse_ab)

    def sustained(self, k, url):
        a = self.args
        if self.tools.get("wrk") and a.loadgen != "h2load":
            argv = [self.tools["wrk"], "-t1", "-c", str(a.connections), "-d",
                    "%ds" % a.duration, "--timeout", "5s", "--latency", url]
            parse = parse_wrk
        else:
            argv = [self.tools["h2load"], "--h1", "-t1", "-c",
                    str(a.connections), "-D", str(a.duration), url]
            parse = parse_h2load
        return self.measure(k, "keepalive", argv, a.duration + 60, parse)

    def run_count(self, k):
        log("%d host(s): starting HAProxy" % k)
        self.lb, self.sock, checks = self.start_haproxy(k)
        try:
            url = "http://%s:%d/" % (self.topo.addr, FRONTEND + k)
            # One request per host (round-robin): each must greet the
            # client, named in the PROXY v2 header.
            want = (bench.GREETING % self.topo.client.addr).encode()
            for r in self.topo.client.http_get_all(self.topo.addr,
                                                   FRONTEND + k, count=k):
                if r.status != 200 or r.body != want:
                    raise ClusterError("through HAProxy the client got %r, "
                                       "not its greeting" % r)
            log("%d host(s): ab -r -n%d -c%d -l %s" % (
                k, self.args.requests, self.args.concurrency, url))
            ab = self.ab(k, url)
            log("%d host(s): %s, %d connections, %d s" % (
                k, "wrk" if self.tools.get("wrk") and
                self.args.loadgen != "h2load" else "h2load",
                self.args.connections, self.args.duration))
            ka = self.sustained(k, url)
        finally:
            with open(os.path.join(self.raw, "haproxy-%dhosts.log" % k),
                      "w") as f:
                f.write(self.lb.log())
            self.lb.stop()
        self.summary.append({"hosts": k, "url": url, "checks": checks,
                             "ab": ab, "keepalive": ka})

    # report -------------------------------------------------------------
    def print_count(self, s):
        k, ab, ka = s["hosts"], s["ab"], s["keepalive"]
        self.emit("")
        self.emit("== %d host%s: ab -r -n%d -c%d -l %s (from %s, %s)" % (
            k, "s" if k > 1 else "", self.args.requests,
            self.args.concurrency, s["url"], self.topo.client.name,
            self.topo.client.addr))
        self.emit("health checks (GET /healthz on :%d): %s" % (
            STATUS, ", ".join("%s %s" % (h.role, s["checks"]["s%d" % (i + 1)])
                              for i, h in enumerate(self.topo.hosts[:k]))))
        self.emit("Complete requests:      %d" % ab["complete"])
        self.emit("Failed requests:        %d" % ab["failed"])
        self.emit("   (%s)" % ab["failed_detail"])
        if ab["non2xx"]:
            self.emit("Non-2xx responses:      %d" % ab["non2xx"])
        self.emit("Requests per second:    %.2f [#/sec] (mean)" % ab["rps"])
        self.emit("Time per request:       %.3f [ms] (mean)" % ab["tpr"])
        self.emit("Time per request:       %.3f [ms] (mean, across all "
                  "concurrent requests)" % ab["tpr_all"])
        self.emit("")
        self.emit("sustained keep-alive load (%s, %d connections, %d s): "
                  "%s requests, %.1f req/s, %s failed (%s), latency p50 %s "
                  "ms, p99 %s ms" % (
                      ka["tool"], self.args.connections, self.args.duration,
                      ka["complete"], ka["rps"] or 0, ka["failed"],
                      ka["failed_detail"], bench.fmt(ka["p50_ms"], 2),
                      bench.fmt(ka["p99_ms"], 2)))
        self.emit("")
        self.emit("each host's share (hellod_http_requests_total after - "
                  "before, from its /metrics; HAProxy sessions from its "
                  "stats):")
        body = []
        for i, h in enumerate(self.topo.hosts):
            in_lb = i < k
            row = [h.role, h.addr, "yes" if in_lb else "no"]
            for res in (ab, ka):
                total = sum(res["counted"])
                row += [res["counted"][i],
                        "%.1f%%" % (100.0 * res["counted"][i] / total)
                        if total else "-",
                        res["sessions"][i] if in_lb else "-"]
            body.append(row)
        body.append(["all", "", "", sum(ab["counted"]), "", sum(
            ab["sessions"]), sum(ka["counted"]), "", sum(ka["sessions"])])
        self.emit(bench.table(
            ["host", "address", "in HAProxy", "ab requests", "share",
             "ab sessions", "keep-alive requests", "share",
             "keep-alive sessions"], body))
        self.emit("sessions: connections HAProxy opened to the host; in mode "
                  "tcp it balances connections, and all the requests of a "
                  "keep-alive connection go to one host (ab and wrk may "
                  "open a few connections they send nothing on)")
        self.emit("counted by the hosts: %d for ab's %d complete; %d 200s "
                  "for %s's %d complete (responses in flight when it "
                  "stopped are counted by hellod, not by %s)" % (
                      sum(ab["counted"]), ab["complete"],
                      sum(ka["counted_ok"]), ka["tool"], ka["complete"],
                      ka["tool"]))
        for res in (ab, ka):
            for i, h in enumerate(self.topo.hosts):
                self.rows.append({
                    "hosts": k, "load": res["load"], "tool": res["tool"],
                    "host": h.role, "in_haproxy": int(i < k),
                    "requests": res["counted"][i],
                    "sessions": res["sessions"][i] if i < k else 0,
                    "complete": res["complete"], "failed": res["failed"],
                    "rps": bench.fmt(res["rps"], 1),
                    "tpr_ms": bench.fmt(res.get("tpr"), 3),
                    "tpr_all_ms": bench.fmt(res.get("tpr_all"), 3),
                    "p50_ms": bench.fmt(res.get("p50_ms"), 2),
                    "p99_ms": bench.fmt(res.get("p99_ms"), 2),
                    "hellod_cpu_us_per_req": bench.fmt(res["hd_us"], 1),
                    "haproxy_cpu_us_per_req": bench.fmt(res["lb_us"], 1),
                    "client_cpu_us_per_req": bench.fmt(res["client_us"], 1)})

    def print_summary(self):
        self.emit("")
        self.emit("== by host count (the article's fields for ab -r -n%d "
                  "-c%d -l; then the keep-alive load)"
                  % (self.args.requests, self.args.concurrency))
        body = [[name, "article", "%.1f" % rps, failed,
                 "%.3f" % (150 * 1000.0 / rps), "%.3f" % (1000.0 / rps),
                 "-", "-", "-", "-", "-", "-", "one server, no balancer"]
                for name, rps, failed in ARTICLE]
        for s in self.summary:
            ab, ka = s["ab"], s["keepalive"]
            body.append([
                "%d host%s" % (s["hosts"], "s" if s["hosts"] > 1 else ""),
                "measured", "%.1f" % ab["rps"], fail_text(ab),
                "%.3f" % ab["tpr"], "%.3f" % ab["tpr_all"],
                "%.1f" % (ka["rps"] or 0), fail_text(ka),
                bench.fmt(ka["p99_ms"], 2),
                bench.fmt(ka["hd_us"], 1), bench.fmt(ka["lb_us"], 1),
                bench.fmt(ka["client_us"], 1),
                "shares %s" % "/".join(
                    "%.0f" % (100.0 * c / sum(ka["counted"]))
                    for c in ka["counted"][:s["hosts"]])
                if sum(ka["counted"]) else ""])
        self.emit(bench.table(
            ["hosts", "source", "ab req/s", "failed", "time/req ms",
             "across all ms", "keep-alive req/s", "failed", "p99 ms",
             "hellod CPU us/req", "HAProxy CPU us/req", "client CPU us/req",
             "note"], body))
        self.emit("CPU per request: during the keep-alive load, all hellod "
                  "hosts together, HAProxy, the load generator (run time "
                  "of their threads from /proc)")

    def honest_paragraph(self):
        ncpu = bench.NCPU
        ab_rps = ", ".join("%.0f" % s["ab"]["rps"] for s in self.summary)
        ka_rps = ", ".join("%.0f" % (s["keepalive"]["rps"] or 0)
                           for s in self.summary)
        counts = ", ".join(str(s["hosts"]) for s in self.summary)
        failed = sum(s["ab"]["failed"] + s["ab"]["non2xx"] +
                     s["keepalive"]["failed"] for s in self.summary)
        ka = [s["keepalive"] for s in self.summary]
        costs = [r["hd_us"] + r["lb_us"] + r["client_us"] for r in ka
                 if None not in (r["hd_us"], r["lb_us"], r["client_us"])]
        ka_all = [s["keepalive"]["rps"] or 0 for s in self.summary]
        falling = len(ka_all) > 1 and all(a >= b for a, b in
                                          zip(ka_all, ka_all[1:]))
        ab_secs = [s["ab"]["seconds"] for s in self.summary
                   if s["ab"]["seconds"] is not None]
        if ka_all[0] and max(ka_all) > 1.05 * ka_all[0]:
            trend = (
                "grew with them (%s req/s for %s host(s)), but not by new "
                "capacity: with %s worker(s) per host, more hosts let hellod "
                "use more of the same cores" % (ka_rps, counts,
                                                self.args.workers))
        else:
            trend = ("does not grow with them: %s req/s for %s host(s)%s" % (
                ka_rps, counts, ", a little less with each host added, as "
                "more processes take turns on the same cores" if falling
                else ""))
        text = (
            "What this machine can and cannot show.  The %d hosts are "
            "network namespaces of one kernel on %d CPU%s: every hellod, "
            "HAProxy and the load generator run on the same cores, and a "
            "namespace brings no CPU of its own, only its own addresses and "
            "sockets.  More hosts therefore add no capacity, and the "
            "sustained keep-alive load, which keeps the CPUs busy, %s.  The "
            "article's ab runs (%s req/s) last %s each, too short to rank "
            "host counts." % (
                max(self.args.hosts), ncpu, "s" if ncpu > 1 else "", trend,
                ab_rps, "%.2f-%.2f s" % (min(ab_secs), max(ab_secs))
                if ab_secs else "a moment"))
        if costs:
            cost = sum(costs) / len(costs)
            text += (
                "  Each keep-alive request cost about %.0f us of CPU in all "
                "(hellod, HAProxy and the load generator together; most "
                "of the kernel's work is charged to them), and %d CPU%s give "
                "%d,000,000 us per second: about %s requests per second "
                "at most, whatever the number of hosts" % (
                    cost, ncpu, "s" if ncpu > 1 else "", ncpu,
                    "{:,}".format(int(float("%.2g" % (ncpu * 1e6 / cost))))))
            best = max(self.summary, key=lambda s: s["keepalive"]["rps"] or 0)
            text += (" (the %d-host run reached %.0f%% of it)." % (
                best["hosts"], 100.0 * (best["keepalive"]["rps"] or 0)
                * cost / (ncpu * 1e6)))
        text += (
            "  Scaling out shows only when each host has cores of its own: "
            "hosts on separate machines (or virtual machines with dedicated "
            "CPUs) and the load generator on another.  What this run does "
            "show is the distribution: HAProxy's health checks pass on "
            "every host's /healthz, round-robin hands each host its share "
            "of the connections (per-host /metrics above), every host greets "
            "the client by the address in the PROXY v2 header, and ")
        text += ("no request failed at any host count." if not failed else
                 "%d request(s) failed: see the tables above." % failed)
        self.emit("")
        self.emit(textwrap.fill(text, 76))

    def write_csv(self):
        cols = ["hosts", "load", "tool", "host", "in_haproxy", "requests",
                "sessions", "complete", "failed", "rps", "tpr_ms",
                "tpr_all_ms", "p50_ms", "p99_ms", "hellod_cpu_us_per_req",
                "haproxy_cpu_us_per_req", "client_cpu_us_per_req"]
        with open(os.path.join(self.args.out, "results.csv"), "w",
                  newline="") as f:
            w = csv.DictWriter(f, cols)
            w.writeheader()
            w.writerows(self.rows)

    def close(self):
        for p, h in zip(self.hellods, self.topo.hosts if self.topo else []):
            try:
                rc = p.stop(timeout=10.0)
            except Exception as e:      # keep tearing down
                log("stopping hellod on %s: %r" % (h.role, e))
                continue
            with open(os.path.join(self.raw, "hellod-%s.log" % h.role),
                      "w") as f:
                f.write(p.log())
            if rc != 0:
                log("warning: hellod on %s exited with status %s"
                    % (h.role, rc))
        if self.topo is not None:
            self.topo.close()
            left = netns.leftovers(PREFIX)
            if any(left.values()):
                log("warning: left after cleanup: %r" % left)
        self.tmp.cleanup()


def fail_text(res):
    s = str(res["failed"])
    if res.get("non2xx"):
        s += "+%d non-2xx" % res["non2xx"]
    return s


def parse_ab(out):
    d = netns.parse_ab(out)
    m = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), "
                  r"Exceptions: (\d+)\)", out)
    return {
        "tool": "ab", "complete": d["complete"], "failed": d["failed"],
        "non2xx": d["non_2xx"], "rps": d["rps"], "seconds": d["seconds"],
        "failed_detail": "Connect: %s, Receive: %s, Length: %s, "
                         "Exceptions: %s" % (m.groups() if m else
                                             (0, 0, 0, 0)),
        "tpr": num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean\)$", out),
        "tpr_all": num(r"^Time per request:\s+([\d.]+) \[ms\] \(mean, "
                       r"across", out),
        "p50_ms": num(r"^\s+50%\s+(\d+)", out),
        "p99_ms": num(r"^\s+99%\s+(\d+)", out)}


def parse_wrk(out):
    d = netns.parse_wrk(out)
    errors = d["connect"] + d["read"] + d["write"] + d["timeout"]
    res = {"tool": "wrk", "complete": d["requests"], "rps": d["rps"],
           "failed": errors + d["non_2xx_3xx"], "non2xx": 0,
           "failed_detail": "socket errors connect %d, read %d, write %d, "
                            "timeout %d; non-2xx/3xx %d" % (
                                d["connect"], d["read"], d["write"],
                                d["timeout"], d["non_2xx_3xx"]),
           "p50_ms": None, "p99_ms": None}
    for p, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(r"^\s+%s(?:\.0+)?%%\s+([\d.]+)(us|ms|s|m)\s*$" % p,
                      out, re.M)
        if m:
            res[key] = ms(m.group(1), m.group(2))
    return res


def parse_h2load(out):
    res = {"tool": "h2load", "complete": None, "rps": None, "failed": 0,
           "non2xx": 0, "failed_detail": "", "p50_ms": None, "p99_ms": None}
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, "
                  r"(\d+) succeeded, (\d+) failed, (\d+) errored, "
                  r"(\d+) timeout", out)
    if m:
        total, started, done, ok, failed, errored, tmo = map(int, m.groups())
        res["complete"] = done
        res["failed"] = done - ok
        res["failed_detail"] = ("failed %d, errored %d, timeout %d"
                                % (failed, errored, tmo))
    res["rps"] = num(r"finished in [\d.]+m?s, ([\d.]+) req/s", out)
    return res


# ------------------------------------------------------------------ main

def parse_args(argv):
    p = argparse.ArgumentParser(
        description="hellod behind HAProxy on 1, 2 and 3 hosts in network "
        "namespaces (see the module docstring).")
    p.add_argument("--hellod", default=os.environ.get("HELLOD"),
                   help="path of the built hellod (default: $HELLOD)")
    p.add_argument("--out", default="bench-results/cluster",
                   help="output directory (default: bench-results/cluster)")
    p.add_argument("--hosts", default="1,2,3",
                   help="host counts, comma separated, each 1-%d (1,2,3)"
                   % netns.MAX_HOSTS)
    p.add_argument("--workers", default="1",
                   help="workers per hellod host (1)")
    p.add_argument("--requests", type=int, default=1000,
                   help="ab -n (1000, the article's)")
    p.add_argument("--concurrency", type=int, default=150,
                   help="ab -c (150, the article's)")
    p.add_argument("--duration", type=int, default=5,
                   help="seconds of the keep-alive load (5)")
    p.add_argument("--connections", type=int, default=100,
                   help="connections of the keep-alive load (100)")
    p.add_argument("--loadgen", choices=("wrk", "h2load"),
                   help="keep-alive load generator (default: wrk if "
                   "installed, else h2load)")
    p.add_argument("--net", type=int, default=NET,
                   help="use 198.18.NET.0/24 (default %d)" % NET)
    args = p.parse_args(argv)
    try:
        args.hosts = sorted({int(x) for x in args.hosts.split(",")
                             if x.strip()})
    except ValueError:
        p.error("--hosts: numbers, e.g. 1,2,3")
    if not args.hosts or not all(1 <= k <= netns.MAX_HOSTS
                                 for k in args.hosts):
        p.error("--hosts: each between 1 and %d" % netns.MAX_HOSTS)
    if not (1 <= args.requests <= 1000000 and 1 <= args.concurrency <= 20000
            and 1 <= args.duration <= 600 and 1 <= args.connections <= 20000
            and 0 <= args.net <= 255):
        p.error("--requests 1-1000000, --concurrency 1-20000, --duration "
                "1-600, --connections 1-20000, --net 0-255")
    if not re.fullmatch(r"[1-9][0-9]{0,2}|auto", args.workers):
        p.error("--workers: a number or auto")
    if not args.hellod:
        p.error("--hellod PATH (or $HELLOD) is required")
    args.hellod = os.path.abspath(args.hellod)
    if not os.access(args.hellod, os.X_OK):
        p.error("%s is not an executable" % args.hellod)
    args.out = os.path.abspath(args.out)
    return args


def find_tools(args):
    """The tools, or exit 77 naming what is missing."""
    why = netns.why_impossible()
    if why:
        skip(why)
    tools = {}
    try:
        tools["haproxy"] = netns.need("haproxy", "haproxy")
        tools["ab"] = netns.need("ab", "apache2-utils")
    except netns.Skip as e:
        skip(str(e))
    tools["wrk"] = shutil.which("wrk")
    tools["h2load"] = shutil.which("h2load")
    if args.loadgen and not tools[args.loadgen]:
        skip("%s is not installed (Debian package %s)" % (
            args.loadgen, {"wrk": "wrk", "h2load": "nghttp2-client"}[
                args.loadgen]))
    if not (tools["wrk"] or tools["h2load"]):
        skip("neither wrk nor h2load is installed (Debian package wrk or "
             "nghttp2-client)")
    return tools


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    tools = find_tools(args)
    # SIGTERM (e.g. make killed) must still tear the namespaces down.
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
    started = time.monotonic()
    c = Cluster(args, tools)
    c.emit("hellod behind HAProxy on %s host(s), %s" % (
        ",".join(map(str, args.hosts)), time.strftime("%Y-%m-%d %H:%M:%S")))
    c.emit("hellod: %s, %s worker(s) per host; %s; %d CPUs online, nothing "
           "pinned; load average %.2f" % (
               args.hellod, args.workers,
               bench.haproxy_version(tools["haproxy"]), bench.NCPU,
               os.getloadavg()[0]))
    try:
        c.build()
        c.emit("hosts: %s; HAProxy and the client on the bridge %s, the "
               "client namespace %s" % (
                   ", ".join("%s %s" % (h.role, h.addr)
                             for h in c.topo.hosts), c.topo.addr,
                   c.topo.client.addr))
        for k in args.hosts:
            c.run_count(k)
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except ClusterError as e:
        log("bench_cluster.py: %s" % e)
        return 1
    finally:
        c.close()
    for s in c.summary:
        c.print_count(s)
    c.print_summary()
    c.honest_paragraph()
    c.emit("")
    c.emit("total time %.0fs; load average %.2f; output in %s (results.txt, "
           "results.csv, raw/)" % (time.monotonic() - started,
                                  os.getloadavg()[0], args.out))
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write("\n".join(c.report) + "\n")
    c.write_csv()
    bad = sum(s["ab"]["failed"] + s["ab"]["non2xx"] + s["keepalive"]["failed"]
              for s in c.summary)
    if bad:
        log("bench_cluster.py: %d failed request(s)" % bad)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
