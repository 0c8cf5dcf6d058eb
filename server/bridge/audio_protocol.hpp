#pragma once
// The "audio" upstream protocol, WebSocket subprotocol `callstream.audio.v1` (docs/bridge.md has
// the specification an app author reads): metadata first, then binary audio both ways, JSON text
// for control.
//
// To the app: one `start` text frame when the call's stream starts (callSid, streamSid,
// accountSid, from, to, customParameters, format, frameMs); then every 20 ms of caller audio as
// one binary frame in the upstream's format (--bridge-option NAME=format=pcmu|l16-8000|
// l16-16000|l16-24000, default l16-16000; 8 -> 16/24 kHz through the pipeline's resampler);
// `dtmf`, `mark` (the app's mark has played, or `cleared`), `xoff`/`xon`, `stop`.
// A fork stream (start.tracks has "outbound"; receive-only) announces `channels: 2` and each
// binary frame is 20 ms of both tracks interleaved sample by sample, inbound (the caller) first,
// outbound (what the call hears) second. Tracks are aligned by their media timestamps: a track
// that starts late or skips time gets μ-law silence (0xFF) for the gap (at most
// max_track_skew_frames at once), and a track that falls more than max_track_skew_frames behind
// the other is filled with silence so the other keeps flowing.
// From the app: binary audio of any length in the same format (re-framed and paced by the core),
// `mark`, `clear`, `hangup`; unknown types are ignored so apps may be newer than callstream.
//
// Flow control, as Asterisk's chan_websocket does: when the audio accepted but not yet played
// out reaches xoff_ms (--bridge-option NAME=xoff_ms=..., default 10000) the app gets `xoff`;
// once it drains to xon_ms (default 80% of xoff_ms) it gets `xon`. An app that ignores xoff is
// still bounded by the core (bridge_config::max_buffered_audio, label too_fast).
//
// Threading and lifetime: see upstream_protocol.hpp. Errors: a control frame that is not JSON
// -> invalid_json; a known field of the wrong type, or a mark without a name -> bad_event;
// l16 audio of odd total length is carried over to the next frame, never misaligned.

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "pipeline/resampler.hpp"
#include "server/bridge/audio_protocol_messages.hpp"
#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

struct audio_flow_options {
    std::int64_t xoff_ms = 10000;
    std::int64_t xon_ms = 8000;
};

class audio_protocol final : public upstream_protocol {
  public:
    audio_protocol(audio_format format, audio_flow_options flow);
    ~audio_protocol() override;

    std::string_view websocket_subprotocol() const override { return audio_subprotocol; }
    void on_open(bridge_actions& bridge) override;
    void on_start(const call_metadata& call, bridge_actions& bridge) override;
    void on_caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                         bridge_actions& bridge) override;
    void on_outbound_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                           bridge_actions& bridge) override;
    void on_dtmf(char digit, bridge_actions& bridge) override;
    void on_mark_played(std::string_view name, bool cleared, bridge_actions& bridge) override;
    void on_stop(bridge_actions& bridge) override;
    void on_upstream_text(std::string_view message, bridge_actions& bridge) override;
    void on_upstream_binary(std::span<const std::uint8_t> bytes, bridge_actions& bridge) override;

    const audio_format& format() const noexcept { return format_; }
    // 2 on a fork stream (both tracks), else 1; known from on_start.
    std::uint32_t channels() const noexcept { return two_channels_ ? 2 : 1; }
    static constexpr std::size_t max_track_skew_frames = 50; // 1 s
    bool flow_off() const noexcept { return xoff_; }

  private:
    using ulaw_frame = std::array<std::uint8_t, 160>;
    struct track_state {
        ulaw_frame partial{};
        std::size_t partial_len = 0;
        std::int64_t next_ms = 0;      // the media timestamp the next frame should carry
        std::deque<ulaw_frame> queued; // two channels: waiting for the other track's frame
        std::unique_ptr<pipeline::resampler> upsampler;
        std::vector<std::int16_t> pcm;
    };
    void take_track(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                    track_state& track, bridge_actions& bridge);
    void send_pairs(bridge_actions& bridge);
    // μ-law 8 kHz -> the upstream's PCM rate, through this track's resampler.
    std::span<const std::int16_t> to_pcm(std::span<const std::uint8_t, 160> ulaw,
                                         track_state& track);
    void send_frame(std::span<const std::uint8_t, 160> ulaw, bridge_actions& bridge);
    void update_flow(bridge_actions& bridge);
    void send_control(bridge_actions& bridge);

    audio_format format_;
    audio_flow_options flow_;
    bool started_ = false;
    bool xoff_ = false;
    std::int64_t cleared_end_ms_ = 0; // queued_end_ms() at the app's last clear
    std::string call_sid_;

    // Each track is re-framed to exact 20 ms before it goes out.
    bool two_channels_ = false;
    track_state inbound_;
    track_state outbound_;
    std::vector<std::int16_t> pcm8_;
    std::vector<std::int16_t> pcm_; // l16 from the app
    pcm16le_decoder pcm16le_;       // l16 from the app

    audio_control control_;
    std::string out_;
};

} // namespace callstream::server::bridge
