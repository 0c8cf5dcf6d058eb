#pragma once
// Process-wide pipeline counters that /metrics renders. The pipeline cannot see the server's
// metrics (dependencies point server -> pipeline), so processors and DSP workers bump these
// instead and the server reads them when it is scraped.
//
// Any thread; relaxed atomics, so bumping one is a single uncontended add and safe on the DSP
// hot path (no allocation, lock or syscall).

#include <atomic>
#include <cstdint>

namespace callstream::pipeline {

struct pipeline_stats {
    // Bytes the record processor has written to recording files (WAV/Ogg), headers included.
    std::atomic<std::uint64_t> recording_bytes{0};
    // Recordings opened and finished (a finished recording has its final header/page written).
    std::atomic<std::uint64_t> recordings_started{0};
    std::atomic<std::uint64_t> recordings_finished{0};
    // Recorder events (caller or sent frames, digits, marks) dropped because a recording's ring
    // was full even though the stream stops reading while the writer is behind: should stay 0.
    std::atomic<std::uint64_t> recording_items_dropped{0};
    // DSP mode: caller events dropped because a stream's inbound ring was full (the stream
    // stops reading its socket well before that): should stay 0.
    std::atomic<std::uint64_t> inbound_dropped{0};
};

// The one instance, alive for the whole process.
pipeline_stats& stats() noexcept;

} // namespace callstream::pipeline
