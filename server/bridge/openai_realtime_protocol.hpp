#pragma once
// The "openai-realtime" upstream protocol: one call bridged to an OpenAI Realtime session
// (BRIDGE.md §1.1; docs/bridge.md).
//
// Formats (--bridge-option NAME=format=pcmu|pcm24k): μ-law 8 kHz both ways by default, so the
// caller's bytes pass through unchanged; or PCM16 LE 24 kHz both ways (caller audio resampled
// 8 -> 24 kHz here with the pipeline's resampler, assistant audio handed to play_pcm16 at
// 24 kHz). The format is in every session.update, and every session.updated is checked: effective
// formats that differ from the request fail the upstream (label format_mismatch) instead of
// reaching the caller as static.
//
// Barge-in (input_audio_buffer.speech_started while assistant audio is unheard or a response is
// active): clear_playback(); response.cancel only while a response is active (and once per
// response; the server's `response_cancel_not_active` answer is benign); and
// conversation.item.truncate with audio_end_ms = what the caller heard of the playing item,
// heard_ms() minus the item's start on the playout timeline (callstream's pacing and Twilio's
// mark echoes, never the wall clock), clamped to [0, what was sent of that item]. Deltas of the
// truncated item that arrive later are dropped and counted.
//
// Session settings: --bridge-option NAME=model|voice|instructions=..., overridden per call by
// the customParameters of the same names (the URL is always the configuration's). With
// --bridge-option NAME=greet=true the assistant speaks first (response.create once the session
// is ready and the call has started).
//
// Caller audio before ready() (session.updated checked) is kept by the core and handed over in
// order (upstream_protocol.hpp). Threading and lifetime: see upstream_protocol.hpp.
// Errors: text that is not a server event -> invalid_json; a known field of the wrong type ->
// bad_event; bad base64 in a delta -> bad_base64; a binary frame -> binary_frame;
// error{code: session_expired} (or the server's 1001 close, which the core sees) ->
// session_expired; all through fail(). Other `error` events are logged and counted, and the
// session carries on (most errors leave it open, BRIDGE.md §1.1.3).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/resampler.hpp"
#include "server/bridge/audio_protocol_messages.hpp"
#include "server/bridge/openai_realtime_messages.hpp"
#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

// What the protocol has done, for logs and tests.
struct openai_realtime_stats {
    std::uint64_t error_events = 0;        // `error` events received, benign ones included
    std::uint64_t benign_errors = 0;       // of which response_cancel_not_active
    std::uint64_t barge_ins = 0;           // speech_started acted on
    std::uint64_t cancels = 0;             // response.cancel sent
    std::uint64_t truncations = 0;         // conversation.item.truncate sent
    std::uint64_t late_deltas_dropped = 0; // deltas of a truncated item
    std::int64_t last_truncate_ms = -1;    // audio_end_ms of the last truncate
};

class openai_realtime_protocol final : public upstream_protocol {
  public:
    // `defaults`: the configured model, voice, instructions and format; `greet`: speak first.
    openai_realtime_protocol(realtime_session_config defaults, bool greet);
    ~openai_realtime_protocol() override;

    void on_open(bridge_actions& bridge) override;
    void on_start(const call_metadata& call, bridge_actions& bridge) override;
    bool ready() const override { return ready_; }
    void on_caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                         bridge_actions& bridge) override;
    void on_dtmf(char digit, bridge_actions& bridge) override;
    void on_mark_played(std::string_view name, bool cleared, bridge_actions& bridge) override;
    void on_stop(bridge_actions& bridge) override;
    void on_upstream_text(std::string_view message, bridge_actions& bridge) override;
    void on_upstream_binary(std::span<const std::uint8_t> bytes, bridge_actions& bridge) override;

    const openai_realtime_stats& stats() const noexcept { return stats_; }
    const realtime_session_config& session_config() const noexcept { return config_; }

  private:
    void send_session_update(bridge_actions& bridge);
    void maybe_greet(bridge_actions& bridge);
    void handle_session(bridge_actions& bridge);
    void handle_delta(bridge_actions& bridge);
    void handle_speech_started(bridge_actions& bridge);
    void handle_error(bridge_actions& bridge);
    void play(std::span<const std::uint8_t> audio, bridge_actions& bridge);
    void place_mark(bridge_actions& bridge);
    std::int64_t item_sent_ms() const noexcept;

    realtime_session_config config_;
    bool greet_ = false;
    bool greeted_ = false;
    bool started_ = false;
    bool ready_ = false;
    std::string call_sid_; // for logs

    // The response the server is generating, and whether we already asked to cancel it.
    bool response_active_ = false;
    bool cancel_sent_ = false;
    std::string response_id_;

    // The assistant item playing now: where its audio starts on the playout timeline and how
    // many bytes of it (in the session's output format) were handed to the core.
    std::string item_id_;
    std::string item_response_id_; // the response that carries it
    std::int64_t item_start_ms_ = 0;
    std::int64_t item_bytes_ = 0;
    std::string muted_item_id_; // truncated: its late deltas are dropped
    // Our marks keep the core's heard model resynchronised with Twilio's playout.
    std::int64_t last_mark_ms_ = 0; // item_sent_ms() at the item's last mark
    std::uint32_t marks_ = 0;

    std::unique_ptr<pipeline::resampler> upsampler_; // pcm24: caller 8 -> 24 kHz
    std::vector<std::int16_t> pcm8_;
    std::vector<std::int16_t> pcm24_;
    std::vector<std::uint8_t> bytes_;
    pcm16le_decoder pcm16le_; // pcm24 deltas

    realtime_event event_;
    std::string out_;
    openai_realtime_stats stats_;
};

} // namespace callstream::server::bridge
