#pragma once
// Plays prompts into the call, with barge-in.
//
// Prompts: the `play` custom parameter (comma list of prompt names inside prompts_dir, or
// tone:<hz>:<ms>) is loaded in on_start; more come from the server through play_control (see
// pipeline/playback/play_control.hpp). Audio goes out as whole 20 ms frames (160 samples at 8 kHz,
// the last one padded with silence), up to lead_ms ahead of the caller's media clock: Twilio
// buffers it and plays it in real time, and a clear drops what is buffered. After each prompt a
// mark `play:<generation>:<index>` follows; its echo means the prompt was heard.
//
// Barge-in: while a prompt is playing (audio still to send, or a mark of the current generation
// not yet echoed), a speech onset from the voice detector, or DTMF '#' or '*', stops the prompt
// in the same on_audio/on_dtmf call: `clear` is sent, the queue is dropped and the generation
// is bumped. Twilio then echoes every pending mark (TWILIO.md §2.4); those carry the old
// generation and are counted as ignored, never as played.
//
// Calling thread: the stream's audio thread. on_start loads files and allocates; on_audio,
// on_dtmf and on_mark do not allocate, lock or make syscalls (finished prompt batches go back to
// play_control to be freed elsewhere). A prompt that fails to load in on_start is reported by
// start_error() and nothing plays.
// Ownership: the processor and the server share the play_control (shared_ptr); prompts are
// owned by prompt batches that travel through it (see play_control.hpp).

#include <array>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "pipeline/playback/play_control.hpp"
#include "pipeline/processor.hpp"
#include "pipeline/voice_detector.hpp"

namespace callstream::pipeline {

struct play_options {
    std::filesystem::path prompts_dir = "prompts";
    int lead_ms = 1000; // how far ahead of the caller's media clock we send
    // Barge-in detector: "energy" (the default: no false triggers in noise, see
    // docs/processors.md), "webrtc", "webrtc+energy" or "none".
    std::string vad = "energy";
    bool barge_in = true; // speech onset or DTMF '#'/'*' cuts the prompt
};

struct play_stats {
    std::uint32_t generation = 0;
    std::uint64_t frames_sent = 0;
    std::uint64_t marks_sent = 0;
    std::uint64_t marks_played = 0;  // echoes of the current generation
    std::uint64_t marks_ignored = 0; // echoes from cleared generations
    std::uint64_t barge_ins = 0;     // clears caused by speech or DTMF
    std::uint64_t clears = 0;        // all clears sent (barge-ins and play_control::clear)
    std::int64_t last_clear_ms = -1; // caller media time of the last clear
};

class play_processor final : public processor {
  public:
    play_processor(play_options options, std::shared_ptr<play_control> control);
    ~play_processor() override;

    void on_start(const stream_info& info, processor_output& out) override;
    void on_audio(const audio_frame& in, processor_output& out) override;
    void on_dtmf(char digit, processor_output& out) override;
    void on_mark(std::string_view name, processor_output& out) override;
    void on_stop(processor_output& out) override;

    // A prompt is queued, being sent, or sent but not yet confirmed by its mark.
    bool playing() const noexcept { return queued_ > 0 || pending_marks_ > 0; }
    const play_stats& stats() const noexcept { return stats_; }
    const std::string& start_error() const noexcept { return start_error_; }
    const std::shared_ptr<play_control>& control() const noexcept { return control_; }

  private:
    static constexpr std::size_t max_batches = play_control::max_live_batches;

    void enqueue(prompt_batch* batch) noexcept;
    void pump(std::int64_t now_ms, processor_output& out) noexcept;
    void stop_playback(processor_output& out, bool barge_in) noexcept;
    void retire_front() noexcept;

    play_options options_;
    std::shared_ptr<play_control> control_;
    std::unique_ptr<voice_detector> vad_;
    std::array<prompt_batch*, max_batches> batches_{}; // ring of queued batches
    std::size_t head_ = 0;
    std::size_t queued_ = 0;
    std::size_t prompt_index_ = 0; // within the head batch
    std::size_t sample_pos_ = 0;   // within that prompt
    std::uint32_t mark_index_ = 0; // prompts finished in this generation
    std::uint32_t pending_marks_ = 0;
    std::int64_t queued_end_ms_ = 0; // caller media time at which what we sent ends
    std::int64_t now_ms_ = 0;
    bool speech_ = false;
    audio_frame frame_;
    play_stats stats_;
    std::string start_error_;
};

} // namespace callstream::pipeline
