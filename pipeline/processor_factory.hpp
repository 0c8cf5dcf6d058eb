#pragma once
// Builds a call's processor chain from a comma-separated list of names ("echo", "record,play").
//
// Called on the network thread when a stream starts. Unknown names are an error naming the
// offending entry, so a typo in a TwiML <Parameter name="app"> is refused rather than ignored.

#include <string>
#include <string_view>

#include "pipeline/resampler.hpp"
#include "pipeline/stream_pipeline.hpp"

namespace callstream::pipeline {

struct processor_config {
    std::string default_app = "echo";
    // Resampler for processors that do not run at 8 kHz (--resampler): "speex:0..10" or
    // "libsamplerate:sinc-best|sinc-medium|sinc-fastest|zero-order-hold|linear". Check it at
    // startup with parse_resampler_spec() (pipeline/resampler.hpp) and refuse to start on error.
    std::string resampler = std::string(default_resampler_spec);
};

struct processor_chain_result {
    stream_pipeline::processor_chain chain;
    std::string error; // empty on success
};

processor_chain_result make_processor_chain(std::string_view app_list,
                                            const processor_config& config);

} // namespace callstream::pipeline
