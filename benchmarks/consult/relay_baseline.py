"""The baseline a user might deploy instead: a bare ``websockets`` relay (no auth check, no
storage, no audit). Same wire protocol as RelieFlink's consultation socket, the room taken from
the URL path, so the same client drives both.

    python benchmarks/consult/relay_baseline.py --port 8766
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json

from websockets.asyncio.server import ServerConnection, serve

rooms: dict[str, set[ServerConnection]] = {}
ids = itertools.count(1)


async def handler(ws: ServerConnection) -> None:
    room = ws.request.path if ws.request else "/"
    first = json.loads(await ws.recv())
    if first.get("type") != "auth":
        await ws.close(4400)
        return
    members = rooms.setdefault(room, set())
    members.add(ws)
    await ws.send(json.dumps({"type": "ready", "history": []}))
    try:
        async for raw in ws:
            event = json.loads(raw)
            if event.get("type") != "message":
                continue
            out = json.dumps(
                {
                    "type": "message",
                    "id": next(ids),
                    "body": event["body"],
                    "client_ref": event.get("client_ref"),
                }
            )
            for member in list(members):
                try:
                    await member.send(out)
                except Exception:  # a member left
                    members.discard(member)
    finally:
        members.discard(ws)


async def main(port: int) -> None:
    async with serve(handler, "127.0.0.1", port, max_queue=None, ping_interval=None):
        await asyncio.Future()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8766)
    asyncio.run(main(parser.parse_args().port))
