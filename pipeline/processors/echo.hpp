#pragma once
// Sends every caller frame straight back: the reference processor and the benchmark's job.
//
// Frames: the caller's 20 ms frame at 8 kHz (rate_hz() is the default), returned unchanged, so
// the μ-law that comes back is the μ-law that went in (but for 0x7F, see codec/g711.hpp).
// Calling thread: the stream's audio thread; no state, no allocation, nothing can fail.

#include "pipeline/processor.hpp"

namespace callstream::pipeline {

class echo_processor final : public processor {
  public:
    void on_audio(const audio_frame& in, processor_output& out) override { out.send_audio(in); }
};

} // namespace callstream::pipeline
