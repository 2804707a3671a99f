#!/usr/bin/env python3
"""The asyncio design of the article hellod began from.

One process, one thread, one event loop that waits for whichever socket
is ready.  Every connection is a task of its own, so a slow client (or a
slow backend) makes only its own task wait; all tasks share one CPU.

    python3 article_asyncio.py --listen 127.0.0.1:8080 [--delay MS] [--pad N]

--delay waits that long before every answer (a slow backend); --pad
appends N spaces to the body (a bigger response).
"""

import argparse
import asyncio
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


async def handle(loop, conn, client_ip, delay, pad):
    try:
        request = await loop.sock_recv(conn, 1024)  # other tasks run meanwhile
        if request:  # b"": the client closed without asking anything
            if delay:
                await asyncio.sleep(delay)  # only this task sleeps
            await loop.sock_sendall(conn, answer(request, client_ip, pad))
    except OSError:
        pass  # the client went away
    finally:
        conn.close()


async def serve(host, port, delay, pad):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server = socket.socket(family, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind((host, port))
    server.listen()  # the default backlog, as in the blocking design
    server.setblocking(False)  # the loop, not the socket, does the waiting
    loop = asyncio.get_running_loop()
    tasks = set()  # the loop keeps only weak references to tasks
    while True:
        conn, addr = await loop.sock_accept(server)
        conn.setblocking(False)
        task = loop.create_task(handle(loop, conn, addr[0], delay, pad))
        tasks.add(task)
        task.add_done_callback(tasks.discard)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT")
    p.add_argument("--delay", type=float, default=0, help="milliseconds")
    p.add_argument("--pad", type=int, default=0, help="bytes of padding")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    asyncio.run(serve(host.strip("[]"), int(port), args.delay / 1000.0,
                      args.pad))


if __name__ == "__main__":
    main()
