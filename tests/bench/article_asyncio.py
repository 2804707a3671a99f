#!/usr/bin/env python3
"""The asyncio design of the article hellod began from.

One process, one thread, one event loop that waits for whichever socket
is ready.  Every connection is a task of its own, so a slow client (or a
slow backend) makes only its own task wait; all tasks share one CPU.

    python3 article_asyncio.py --listen 127.0.0.1:8080 [--delay MS] [--pad N]

--delay waits that long before every answer (a slow backend); --pad
appends N spaces to the body (a bigger response).
"""

import asyncio

from article_common import answer, listening_socket, options


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
    server = listening_socket(host, port)
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
    asyncio.run(serve(*options(__doc__)))


if __name__ == "__main__":
    main()
