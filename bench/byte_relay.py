"""A byte relay with no HTTP parsing: the floor of any proxy placed where the gateway is (two more loopback hops and
two more wake-ups per response). `python -m bench.byte_relay LISTEN_PORT HOST:PORT`."""

import asyncio
import sys

import uvloop


async def main(listen, target):
    host, port = target.rsplit(":", 1)

    async def handle(reader, writer):
        up_r, up_w = await asyncio.open_connection(host, int(port))

        async def pipe(r, w):
            try:
                while data := await r.read(65536):
                    w.write(data)
            finally:
                w.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer), return_exceptions=True)

    server = await asyncio.start_server(handle, "127.0.0.1", int(listen))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    uvloop.install()
    asyncio.run(main(sys.argv[1], sys.argv[2]))
