#pragma once
// Voice activity detection on the caller's audio, for barge-in.
//
// Frames: mono PCM16 at 8 or 16 kHz, any multiple of 10 ms up to 20 ms (one transport frame).
// Calling thread: the stream's audio thread; one detector per stream, not shared. process() does
// not allocate, lock or make syscalls. Construction allocates (WebRTC APM) and may fail: the
// factory returns null then.
//
// Two implementations behind one interface:
//   - webrtc: WebRTC APM's VoiceDetection (the GMM VAD of webrtc-audio-processing 0.3) on 10 ms
//     frames, voiced when `onset_frames` consecutive 10 ms frames say so;
//   - energy: frame energy against an adaptive noise floor with a hangover.
// docs/processors.md has the evaluation (delay, misses, false triggers) that picked the default.
// Ownership: the caller owns the detector (unique_ptr); process() keeps no view of its input.

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

namespace callstream::pipeline {

class voice_detector {
  public:
    virtual ~voice_detector() = default;
    // Feeds one frame; returns true while the detector considers speech present. A false->true
    // transition is a speech onset.
    virtual bool process(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) noexcept = 0;
    virtual void reset() noexcept = 0;
};

struct webrtc_vad_options {
    // webrtc::VoiceDetection::Likelihood: 0 very low .. 3 high (higher detects more, incl. noise).
    // 0 with an 80 ms hangover was the best WebRTC setting in our evaluation.
    int likelihood = 0;
    // Consecutive voiced 10 ms frames before we call it speech (debounces clicks and noise).
    int onset_frames = 2;
    // 10 ms unvoiced frames before speech is over. Short, because in noise WebRTC flickers
    // and a long hangover bridges the flicker into one endless "speech" with no new onset.
    int hangover_frames = 8;
};

struct energy_vad_options {
    double threshold_db = 12.0;       // above the noise floor
    double min_level_dbfs = -45.0;    // never voiced below this level
    int onset_frames = 2;             // consecutive 10 ms frames above threshold
    int hangover_frames = 20;         // 10 ms frames below threshold before speech ends
    double floor_rise_db_per_s = 3.0; // how fast the noise floor follows a louder background
};

std::unique_ptr<voice_detector> make_webrtc_voice_detector(const webrtc_vad_options& options = {});
std::unique_ptr<voice_detector> make_energy_voice_detector(const energy_vad_options& options = {});
// Voiced only when both agree on a 10 ms frame; debounced with the webrtc options.
std::unique_ptr<voice_detector> make_combined_voice_detector(const webrtc_vad_options& webrtc = {},
                                                             const energy_vad_options& energy = {});

// "webrtc", "energy", "webrtc+energy"; null for an unknown name or a detector that failed to
// initialise.
std::unique_ptr<voice_detector> make_voice_detector(std::string_view kind);

} // namespace callstream::pipeline
