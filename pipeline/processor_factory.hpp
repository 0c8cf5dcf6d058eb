#pragma once
// Builds a call's processor chain from a comma-separated list of names ("echo", "record,play").
//
// Called on the network thread when a stream starts. Unknown names are an error naming the
// offending entry, so a typo in a TwiML <Parameter name="app"> is refused rather than ignored.
// Ownership: the result owns the new processors (moved into a stream_pipeline); the recording
// writer and the play_control are shared (shared_ptr). Nothing throws; errors are text.

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "pipeline/playback/play_control.hpp"
#include "pipeline/processors/bridge.hpp"
#include "pipeline/processors/play.hpp"
#include "pipeline/recording/recording_writer.hpp"
#include "pipeline/resampler.hpp"
#include "pipeline/stream_pipeline.hpp"

namespace callstream::pipeline {

struct processor_config {
    std::string default_app = "echo";
    // record: <recordings_dir>/<CallSid>_<StreamSid>.{wav,opus,json}. `recording.dir` is
    // ignored; recordings_dir wins. A null writer means the process-wide
    // recording_writer::shared().
    std::filesystem::path recordings_dir = "recordings";
    recording_options recording;
    std::shared_ptr<recording_writer> writer;

    // play: prompt files live in play.prompts_dir ("prompts"); see pipeline/processors/play.hpp.
    play_options play;
};

struct processor_chain_result {
    stream_pipeline::processor_chain chain;
    // Non-null when the chain has "play": the mailbox for POST /streams/{sid}/play and /clear
    // (pipeline/playback/play_control.hpp). The server keeps it with the stream, keyed by
    // streamSid.
    std::shared_ptr<pipeline::play_control> play_control;
    // Non-null when the chain has "bridge": where the server-side bridge delivers the
    // upstream's paced audio (pipeline/processors/bridge.hpp).
    std::shared_ptr<pipeline::bridge_port> bridge_port;
    std::string error; // empty on success
};

processor_chain_result make_processor_chain(std::string_view app_list,
                                            const processor_config& config);

} // namespace callstream::pipeline
