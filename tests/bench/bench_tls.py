#!/usr/bin/env python3
"""TLS benchmark: hellod against nginx and h2o with the same certificate.

Servers, each on a free 127.0.0.1 port, configured in a temporary
directory with one ECDSA P-256 certificate made here with the openssl
command:

  hellod-async  hellod, mode = async, workers = 1
  hellod-sync   hellod, mode = sync (one blocking worker)
  nginx         nginx, worker_processes 1, the same TLS 1.2 ciphers as
                hellod's defaults, ssl_session_tickets on (package
                nginx-light)
  h2o           h2o, num-threads: 1, tickets on (its default), a static
                file holding the greeting (package h2o)

Scenarios
  full       a full TLS 1.3 handshake per request:
             ab -t T -n N -c 50 https://... (ab makes one connection per
             request without -k and never resumes)
  resumed    a resumed TLS 1.3 handshake (a session ticket) per request:
             openssl s_time -reuse -time T -www PATH, one client, every
             connection but the first resumes ("r" in its output)
  plain      the full scenario's load over plain HTTP (hellod and nginx):
             ab -t T -n N -c 50 http://..., what a connection costs
             without TLS; full minus plain is the handshake's share
  keepalive  requests over kept-alive TLS connections:
             h2load --h1 -c 100 -t 1 -n N https://...  (not hellod-sync:
             one blocking worker serves one connection at a time)

The scenarios run in R interleaved rounds (--rounds, default 5: round 1
runs every scenario on every server, then round 2, ..., the servers' order
rotating from round to round); each run records requests/s, failed
requests and the server's CPU time per request (the run time of its
threads, /proc/PID/task/TID/schedstat, before and after the run).  The
report gives the medians and each server's CPU per request as a ratio to
nginx's.  Servers run on the first CPU and the clients on the others
(taskset) when there are two or more.  Measures; asserts nothing about
speed.  Exit 1 when a run had failed requests.

    python3 tests/bench/bench_tls.py --hellod BUILD/src/hellod [--quick]
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import free_port, tree_cpu_time, wait_for  # noqa: E402

GREETING = "<html><body><h1>Hello %s</h1></body></html>"
CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
           "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


class Server:
    def __init__(self, name, cmd, port, path, d, plain_port=None):
        self.name, self.cmd, self.port, self.path, self.dir = \
            name, cmd, port, path, d
        self.plain_port = plain_port  # the same greeting over plain HTTP
        self.proc = None

    def start(self, pin):
        self.proc = subprocess.Popen(pin + self.cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(
                                         self.dir, "stderr"), "wb"))

        def up():
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited %s" % (self.name,
                                                     self.proc.returncode))
            p = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w",
                                "%{http_code}", "https://127.0.0.1:%d%s"
                                % (self.port, self.path)],
                               stdout=subprocess.PIPE, timeout=10)
            return p.stdout == b"200"
        wait_for(up, 15, "%s to answer over TLS" % self.name)

    def cpu_time(self):
        return tree_cpu_time(self.proc.pid)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def make_cert(d):
    key, crt = os.path.join(d, "ec.key"), os.path.join(d, "ec.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key,
                    "-out", crt, "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return crt, key


def hellod_server(name, exe, mode, crt, key, top):
    d = os.path.join(top, name)
    os.mkdir(d)
    plain, port = free_port(), free_port()
    conf = os.path.join(d, "hellod.conf")
    with open(conf, "w") as f:
        f.write("[server]\nlisten = 127.0.0.1:%d\ntls_listen = 127.0.0.1:%d\n"
                "mode = %s\nworkers = 1\n%s[http]\nheader_timeout = 5s\n"
                "keepalive_timeout = 10s\n[tls]\ncertificate = %s\n"
                "certificate_key = %s\n"
                % (plain, port, mode,
                   "user = root\n" if os.geteuid() == 0 else "", crt, key))
    return Server(name, [exe, "--foreground", "-c", conf], port, "/", d,
                  plain)


def nginx_server(exe, crt, key, top):
    d = os.path.join(top, "nginx")
    os.mkdir(d)
    port, plain = free_port(), free_port()
    temp = "".join("  %s_temp_path %s;\n" % (k, os.path.join(d, k))
                   for k in ("client_body", "proxy", "fastcgi", "uwsgi",
                             "scgi"))
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write("daemon off;\nmaster_process on;\nworker_processes 1;\n"
                "pid %s;\nerror_log %s;\n"
                "events { worker_connections 10240; }\n"
                "http {\n  access_log off;\n%s"
                "  server { listen 127.0.0.1:%d ssl reuseport;\n"
                "    listen 127.0.0.1:%d reuseport;\n"
                "    ssl_certificate %s;\n    ssl_certificate_key %s;\n"
                "    ssl_protocols TLSv1.2 TLSv1.3;\n"
                "    ssl_ciphers %s;\n    ssl_prefer_server_ciphers on;\n"
                "    ssl_session_tickets on;\n"
                "    ssl_session_timeout 1h;\n"
                "    keepalive_requests 1000000;\n"
                "    location / { default_type text/html;"
                " return 200 \"%s\"; } }\n}\n"
                % (os.path.join(d, "nginx.pid"), os.path.join(d, "error.log"),
                   temp, port, plain, crt, key, CIPHERS,
                   GREETING % "$remote_addr"))
    return Server("nginx", [exe, "-c", conf, "-p", d + "/", "-e",
                            os.path.join(d, "error.log")], port, "/", d,
                  plain)


def h2o_server(exe, crt, key, top):
    d = os.path.join(top, "h2o")
    os.mkdir(d)
    root = os.path.join(d, "htdocs")
    os.mkdir(root)
    with open(os.path.join(root, "index.html"), "w") as f:
        f.write(GREETING % "127.0.0.1")
    port = free_port()
    lines = (["user: root"] if os.geteuid() == 0 else []) + [
        "num-threads: 1", "max-connections: 10240",
        "pid-file: %s" % os.path.join(d, "h2o.pid"),
        "error-log: %s" % os.path.join(d, "error.log"),
        "listen:", "  host: 127.0.0.1", "  port: %d" % port, "  ssl:",
        "    certificate-file: %s" % crt, "    key-file: %s" % key,
        "    minimum-version: TLSv1.2",
        "hosts:", "  default:", "    paths:", "      /:",
        "        file.dir: %s" % root]
    conf = os.path.join(d, "h2o.conf")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")
    return Server("h2o", [exe, "-c", conf], port, "/index.html", d)


def run_load(srv, scenario, args, pin, raw):
    url = "https://127.0.0.1:%d%s" % (srv.port, srv.path)
    if scenario in ("full", "plain"):
        if scenario == "plain":
            url = "http://127.0.0.1:%d%s" % (srv.plain_port, srv.path)
        cmd = ["ab", "-t", "60", "-n", str(args.full), "-c", "50", "-s",
               "10", "-l", url]
    elif scenario == "resumed":
        cmd = ["openssl", "s_time", "-connect", "127.0.0.1:%d" % srv.port,
               "-reuse", "-time", str(args.resumed_time), "-www", srv.path]
    else:
        cmd = ["h2load", "--h1", "-c", "100", "-t", "1", "-n",
               str(args.keepalive), url]
    t0, c0 = time.monotonic(), srv.cpu_time()
    p = subprocess.run(pin + cmd, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=180)
    took, cpu = time.monotonic() - t0, srv.cpu_time() - c0
    out = p.stdout.decode("utf-8", "replace")
    with open(raw, "w") as f:
        f.write(" ".join(cmd) + "\n" + out)
    if scenario in ("full", "plain"):
        done = int(re.search(r"Complete requests:\s+(\d+)", out).group(1))
        failed = int(re.search(r"Failed requests:\s+(\d+)", out).group(1))
        rps = float(re.search(r"Requests per second:\s+([\d.]+)",
                              out).group(1))
    elif scenario == "resumed":
        m = re.findall(r"(\d+) connections in ([\d.]+) real seconds", out)
        done = int(m[-1][0])
        rps = done / float(m[-1][1])
        # One "r" per resumed connection, "*" per full handshake.
        failed = "".join(re.findall(r"^[r*]+$", out, re.M)).count("*")
    else:
        m = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) "
                      r"succeeded, (\d+) failed, (\d+) errored", out)
        done, failed = int(m.group(1)), int(m.group(2)) + int(m.group(3))
        rps = float(re.search(r"finished in [^,]+, ([\d.]+) req/s",
                              out).group(1))
    cpu_us = cpu / max(done, 1) * 1e6
    return {"server": srv.name, "scenario": scenario, "requests": done,
            "failed": failed, "rps": rps, "cpu_us": cpu_us, "took": took,
            "cmd": " ".join(cmd)}


def share_rows(med, servers):
    """(server, scenario, CPU us/req, plain us/req) for every server with
    a plain run, from the medians."""
    rows = []
    for s in servers:
        plain = med.get(("plain", s.name))
        if not plain:
            continue
        base = statistics.median(x["cpu_us"] for x in plain)
        for scenario in ("full", "resumed"):
            rs = med.get((scenario, s.name))
            if rs:
                rows.append((s.name, scenario, statistics.median(
                    x["cpu_us"] for x in rs), base))
    return rows


def handshake_share(med, servers):
    rows = share_rows(med, servers)
    if not rows:
        return []
    out = ["", "the handshake's share: CPU per request over TLS = a plain "
           "HTTP connection (the plain scenario) + the TLS work",
           "%-13s %-8s %10s %10s %10s %6s" % ("server", "TLS", "us/req",
                                               "plain", "TLS work",
                                               "share")]
    for name, scenario, cpu, base in rows:
        out.append("%-13s %-8s %10.1f %10.1f %10.1f %5.0f%%" % (
            name, scenario, cpu, base, cpu - base,
            100.0 * (cpu - base) / cpu if cpu else 0))
    return out


def plot_share(med, servers, out):
    """tls_sync_async.png: CPU per request of each server with a plain
    run, a bar per handshake kind, split into the plain connection's cost
    and the TLS work on top of it."""
    rows = share_rows(med, servers)
    if not rows or shutil.which("gnuplot") is None:
        return
    data = os.path.join(out, "raw", "tls_share.dat")
    with open(data, "w") as f:
        for name, scenario, cpu, base in rows:
            f.write('"%s\\n%s" %.2f %.2f\n' % (name, scenario, base,
                                                max(cpu - base, 0.0)))
    png = os.path.join(out, "tls_sync_async.png")
    gp = os.path.join(out, "raw", "tls_share.gp")
    with open(gp, "w") as f:
        f.write("set terminal pngcairo size 900,600 noenhanced font "
                "'DejaVu Sans,11'\nset output '%s'\n"
                "set title 'Server CPU per request over TLS: full and "
                "resumed TLS 1.3 handshakes (ECDSA P-256)'\n"
                "set ylabel 'us of server CPU per request'\n"
                "set style data histograms\n"
                "set style histogram rowstacked\n"
                "set style fill solid 0.8 border -1\nset boxwidth 0.6\n"
                "set key below\nset grid ytics\nset yrange [0:*]\n"
                "set bmargin 7\n"
                "plot '%s' using 2:xtic(1) title 'the connection over plain "
                "HTTP (accept, request, answer, close)', "
                "'' using 3 title 'the TLS work (handshake, records, "
                "close_notify)'\n" % (png, data))
    p = subprocess.run(["gnuplot", gp], stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=60)
    if p.returncode != 0:
        log("gnuplot failed: %s" % p.stdout.decode("utf-8", "replace"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--hellod", default=os.environ.get("HELLOD"),
                   required=os.environ.get("HELLOD") is None)
    p.add_argument("--out", default="bench-results/tls")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--full", type=int, default=3000,
                   help="ab requests per full-handshake run")
    p.add_argument("--resumed-time", type=int, default=5,
                   help="seconds of each s_time -reuse run")
    p.add_argument("--keepalive", type=int, default=100000,
                   help="h2load requests per keep-alive run")
    p.add_argument("--servers", default="hellod-async,hellod-sync,nginx,h2o")
    p.add_argument("--scenarios", default="full,resumed,keepalive,plain")
    p.add_argument("--quick", action="store_true",
                   help="one round, small counts")
    args = p.parse_args(argv)
    if args.quick:
        args.rounds, args.full, args.resumed_time, args.keepalive = \
            1, 300, 1, 5000
    for tool in ("ab", "h2load", "openssl", "curl"):
        if shutil.which(tool) is None:
            log("bench_tls: %s is missing" % tool)
            return 2
    ncpu = os.cpu_count() or 1
    spin = ["taskset", "-c", "0"] if ncpu >= 2 and shutil.which("taskset") \
        else []
    cpin = ["taskset", "-c", "1-%d" % (ncpu - 1)] if spin else []
    os.makedirs(os.path.join(args.out, "raw"), exist_ok=True)
    top = tempfile.mkdtemp(prefix="hellod-bench-tls-")
    crt, key = make_cert(top)
    servers = []
    for name in args.servers.split(","):
        if name == "hellod-async":
            servers.append(hellod_server(name, args.hellod, "async", crt,
                                         key, top))
        elif name == "hellod-sync":
            servers.append(hellod_server(name, args.hellod, "sync", crt,
                                         key, top))
        elif name == "nginx" and shutil.which("nginx"):
            servers.append(nginx_server(shutil.which("nginx"), crt, key, top))
        elif name == "h2o" and shutil.which("h2o"):
            servers.append(h2o_server(shutil.which("h2o"), crt, key, top))
        else:
            log("bench_tls: %s skipped (not installed or unknown)" % name)
    results = []
    try:
        for s in servers:
            s.start(spin)
        for rnd in range(args.rounds):
            # The order rotates: a drift of the machine weighs on all.
            order = servers[rnd % len(servers):] + servers[:rnd %
                                                           len(servers)]
            for scenario in args.scenarios.split(","):
                for s in order:
                    if (scenario == "keepalive" and s.name == "hellod-sync"
                            or scenario == "plain" and s.plain_port is None):
                        continue
                    raw = os.path.join(args.out, "raw", "%s-%s-%d.txt"
                                       % (scenario, s.name, rnd))
                    r = run_load(s, scenario, args, cpin, raw)
                    r["round"] = rnd
                    results.append(r)
                    log("round %d %-9s %-12s %8.0f req/s %7.1f us/req "
                        "failed %d" % (rnd + 1, scenario, s.name, r["rps"],
                                       r["cpu_us"], r["failed"]))
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(top, ignore_errors=True)
    lines = ["TLS: medians of %d interleaved rounds (server CPU per request "
             "and its ratio to nginx)" % args.rounds,
             "(x nginx: the ratio of the medians; per round: the median "
             "of the ratios within each round, where the machine's drift "
             "cancels out)",
             "%-10s %-13s %10s %10s %8s %9s %7s" % ("scenario", "server",
                                                    "req/s", "CPU us/req",
                                                    "x nginx", "per round",
                                                    "failed")]
    med = {}
    for r in results:
        med.setdefault((r["scenario"], r["server"]), []).append(r)
    for scenario in args.scenarios.split(","):
        base = med.get((scenario, "nginx"))
        base_cpu = statistics.median(x["cpu_us"] for x in base) \
            if base else None
        for s in servers:
            rs = med.get((scenario, s.name))
            if not rs:
                continue
            cpu = statistics.median(x["cpu_us"] for x in rs)
            nginx_in = {x["round"]: x["cpu_us"] for x in base or ()}
            per_round = [x["cpu_us"] / nginx_in[x["round"]] for x in rs
                         if nginx_in.get(x["round"])]
            lines.append("%-10s %-13s %10.0f %10.1f %8s %9s %7d" % (
                scenario, s.name, statistics.median(x["rps"] for x in rs),
                cpu, "%.2f" % (cpu / base_cpu) if base_cpu else "-",
                "%.2f" % statistics.median(per_round) if per_round else "-",
                sum(x["failed"] for x in rs)))
    lines.extend(handshake_share(med, servers))
    lines.append("")
    lines.append("commands (URL and port vary):")
    for c in sorted({(r["scenario"], re.sub(r":\d+", ":PORT", r["cmd"]))
                     for r in results}):
        lines.append("  %s: %s" % c)
    text = "\n".join(lines) + "\n"
    with open(os.path.join(args.out, "results.txt"), "w") as f:
        f.write(text)
    plot_share(med, servers, args.out)
    print(text)
    return 1 if any(r["failed"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
