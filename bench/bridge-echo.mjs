#!/usr/bin/env node
// The cheap upstream of bench/compare --bridge: a WebSocket server speaking Twilio Media Streams
// JSON back to callstream's `twilio` bridge protocol, as a bot that only echoes would. Every
// `media` message is sent back as it came (callstream reads it as Twilio's inbound media, which
// it is); connected, start, mark, dtmf and stop are read and dropped. No JSON parse, no base64:
// the upstream's own cost stays out of callstream's figures.
//
//   NODE_PATH=build/npm/node_modules node bench/bridge-echo.mjs PORT
import { createRequire } from 'node:module';

const require = createRequire(`${process.env.NODE_PATH || 'build/npm/node_modules'}/`);
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
wss.on('connection', (ws) => {
    ws.on('message', (data, isBinary) => {
        // '{"event":"media"' is how callstream's Twilio writer starts every media message.
        if (!isBinary && data.length > 16 && data.toString('latin1', 0, 16) === '{"event":"media"') {
            ws.send(data, { binary: false });
        }
    });
});
wss.on('listening', () => console.log(`bridge-echo listening on ${wss.address().port}`));
