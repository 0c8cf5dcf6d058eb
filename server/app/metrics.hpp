#pragma once
// Process-wide counters rendered as Prometheus text at GET /metrics.
//
// Counters are relaxed atomics bumped from any thread; HTTP counts (not per frame) sit behind
// a mutex. Rendering takes a consistent-enough snapshot for monitoring, not an atomic one.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "server/media/close_reason.hpp"

namespace callstream::server {

// A histogram with fixed microsecond buckets, cheap enough to observe every frame.
class latency_histogram {
  public:
    static constexpr std::array<std::uint64_t, 12> bounds_us{1,   2,   5,   10,   20,   50,
                                                             100, 200, 500, 1000, 5000, 20000};
    void observe(std::uint64_t us) noexcept;
    void render(std::string& out, std::string_view name, std::string_view help) const;

  private:
    std::array<std::atomic<std::uint64_t>, bounds_us.size() + 1> counts_{};
    std::atomic<std::uint64_t> sum_us_{0};
};

struct metrics {
    std::atomic<std::int64_t> streams_active{0};
    std::atomic<std::int64_t> connections_active{0};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(close_reason::count_)>
        streams_closed{};
    std::atomic<std::uint64_t> streams_refused{0}; // over --max-streams
    std::atomic<std::uint64_t> messages_in{0};
    std::atomic<std::uint64_t> messages_unknown{0}; // unknown events, ignored
    std::atomic<std::uint64_t> frames_in{0};
    std::atomic<std::uint64_t> frames_out{0};
    std::atomic<std::uint64_t> frames_dropped_pipeline{
        0};                                               // the pipeline's outbound buffer was full
    std::atomic<std::uint64_t> frames_dropped_cleared{0}; // queued media discarded by a clear
    std::atomic<std::uint64_t> frames_dropped_closing{0}; // queued media abandoned at close
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> bytes_out{0};
    std::atomic<std::uint64_t> marks_out{0};
    std::atomic<std::uint64_t> clears_out{0};
    std::atomic<std::uint64_t> dtmf_in{0};
    std::atomic<std::uint64_t> signature_failures{0};
    latency_histogram frame_processing;

    void count_close(close_reason r) noexcept;
    void count_http(std::string_view route, unsigned status);
    std::string render_prometheus() const;

  private:
    mutable std::mutex http_mutex_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> http_requests_;
};

} // namespace callstream::server
