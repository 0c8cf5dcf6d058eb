#pragma once
// The seam between the bridge core and a wire protocol spoken to an upstream application.
//
// The core (server/bridge/call_bridge.*) owns the upstream WebSocket, the playout pacer and the
// failure policy; a protocol only translates: call events -> upstream messages, and upstream
// messages -> bridge_actions. Three protocols exist, chosen per upstream by --bridge-protocol:
//   "twilio"           server/bridge/twilio_protocol.*          (Twilio Media Streams JSON)
//   "openai-realtime"  server/bridge/openai_realtime_protocol.* (OpenAI Realtime API)
//   "audio"            server/bridge/audio_protocol.*           (callstream.audio.v1)
//
// Calling thread: one protocol instance per call (and per upstream connection: a reconnect
// makes a fresh instance and calls on_open/on_start again with the same metadata). Every method
// is called on the call's bridge thread (the network thread that owns the upstream socket), and
// bridge_actions may only be used from inside those calls. Nothing here may block.
//
// Audio units: μ-law is 8 kHz, 8 bytes per ms; a Twilio frame is 20 ms = 160 bytes. Positions
// (heard_ms, sent_ms, queued_end_ms) are in ms on one playout timeline: the cumulative length of
// all upstream audio accepted by play_* on this call. Audio dropped by clear_playback() is never
// heard, so heard_ms stops where the clear cut it, and audio played later starts at the
// queued_end_ms() of the moment it was queued.
//
// Errors: a protocol that meets invalid or hostile upstream input calls fail(label, detail) and
// returns; the core closes the upstream, counts the label (/metrics
// callstream_bridge_failures_total{reason=label}) and applies the upstream's failure policy.
// Labels are short snake_case words: invalid_json, binary_frame, bad_base64, bad_event,
// session_error, format_mismatch, session_expired, ...

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/warm_lines.hpp"
#include "server/bridge/upstream_config.hpp"

namespace callstream::server::bridge {

// What the Twilio stream's `start` told us, plus the call's numbers when /twiml saw them.
struct call_metadata {
    std::string account_sid;
    std::string call_sid;
    std::string stream_sid;
    std::string from; // E.164 or empty when unknown (the stream's start does not carry it)
    std::string to;
    std::vector<std::pair<std::string, std::string>> custom_parameters;
    std::vector<std::string> tracks; // Twilio's start.tracks, e.g. {"inbound"}

    std::string_view parameter(std::string_view name, std::string_view fallback = {}) const {
        for (const auto& [key, value] : custom_parameters) {
            if (key == name) {
                return value;
            }
        }
        return fallback;
    }
};

// What a protocol may ask of the bridge. Only valid inside a call from the bridge.
class bridge_actions {
  public:
    // To the upstream (queued; one write in flight; a full queue fails the upstream).
    virtual void send_text(std::string message) = 0;
    // An empty string, often with capacity from a message already written, to build the next
    // message in and hand to send_text (saves an allocation per frame).
    virtual std::string take_buffer() { return {}; }
    virtual void send_binary(std::vector<std::uint8_t> bytes) = 0;

    // Into the call. Audio of any length is cut into exact 20 ms frames (a trailing partial
    // frame waits for more audio, or is padded with μ-law silence 0xFF by play_mark/flush) and
    // released to Twilio at real time plus the lead.
    virtual void play_ulaw(std::span<const std::uint8_t> ulaw) = 0;
    // PCM16 mono at rate_hz (8000, 16000, 24000 or 48000), converted to 8 kHz by the pipeline's
    // resampler (state kept across calls, so chunk boundaries do not click).
    virtual void play_pcm16(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) = 0;
    // A mark behind the audio queued so far; on_mark_played(name, false) once the caller has
    // heard that audio (Twilio echoed callstream's own mark), or (name, true) if a clear
    // dropped it first. Names up to 200 bytes.
    virtual void play_mark(std::string name) = 0;
    // Stops what the caller hears within the lead: queued audio is dropped, Twilio gets a
    // `clear`, every pending mark is reported with cleared = true.
    virtual void clear_playback() = 0;

    // Playout timeline positions (see the header comment), in ms.
    virtual std::int64_t heard_ms() const = 0;      // the caller has heard up to here
    virtual std::int64_t sent_ms() const = 0;       // handed to Twilio up to here
    virtual std::int64_t queued_end_ms() const = 0; // accepted by play_* up to here

    // For /metrics: a barge-in the protocol acted on, a truncation it sent upstream.
    virtual void count_barge_in() = 0;
    virtual void count_truncation() = 0;
    // An `error` event the upstream sent (OpenAI Realtime error.type and error.code).
    virtual void count_upstream_error(std::string_view type, std::string_view code) = 0;

    // Ends the call with a logged reason, as the hangup policy does (no reconnect).
    virtual void hangup(std::string reason) = 0;
    // Invalid or hostile upstream: close it, count `label`, apply the failure policy.
    virtual void fail(std::string_view label, std::string detail) = 0;

  protected:
    ~bridge_actions() = default;
};

class upstream_protocol {
  public:
    virtual ~upstream_protocol() = default;

    // Sec-WebSocket-Protocol to request; empty for none. A server that answers with another
    // (or none when one was requested) fails the connect (label bad_subprotocol).
    virtual std::string_view websocket_subprotocol() const { return {}; }

    // The upstream WebSocket is open. May come before on_start (pre-warm during /twiml).
    virtual void on_open(bridge_actions& bridge) = 0;
    // Twilio's `start` for this call arrived (always after on_open).
    virtual void on_start(const call_metadata& call, bridge_actions& bridge) = 0;
    // False: the bridge keeps caller audio (bounded, bridge_config::max_pending_caller_frames)
    // and hands it over in order once this turns true (checked after every call into the
    // protocol).
    virtual bool ready() const { return true; }
    // The members a message touches, for the socket's prefetch (pipeline/warm_lines.hpp);
    // called once the protocol has started.
    virtual void add_hot_lines(pipeline::warm_lines& /*lines*/) const {}

    // One caller media message: μ-law 8 kHz (Twilio sends 160 bytes), media timestamp in ms.
    virtual void on_caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                                 bridge_actions& bridge) = 0;
    // One media message of the call's outbound track (a fork stream, start.tracks has
    // "outbound"): what the call hears, μ-law 8 kHz, media timestamp in ms. Receive-only: nothing
    // played into such a call reaches it. Protocols that carry one channel ignore it.
    virtual void on_outbound_audio(std::span<const std::uint8_t> /*ulaw*/,
                                   std::int64_t /*timestamp_ms*/, bridge_actions& /*bridge*/) {}
    virtual void on_dtmf(char digit, bridge_actions& bridge) = 0;
    // A mark from play_mark(): heard (cleared = false) or dropped by a clear (cleared = true).
    virtual void on_mark_played(std::string_view name, bool cleared, bridge_actions& bridge) = 0;
    // The caller's stream stopped (Twilio `stop` or the socket went away). The bridge flushes
    // what the protocol sends here, then closes the upstream.
    virtual void on_stop(bridge_actions& bridge) = 0;

    // One upstream message. A text message is followed by at least SIMDJSON_PADDING (64)
    // readable bytes, so it can be parsed in place; views die when the call returns.
    virtual void on_upstream_text(std::string_view message, bridge_actions& bridge) = 0;
    virtual void on_upstream_binary(std::span<const std::uint8_t> bytes,
                                    bridge_actions& bridge) = 0;
};

// The protocol `upstream.protocol` names, or null for an unknown name.
std::unique_ptr<upstream_protocol> make_upstream_protocol(const upstream_config& upstream);

// Startup check of an upstream's protocol name and options: empty when valid, else a message
// naming the flag to fix.
std::string validate_upstream(const upstream_config& upstream);

// Per protocol (one .cpp each).
std::unique_ptr<upstream_protocol> make_twilio_protocol(const upstream_config& upstream);
std::unique_ptr<upstream_protocol> make_openai_realtime_protocol(const upstream_config& upstream);
std::unique_ptr<upstream_protocol> make_audio_protocol(const upstream_config& upstream);
std::string validate_twilio_options(const upstream_config& upstream);
std::string validate_openai_realtime_options(const upstream_config& upstream);
std::string validate_audio_options(const upstream_config& upstream);

} // namespace callstream::server::bridge
