#!/usr/bin/python3
"""The monitor's users for bench/monitor-cost: one extra call (a Twilio-like caller sending 20 ms
of μ-law every 20 ms), N watchers on /monitor/events and, optionally, one listener on that
call's /monitor/listen socket. Runs until SIGTERM, then prints what the clients received.

    monitor_clients.py PORT API_TOKEN WATCHERS LISTEN(0|1)
"""
import asyncio
import json
import os
import signal
import sys
import urllib.request

import websockets

port, api_token, watchers, listen = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
base = f"127.0.0.1:{port}"
call_sid = "CA" + os.urandom(16).hex()
stream_sid = "MZ" + os.urandom(16).hex()
got = {"snapshots": 0, "snapshot_bytes": 0, "listen_messages": 0, "listen_bytes": 0}


def token():
    req = urllib.request.Request(f"http://{base}/monitor/token", method="POST",
                                 headers={"Authorization": f"Bearer {api_token}"})
    return json.load(urllib.request.urlopen(req))["token"]


async def caller(ready):
    async with websockets.connect(f"ws://{base}/media-stream") as ws:
        await ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        await ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                                  "start": {"accountSid": "AC" + "1" * 32, "streamSid": stream_sid,
                                            "callSid": call_sid, "tracks": ["inbound"],
                                            "customParameters": {"app": "echo"},
                                            "mediaFormat": {"encoding": "audio/x-mulaw",
                                                            "sampleRate": 8000, "channels": 1}}}))
        ready.set()
        import base64
        payload = base64.b64encode(bytes((i * 7) & 0x7f for i in range(160))).decode()
        loop = asyncio.get_running_loop()
        t0, i = loop.time(), 0
        async def drain():
            async for _ in ws:
                pass
        asyncio.ensure_future(drain())
        while True:
            await ws.send(json.dumps({"event": "media", "streamSid": stream_sid,
                                      "sequenceNumber": str(i + 2),
                                      "media": {"track": "inbound", "chunk": str(i + 1),
                                                "timestamp": str(i * 20), "payload": payload}}))
            i += 1
            await asyncio.sleep(max(0, t0 + i * 0.02 - loop.time()))


async def watcher():
    async with websockets.connect(f"ws://{base}/monitor/events?token={token()}",
                                  max_size=1 << 24) as ws:
        async for m in ws:
            got["snapshots"] += 1
            got["snapshot_bytes"] += len(m)


async def listener():
    async with websockets.connect(f"ws://{base}/monitor/listen/{stream_sid}?token={token()}") as ws:
        async for m in ws:
            got["listen_messages"] += 1
            got["listen_bytes"] += len(m)


async def main():
    ready = asyncio.Event()
    tasks = [asyncio.ensure_future(caller(ready))]
    await ready.wait()
    await asyncio.sleep(0.3)
    tasks += [asyncio.ensure_future(watcher()) for _ in range(watchers)]
    if listen:
        tasks.append(asyncio.ensure_future(listener()))
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    await stop.wait()
    print(json.dumps(got), flush=True)
    for t in tasks:
        t.cancel()


asyncio.run(main())
