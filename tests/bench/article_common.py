"""What the article's two designs share (article_blocking.py and
article_asyncio.py): the command line, the listening socket and the
answer.  Only how they wait differs, and that stays in each."""

import argparse
import signal
import socket
import sys


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


def listening_socket(host, port):
    """A plain TCP socket on host:port with the default backlog: at most
    128 connections wait for accept()."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen()
    return server


def options(doc):
    """(host, port, delay in seconds, padding in bytes) from the command
    line; SIGTERM then exits cleanly."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    p.add_argument("--delay", type=float, default=0, help="milliseconds")
    p.add_argument("--pad", type=int, default=0, help="bytes of padding")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    return host.strip("[]"), int(port), args.delay / 1000.0, args.pad
