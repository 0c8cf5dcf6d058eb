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
};

// The one instance, alive for the whole process.
pipeline_stats& stats() noexcept;

} // namespace callstream::pipeline
