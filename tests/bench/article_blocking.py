#!/usr/bin/env python3
"""The blocking design of the article hellod began from.

One process, one thread, one connection at a time: accept a connection,
read the request, write the answer, close, and only then accept the next.
While it waits for one client (a slow network, a slow backend, a client
that never sends anything) every other client waits in the kernel's listen
queue, and when that queue is full new connections are dropped.

    python3 article_blocking.py --listen 127.0.0.1:8080 [--delay MS] [--pad N]

--delay sleeps that long before every answer (a slow backend); --pad
appends N spaces to the body (a bigger response).
"""

import argparse
import signal
import socket
import sys
import time


def answer(request, client_ip, pad):
    """The bytes to send back for one request."""
    if request.startswith(b"GET "):
        status = "200 OK"
        body = "<html><body><h1>Hello %s</h1></body></html>" % client_ip
        body += " " * pad
    else:
        status = "400 Bad Request"
        body = "<html><body><h1>400 Bad Request</h1></body></html>"
    body = body.encode()
    head = ("HTTP/1.1 %s\r\n"
            "Content-Type: text/html\r\n"
            "Content-Length: %d\r\n"
            "Connection: close\r\n"
            "\r\n" % (status, len(body)))
    return head.encode() + body


def serve(host, port, delay, pad):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen()  # the default backlog: at most 128 waiting connections
    while True:
        conn, addr = server.accept()  # blocks until a client connects
        try:
            request = conn.recv(1024)  # blocks until the client sends
            if request:  # b"": the client closed without asking anything
                if delay:
                    time.sleep(delay)  # the whole server sleeps
                conn.sendall(answer(request, addr[0], pad))
        except OSError:
            pass  # the client went away; serve the next one
        finally:
            conn.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    p.add_argument("--delay", type=float, default=0, help="milliseconds")
    p.add_argument("--pad", type=int, default=0, help="bytes of padding")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    serve(host.strip("[]"), int(port), args.delay / 1000.0, args.pad)


if __name__ == "__main__":
    main()
