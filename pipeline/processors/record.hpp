#pragma once
// Records a call: <recordings_dir>/<CallSid>_<StreamSid>.wav (8 kHz PCM16 stereo, caller left,
// sent right; on a receive-only stream the inbound track left and the outbound track right,
// placed by their timestamps), .opus (Ogg Opus) and .json (metadata: SIDs, custom parameters,
// start/stop times, DTMF and marks with media timestamps). See
// pipeline/recording/recording_writer.hpp for the disk side.
//
// Calling thread: the stream's audio thread (processor contract). on_audio/on_audio_sent copy
// the frame into an SPSC ring and return: no file I/O, allocation, lock or syscall. on_start
// allocates the session and registers it with the writer (a mutex, once per call). Destroying
// the processor without on_stop (a dropped call) still finalises the files.

#include <atomic>
#include <memory>

#include "pipeline/processor.hpp"
#include "pipeline/recording/recording_writer.hpp"

namespace callstream::pipeline {

class record_processor final : public processor {
  public:
    record_processor(recording_options options, std::shared_ptr<recording_writer> writer);
    ~record_processor() override;

    void on_start(const stream_info& info, processor_output& out) override;
    void on_audio(const audio_frame& in, processor_output& out) override;
    void on_audio_sent(const audio_frame& sent) override;
    void on_outbound_track(const audio_frame& frame) override;
    void on_dtmf(char digit, processor_output& out) override;
    void on_mark(std::string_view name, processor_output& out) override;
    void on_stop(processor_output& out) override;
    // The recording's ring holds recording_session::backlog_items or more: the writer is behind.
    bool backlogged() const noexcept override;

    // The session (null before on_start): its base_path() names the files.
    const std::shared_ptr<recording_session>& session() const noexcept { return session_; }

  private:
    void push_audio(record_item::kind type, const audio_frame& frame) noexcept;

    recording_options options_;
    std::shared_ptr<recording_writer> writer_;
    std::shared_ptr<recording_session> session_;
    // session_.get() published for backlogged(), which another thread may call: session_ is
    // set in on_start on the audio thread and never reset while the processor lives.
    std::atomic<const recording_session*> live_session_{nullptr};
    record_item item_; // scratch: a ring slot is ~400 bytes, keep it off the stack
    std::int64_t last_timestamp_ms_ = 0;
    bool stopped_ = false;
};

} // namespace callstream::pipeline
