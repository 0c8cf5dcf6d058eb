#pragma once
// Sends every caller frame straight back: the reference processor and the benchmark's job.

#include "pipeline/processor.hpp"

namespace callstream::pipeline {

class echo_processor final : public processor {
  public:
    void on_audio(const audio_frame& in, processor_output& out) override { out.send_audio(in); }
};

} // namespace callstream::pipeline
