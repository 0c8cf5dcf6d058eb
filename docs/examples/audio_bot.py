#!/usr/bin/env python3
"""A callstream.audio.v1 bot: greets the caller with a beep, then echoes what the caller says.

Keys: 1 plays a beep over the echo (clearing what is queued first), # hangs up.
Needs Python 3.9+ and websockets (Debian: apt install python3-websockets).
Run:  python3 audio_bot.py [port]     (default 8765; point callstream at ws://HOST:PORT)
"""
import asyncio
import json
import math
import struct
import sys

import websockets


def beep(rate_hz, ms=300, hz=880):
    """`ms` of a sine as PCM16 little-endian at `rate_hz`."""
    n = rate_hz * ms // 1000
    return b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * hz * i / rate_hz)))
                    for i in range(n))


async def call(ws, path=None):
    start = json.loads(await ws.recv())  # the first frame is always the call's metadata
    fmt = start["format"]
    print(f"call {start['callSid']} from {start['from']!r} format {fmt}", flush=True)
    pcm = fmt["encoding"] == "l16"  # else μ-law 8 kHz: echo only, no beep
    if pcm:
        await ws.send(beep(fmt["sampleRate"]))
        await ws.send(json.dumps({"type": "mark", "name": "greeting"}))
    paused = False  # callstream says xoff when its playback queue is nearly full
    try:
        async for message in ws:
            if isinstance(message, bytes):  # 20 ms of the caller's audio
                if not paused:
                    await ws.send(message)
                continue
            event = json.loads(message)
            kind = event["type"]
            if kind == "dtmf" and event["digit"] == "#":
                await ws.send(json.dumps({"type": "hangup", "reason": "caller pressed #"}))
            elif kind == "dtmf" and event["digit"] == "1" and pcm:
                await ws.send(json.dumps({"type": "clear"}))
                await ws.send(beep(fmt["sampleRate"]))
            elif kind == "mark":
                print(f"mark {event['name']} played", flush=True)
            elif kind in ("xoff", "xon"):
                paused = kind == "xoff"
            elif kind == "stop":
                print(f"call {start['callSid']} ended: {event['reason']}", flush=True)
    except websockets.ConnectionClosed:
        pass  # callstream closes after stop; a dropped connection ends the call too


async def main(port):
    async with websockets.serve(call, "0.0.0.0", port, subprotocols=["callstream.audio.v1"]):
        print(f"listening on {port}", flush=True)
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8765))
