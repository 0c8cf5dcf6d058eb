#pragma once
// The `callstream.audio.v1` wire protocol (docs/bridge.md has the specification): the JSON text
// frames callstream sends an `audio` upstream, and the parser of the control frames it sends
// back. Audio itself travels in binary frames and needs no code here beyond the format.
//
// Pure functions, any thread; a parser is used by one thread at a time. Views in
// `audio_control` point into the parser's buffers and are valid until its next parse. Builders
// append to a caller-owned string. Errors: parse_audio_control() returns an error_code for text
// that is not a JSON object with a string "type", or a known field of the wrong type; a type
// this version does not know parses as `other` (the bridge ignores it, so apps may be newer).

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include <simdjson.h>

#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

// The WebSocket subprotocol callstream asks for; an upstream that does not select it is refused.
inline constexpr std::string_view audio_subprotocol = "callstream.audio.v1";
// Binary frames callstream sends carry exactly this much audio.
inline constexpr std::uint32_t audio_frame_ms = 20;

enum class audio_encoding : std::uint8_t { l16, pcmu };

// The audio format of both directions: PCM16 little-endian at 8, 16 or 24 kHz, or μ-law 8 kHz.
struct audio_format {
    audio_encoding encoding = audio_encoding::l16;
    std::uint32_t rate_hz = 16000;

    std::uint32_t bytes_per_ms() const noexcept {
        return encoding == audio_encoding::pcmu ? rate_hz / 1000 : rate_hz / 500;
    }
    std::uint32_t frame_bytes() const noexcept { return bytes_per_ms() * audio_frame_ms; }
    std::string to_string() const; // "l16-16000", "pcmu": the --bridge-option format names
    friend bool operator==(const audio_format&, const audio_format&) = default;
};

// --bridge-option NAME=format=...: "pcmu", "l16-8000", "l16-16000", "l16-24000"; nullopt for
// anything else.
std::optional<audio_format> parse_audio_format(std::string_view text);

// callstream -> app, each appended as one complete text frame.
// {"type":"start","version":1,"callSid":…,"streamSid":…,"accountSid":…,"from":…,"to":…,
//  "customParameters":{…},"format":{"encoding":"l16","sampleRate":16000,"channels":1},
//  "frameMs":20}; channels 2 on a fork stream (both tracks interleaved, inbound first).
void append_audio_start(std::string& out, const call_metadata& call, const audio_format& format,
                        std::uint32_t channels = 1);
// {"type":"mark","name":…,"cleared":false}: the audio the app sent before its mark has played;
// "cleared":true when a clear dropped it first.
void append_audio_mark(std::string& out, std::string_view name, bool cleared);
// {"type":"dtmf","digit":"5"}
void append_audio_dtmf(std::string& out, char digit);
// {"type":"xoff","queuedMs":…} / {"type":"xon","queuedMs":…}
void append_audio_flow(std::string& out, bool xoff, std::uint64_t queued_ms);
// {"type":"stop","reason":…}: the call is over; callstream closes the socket after it.
void append_audio_stop(std::string& out, std::string_view reason);

// PCM16 little-endian on the wire, whatever the host's byte order.
// Appends `samples` to `out` as 2 bytes each, low byte first.
void append_pcm16le(std::vector<std::uint8_t>& out, std::span<const std::int16_t> samples);
// Turns a stream of PCM16 LE bytes cut anywhere (even mid-sample) into samples: an odd byte at
// the end of one chunk waits for the next.
class pcm16le_decoder {
  public:
    // Replaces `out` with the samples completed by `bytes`.
    void decode(std::span<const std::uint8_t> bytes, std::vector<std::int16_t>& out);
    void reset() noexcept { have_odd_byte_ = false; }

  private:
    std::uint8_t odd_byte_ = 0;
    bool have_odd_byte_ = false;
};

enum class audio_control_type : std::uint8_t { mark, clear, hangup, other };

struct audio_control {
    audio_control_type type = audio_control_type::other;
    std::string_view type_name;
    std::string_view name;   // mark
    std::string_view reason; // hangup (optional)
};

enum class audio_protocol_errc {
    invalid_json = 1, // not JSON, or not an object
    missing_type,     // no "type" string
    bad_field,        // a known field has the wrong type, or a mark without a name
};
const std::error_category& audio_protocol_category() noexcept;
std::error_code make_error_code(audio_protocol_errc e) noexcept;

// Parses one control frame from the app. `capacity >= json.size() + SIMDJSON_PADDING`.
std::error_code parse_audio_control(simdjson::ondemand::parser& parser, std::string_view json,
                                    std::size_t capacity, audio_control& out);

} // namespace callstream::server::bridge

template <>
struct std::is_error_code_enum<callstream::server::bridge::audio_protocol_errc> : std::true_type {};
