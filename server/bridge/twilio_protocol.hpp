#pragma once
// The "twilio" upstream protocol: callstream speaks Twilio Media Streams to the upstream
// exactly as Twilio speaks it to callstream (TWILIO.md §1-2), so a bot written for Twilio runs
// unchanged behind callstream.
//
// To the upstream: `connected` on open; `start` (accountSid, callSid, streamSid, tracks,
// customParameters, mediaFormat audio/x-mulaw 8000 1); `media` per caller frame with string
// sequenceNumber, chunk and timestamp (the caller's own media timestamp); `dtmf`
// (track inbound_track); `mark` when the caller has heard the audio queued before the bot's
// mark, or right after a clear for every mark still pending (as Twilio does); `stop`.
// From the upstream: `media` (base64 μ-law of any length), `mark`, `clear`. Anything else is
// hostile: not JSON -> invalid_json, a binary frame -> binary_frame, bad base64 -> bad_base64,
// a media without payload or a streamSid that is not the call's -> bad_event. Twilio itself
// only warns about the last two (31951); callstream closes, so a broken bot is noticed.
//
// Calling thread and lifetime: see upstream_protocol.hpp.

#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

// Builds the messages the twilio protocol sends; pure, exposed for tests and the bench peer.
namespace twilio_wire {
std::string connected();
std::string start(const call_metadata& call, std::uint64_t sequence);
// `,"streamSid":"<sid>"` with the SID escaped: media() takes it made once per call.
std::string stream_sid_field(std::string_view stream_sid);
// Writes a media message for `ulaw` into `out` (cleared first); `sid_field` is
// stream_sid_field() of the call's stream.
void media(std::string& out, std::string_view sid_field, std::uint64_t sequence,
           std::uint64_t chunk, std::int64_t timestamp_ms, std::span<const std::uint8_t> ulaw);
std::string dtmf(std::string_view stream_sid, std::uint64_t sequence, char digit);
std::string mark(std::string_view stream_sid, std::uint64_t sequence, std::string_view name);
std::string stop(const call_metadata& call, std::uint64_t sequence);
} // namespace twilio_wire

} // namespace callstream::server::bridge
