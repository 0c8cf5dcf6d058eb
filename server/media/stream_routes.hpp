#pragma once
// Control of a running stream from outside (bearer token, like /make-call):
//   POST /streams/{streamSid}/play   {"prompts": "welcome.wav,tone:440:500"} -> 202
//   POST /streams/{streamSid}/clear  stop the prompt, drop the queue, send Twilio `clear` -> 202
// 404 for an unknown stream, 409 for a stream without the play processor, 400 for a refused
// prompt (outside --prompts-dir, missing, unreadable), 503 when its mailbox is full.
//
// Threading: added on the main thread at startup; handlers run on network threads. /play loads
// and resamples the prompts on the requesting connection's thread (file I/O, a few ms per
// second of audio), never on the stream's own thread; the stream picks the batch up at its next
// caller frame (within 20 ms).

#include "server/app/server_context.hpp"

namespace callstream::server {

// Adds both routes to ctx.routes; they read ctx.sessions and ctx.cfg.api_token.
void add_stream_routes(server_context& ctx);

} // namespace callstream::server
