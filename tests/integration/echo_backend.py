#!/usr/bin/env python3
"""A stand-in backend for the network namespace harness (netns.py), run
inside a namespace by Namespace.echo_server():

    echo_backend.py ADDR NAME PORT:MODE [PORT:MODE ...]

MODE is plain, or proxy: a PROXY protocol v1 or v2 header must come first
on the connection, as on hellod's proxy_listen addresses (a connection
without one is closed).  Every GET is answered 200:

    /healthz   "ok"
    /_seen     {"requests": {"PORT PATH": count}, "proxy": {"PORT PATH":
               the PROXY header of the last such request}}
    anything   JSON: server (NAME), port, peer, peer_port, proxy (the
               header as a dict, or null), path, headers (names in lower
               case)

Bodies differ in length from one request to the next (ab needs -l).
Standard library only."""

import json
import socket
import struct
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_MAX = 107                    # the longest v1 line, CRLF included

lock = threading.Lock()
seen = {}                       # "PORT PATH" -> requests
last_proxy = {}                 # "PORT PATH" -> PROXY header of the last one


def read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise ValueError("short PROXY header %r" % data)
    return data


def v2_addresses(fam, body):
    if fam == 0x11 and len(body) >= 12:
        family, size, name = socket.AF_INET, 4, "TCP4"
    elif fam == 0x21 and len(body) >= 36:
        family, size, name = socket.AF_INET6, 16, "TCP6"
    else:
        return {}
    sport, dport = struct.unpack_from("!HH", body, 2 * size)
    return {"family": name,
            "src": socket.inet_ntop(family, body[:size]),
            "dst": socket.inet_ntop(family, body[size:2 * size]),
            "sport": sport, "dport": dport}


def read_proxy(f):
    """The PROXY header at the start of f as a dict; ValueError when there
    is none or it is malformed."""
    head = read_exact(f, 12)    # shorter than any v1 line, the v2 signature
    if head == V2_SIGNATURE:
        ver_cmd, fam, length = struct.unpack("!BBH", read_exact(f, 4))
        body = read_exact(f, length)
        if ver_cmd >> 4 != 2 or ver_cmd & 15 > 1:
            raise ValueError("bad PROXY v2 version/command %#x" % ver_cmd)
        info = {"version": 2, "command": ["local", "proxy"][ver_cmd & 15]}
        if ver_cmd & 15 == 1:
            info.update(v2_addresses(fam, body))
        return info
    if not head.startswith(b"PROXY "):
        raise ValueError("no PROXY header: %r" % head)
    line = head + f.readline(V1_MAX + 1 - len(head))
    if not line.endswith(b"\r\n") or len(line) > V1_MAX:
        raise ValueError("bad PROXY v1 line %r" % line)
    parts = line[:-2].decode("ascii").split(" ")
    if parts[1] == "UNKNOWN":
        return {"version": 1, "command": "unknown"}
    if parts[1] not in ("TCP4", "TCP6") or len(parts) != 6:
        raise ValueError("bad PROXY v1 line %r" % line)
    return {"version": 1, "command": "proxy", "family": parts[1],
            "src": parts[2], "dst": parts[3], "sport": int(parts[4]),
            "dport": int(parts[5])}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "echo"
    # Head and body are two writes: without TCP_NODELAY a keep-alive peer
    # waits for a delayed ACK (40 ms) between them.
    disable_nagle_algorithm = True

    def handle(self):
        self.proxy = None
        if self.server.proxy:
            try:
                self.proxy = read_proxy(self.rfile)
            except (ValueError, IndexError, UnicodeError, OSError) as e:
                sys.stderr.write("%s: %s\n" % (self.client_address[0], e))
                return
        super().handle()

    def do_GET(self):
        key = "%d %s" % (self.server.server_address[1], self.path)
        with lock:
            seen[key] = seen.get(key, 0) + 1
            last_proxy[key] = self.proxy
            snapshot = (json.dumps({"requests": seen, "proxy": last_proxy})
                        if self.path == "/_seen" else None)
        if self.path == "/healthz":
            body, ctype = "ok\n", "text/plain"
        elif snapshot is not None:
            body, ctype = snapshot, "application/json"
        else:
            body = json.dumps({
                "server": self.server.name,
                "port": self.server.server_address[1],
                "peer": self.client_address[0],
                "peer_port": self.client_address[1],
                "proxy": self.proxy, "path": self.path,
                "headers": {k.lower(): v for k, v in self.headers.items()}})
            ctype = "application/json"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, fmt, *args):
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 512


def main(argv):
    if len(argv) < 4:
        sys.stderr.write("usage: %s ADDR NAME PORT:plain|proxy ...\n"
                         % argv[0])
        return 2
    addr, name = argv[1], argv[2]
    servers = []
    for spec in argv[3:]:
        port, mode = spec.split(":")
        s = Server((addr, int(port)), Handler)
        s.name = name
        s.proxy = mode == "proxy"
        servers.append(s)
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
