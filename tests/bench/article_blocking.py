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

import time

from article_common import answer, listening_socket, options


def serve(host, port, delay, pad):
    server = listening_socket(host, port)
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
    serve(*options(__doc__))


if __name__ == "__main__":
    main()
