#pragma once
// Frames that live only within one call into the pipeline, one set per processing thread
// rather than one per stream.
//
// Why: with hundreds of streams on a thread, 20 ms pass between two frames of one stream and
// every other stream's frames come in between, so a stream's own frame buffers (1.9 KiB each)
// were out of the caches every time a frame touched them. A thread handles one frame at a time,
// so one set per thread serves every stream, and stays in the cache.
//
// Rules: valid only until the call that filled it returns (processors copy what they keep);
// each member has one user, so no two uses of one member are ever live at once on a thread.
// Threading: the calling thread's own (network thread inline, DSP worker otherwise); no locks.
// Frame size: up to max_frame_samples (20 ms at 48 kHz). No allocation after first use.

#include "pipeline/audio_frame.hpp"

namespace callstream::pipeline {

struct scratch_frames {
    audio_frame caller;  // stream_pipeline: the caller's frame decoded at 8 kHz
    audio_frame down;    // stream_pipeline: a processor's output brought back to 8 kHz
    audio_frame sent;    // stream_pipeline: what on_audio_sent sees
    audio_frame track;   // stream_pipeline: the outbound track's frame at 8 kHz
    audio_frame bridged; // bridge_processor: the upstream's frame decoded at 8 kHz
};

// This thread's set.
scratch_frames& thread_scratch_frames() noexcept;

} // namespace callstream::pipeline
