# SPDX-License-Identifier: Apache-2.0
"""A TCP relay that delays every byte by a fixed time each way: a peer as it is reached across a
network, on a machine that has only loopback.  Used by bench/ca_ha_bench.sh (PostgreSQL, where
each statement of a transaction costs a round trip; PG_DELAY_MS) and bench/ocsp_cold_p99.sh (an
OCSP responder 50 ms away).

    tcp_delay.py LISTEN_PORT TARGET_PORT DELAY_MS

Listens on 127.0.0.1:LISTEN_PORT; each connection is relayed to 127.0.0.1:TARGET_PORT, the
data of each direction forwarded in order, DELAY_MS after it was read.  The connection to the
target is opened at once (a connect is not delayed): a round trip of data costs 2 x DELAY_MS.
"""

import asyncio
import socket
import sys


async def pump(reader, writer, delay):
    q = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def send():
        while True:
            due, data = await q.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if data is None:
                writer.close()
                return
            writer.write(data)
            await writer.drain()

    sender = asyncio.ensure_future(send())
    try:
        while True:
            data = await reader.read(65536)
            q.put_nowait((loop.time() + delay, data or None))
            if not data:
                break
        await sender
    except (ConnectionError, OSError):
        sender.cancel()
        writer.close()


async def main(listen, target, delay):
    async def relay(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        for w in (cw, sw):
            w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay))

    server = await asyncio.start_server(relay, "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000.0))
