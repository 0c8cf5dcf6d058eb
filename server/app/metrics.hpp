#pragma once
// Process-wide counters rendered as Prometheus text at GET /metrics.
//
// Counters are relaxed atomics bumped from any thread; HTTP counts (not per frame) sit behind
// a mutex. Rendering takes a consistent-enough snapshot for monitoring, not an atomic one.
// The counters every media frame bumps (frame_counters) are not shared: each network thread
// adds to its own cache-line-aligned shard (metrics::frames()), and a scrape sums the shards, so
// threads never write to a line another thread writes to.

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "server/app/thread_shards.hpp"
#include "server/media/close_reason.hpp"

namespace callstream::server {

// A histogram with fixed microsecond buckets, cheap enough to observe every frame.
class latency_histogram {
  public:
    static constexpr std::array<std::uint64_t, 12> bounds_us{1,   2,   5,   10,   20,   50,
                                                             100, 200, 500, 1000, 5000, 20000};
    void observe(std::uint64_t us) noexcept;
    // Adds this histogram's counts into `into` (a scrape summing shards).
    void add_to(latency_histogram& into) const noexcept;
    std::uint64_t count() const noexcept;
    void render(std::string& out, std::string_view name, std::string_view help) const;

  private:
    std::array<std::atomic<std::uint64_t>, bounds_us.size() + 1> counts_{};
    std::atomic<std::uint64_t> sum_us_{0};
};

// What every media frame counts, one block per network thread (see metrics::frames()).
// Relaxed atomics: the owning thread adds, a scrape on any thread reads.
// frames_in is not kept: every inbound media frame is one frame_processing observation.
struct alignas(64) frame_counters {
    std::atomic<std::uint64_t> messages_in{0};
    std::atomic<std::uint64_t> bytes_in{0};
    std::atomic<std::uint64_t> frames_out{0};
    std::atomic<std::uint64_t> bytes_out{0};
    latency_histogram frame_processing;
};

struct metrics {
    std::atomic<std::int64_t> streams_active{0};
    std::atomic<std::int64_t> connections_active{0};
    std::array<std::atomic<std::uint64_t>, static_cast<std::size_t>(close_reason::count_)>
        streams_closed{};
    std::atomic<std::uint64_t> streams_refused{0};  // over --max-streams
    std::atomic<std::uint64_t> messages_unknown{0}; // unknown events, ignored
    std::atomic<std::uint64_t> frames_dropped_pipeline{
        0};                                               // the pipeline's outbound buffer was full
    std::atomic<std::uint64_t> frames_dropped_cleared{0}; // queued media discarded by a clear
    std::atomic<std::uint64_t> frames_dropped_closing{0}; // queued media abandoned at close
    // A stream's write its socket could not take at once (a slow reader, or a peer gone).
    std::atomic<std::uint64_t> writes_waited{0};
    std::atomic<std::uint64_t> marks_out{0};
    std::atomic<std::uint64_t> clears_out{0};
    std::atomic<std::uint64_t> dtmf_in{0};
    std::atomic<std::uint64_t> signature_failures{0};

    // The calling thread's per-frame counters (server/app/thread_shards.hpp).
    frame_counters& frames() noexcept { return frame_shards_.mine(); }
    // The shards summed: what /metrics shows (and tests read).
    struct frame_totals {
        std::uint64_t messages_in = 0, bytes_in = 0, frames_in = 0, frames_out = 0, bytes_out = 0;
    };
    frame_totals frame_sums() const noexcept;

    void count_close(close_reason r) noexcept;
    void count_http(std::string_view route, unsigned status);
    std::string render_prometheus() const;

  private:
    thread_shards<frame_counters> frame_shards_;
    mutable std::mutex http_mutex_;
    std::map<std::pair<std::string, unsigned>, std::uint64_t> http_requests_;
};

} // namespace callstream::server
