#pragma once
// The twilio room: everything that speaks Twilio's formats and APIs, and no sockets of its own
// except the REST client's.
//   media_messages    the Media Streams JSON protocol (this file)
//   signature         X-Twilio-Signature;  twiml  the TwiML we answer webhooks with
//   rest_client       the Calls API over HTTPS;  create_call  the /make-call request and form
// May include server/http (form encoding, types), codec/ and Boost; never server/media,
// server/calls or server/app beyond log.hpp.
//
// The Twilio Media Streams protocol: parsing what Twilio sends, building what we send back.
// Media payloads are base64 μ-law at 8 kHz, 20 ms (160 bytes) per message as Twilio sends them.
// Errors: parse_inbound returns a protocol_errc naming the field; nothing throws.
//
// Parsing uses simdjson's on-demand API in one pass over the top-level object, so field order
// does not matter. Views in `inbound_message` point into the parsed buffer and are valid until
// the next parse with the same parser. Called on the network thread that owns the WebSocket.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <simdjson.h>

#include "pipeline/processor.hpp"
#include "pipeline/warm_lines.hpp"

namespace callstream::server {

enum class inbound_event : std::uint8_t { connected, start, media, dtmf, mark, stop, unknown };
std::string_view to_string(inbound_event e) noexcept;

// Why a message was refused. Each maps to the WebSocket close code the session sends.
enum class protocol_errc {
    invalid_json = 1,   // not JSON, or not an object: 1007
    missing_event,      // no "event" string: 1007
    bad_field,          // a known field with the wrong type: 1007
    missing_stream_sid, // an event that needs "streamSid" lacks it: 1008
    missing_payload,    // media without media.payload: 1007
    bad_start,          // start without the SIDs it needs: 1008
};
const std::error_category& protocol_category() noexcept;
std::error_code make_error_code(protocol_errc e) noexcept;

struct inbound_message {
    inbound_event event = inbound_event::unknown;
    std::string_view event_name;
    std::string_view stream_sid;
    // media
    std::string_view track;
    std::string_view payload; // base64 μ-law
    std::int64_t timestamp_ms = 0;
    // dtmf / mark
    std::string_view digit;
    std::string_view mark_name;
};

// Parses one text message. `json` must have `capacity - json.size() >= SIMDJSON_PADDING`
// readable bytes after it. For a `start` message the stream description is copied into `start`
// (receive_only when start.tracks names "outbound": only <Start> streams carry that track).
std::error_code parse_inbound(simdjson::ondemand::parser& parser, std::string_view json,
                              std::size_t capacity, inbound_message& out,
                              pipeline::stream_info& start);

// Builds outbound messages. The media prefix for a stream is built once; every frame then
// appends base64 and the closing braces to a reused buffer, so a frame costs no allocation.
class outbound_writer {
  public:
    void set_stream_sid(std::string_view stream_sid);
    // {"event":"media","streamSid":"…","media":{"payload":"<base64 of ulaw>"}}
    void media(std::span<const std::uint8_t> ulaw, std::string& out) const;
    // {"event":"mark","streamSid":"…","mark":{"name":"…"}}
    void mark(std::string_view name, std::string& out) const;
    // {"event":"clear","streamSid":"…"}
    void clear(std::string& out) const;
    // The strings media() reads, for prefetching (pipeline/warm_lines.hpp).
    void add_hot_lines(pipeline::warm_lines& lines) const noexcept {
        lines.add(media_prefix_.data(), media_prefix_.size());
    }

  private:
    std::string media_prefix_;
    std::string sid_json_; // the stream SID as an escaped JSON string
};

} // namespace callstream::server

template <> struct std::is_error_code_enum<callstream::server::protocol_errc> : std::true_type {};
