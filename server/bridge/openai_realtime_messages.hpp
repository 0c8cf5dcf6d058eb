#pragma once
// The OpenAI Realtime API's WebSocket events, as pure functions: building the client events the
// bridge sends and parsing the server events it reacts to. No I/O, no state.
//
// Shapes follow the GA interface (`session.type`, `session.audio.{input,output}.format`); the
// parser also understands the beta names (`response.audio.delta`, flat `*_audio_format`) so one
// bridge serves both. Audio in events is base64: μ-law 8 kHz (8 bytes per ms) or PCM16 LE 24 kHz
// (48 bytes per ms).
//
// Threading: any thread; a parser is used by one thread at a time. Views in `realtime_event`
// point into the parser's buffers and the parsed text, and are valid until the next parse with
// the same parser. Builders append to a caller-owned string (reuse it and a frame allocates
// nothing). Errors: parse_server_event() returns an error_code for text that is not a JSON
// object with a string "type", or a known field of the wrong type; unknown events parse fine
// with type other.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

#include <simdjson.h>

namespace callstream::server::bridge {

// An audio format of the Realtime session, one direction.
enum class realtime_format : std::uint8_t {
    unknown, // absent, or one this bridge cannot carry (e.g. audio/pcm at 16 kHz)
    pcmu,    // GA {"type":"audio/pcmu"}, beta "g711_ulaw": μ-law 8 kHz
    pcma,    // GA {"type":"audio/pcma"}, beta "g711_alaw": A-law 8 kHz (parsed, never requested)
    pcm24,   // GA {"type":"audio/pcm","rate":24000}, beta "pcm16": PCM16 LE 24 kHz
};
std::string_view to_string(realtime_format f) noexcept;
// Bytes of audio in one millisecond: 8 for pcmu and pcma, 48 for pcm24, 0 for unknown.
constexpr std::uint32_t bytes_per_ms(realtime_format f) noexcept {
    return f == realtime_format::pcm24 ? 48 : f == realtime_format::unknown ? 0 : 8;
}

// What a call's session asks for. Empty strings are left out of session.update.
struct realtime_session_config {
    std::string model;                              // e.g. "gpt-realtime"
    std::string voice;                              // e.g. "marin"
    std::string instructions;                       // the system prompt
    realtime_format format = realtime_format::pcmu; // both directions: pcmu or pcm24
};

// Appends one complete client event to `out` (which is not cleared first).
//
// session.update in GA shape, with the formats in both directions always present (a provider
// default must never decide them) and server VAD that creates and interrupts responses.
void append_session_update(std::string& out, const realtime_session_config& config);
// {"type":"input_audio_buffer.append","audio":"<base64 of `audio`>"}
void append_input_audio(std::string& out, std::span<const std::uint8_t> audio);
// {"type":"response.create"}: the assistant speaks without waiting for the caller.
void append_response_create(std::string& out);
// {"type":"response.cancel"}
void append_response_cancel(std::string& out);
// {"type":"conversation.item.truncate","item_id":…,"content_index":0,"audio_end_ms":…}
void append_item_truncate(std::string& out, std::string_view item_id, std::uint64_t audio_end_ms);

enum class realtime_event_type : std::uint8_t {
    session_created,
    session_updated,
    speech_started, // input_audio_buffer.speech_started
    speech_stopped, // input_audio_buffer.speech_stopped
    response_created,
    response_done,
    audio_delta,    // response.output_audio.delta (GA) or response.audio.delta (beta)
    audio_done,     // response.output_audio.done or response.audio.done
    item_truncated, // conversation.item.truncated
    error,          // error
    other,          // any other event: ignored by the bridge
};
std::string_view to_string(realtime_event_type t) noexcept;

struct realtime_event {
    realtime_event_type type = realtime_event_type::other;
    std::string_view type_name;
    // audio_delta, audio_done, speech_*, item_truncated
    std::string_view item_id;
    std::string_view response_id; // audio_*; response.created/done: response.id
    std::string_view delta;       // audio_delta: base64 audio
    std::int64_t audio_ms = -1;   // speech_started: audio_start_ms; truncated/stopped: audio_end_ms
    // response.created / response.done: response.status ("in_progress", "completed", "cancelled",
    // …)
    std::string_view response_status;
    // session.created / session.updated: the effective formats
    realtime_format input_format = realtime_format::unknown;
    realtime_format output_format = realtime_format::unknown;
    std::string_view input_format_name; // the format as the server wrote it, for error messages
    std::string_view output_format_name;
    // error: error.type, error.code, error.message
    std::string_view error_type;
    std::string_view error_code;
    std::string_view error_message;
};

enum class realtime_errc {
    invalid_json = 1, // not JSON, or not an object
    missing_type,     // no "type" string
    bad_field,        // a known field has the wrong type
};
const std::error_category& realtime_category() noexcept;
std::error_code make_error_code(realtime_errc e) noexcept;

// Parses one server event. `json` must be followed by at least SIMDJSON_PADDING readable bytes
// within `capacity` (capacity >= json.size() + SIMDJSON_PADDING).
std::error_code parse_server_event(simdjson::ondemand::parser& parser, std::string_view json,
                                   std::size_t capacity, realtime_event& out);

} // namespace callstream::server::bridge

template <>
struct std::is_error_code_enum<callstream::server::bridge::realtime_errc> : std::true_type {};
