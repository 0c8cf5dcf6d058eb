#pragma once
// The bridge's counters for GET /metrics (callstream_bridge_*). Relaxed atomics bumped on the
// network threads; the ones every bridged frame bumps sit in a block per network thread
// (bridge_frame_counters, server/app/thread_shards.hpp) that a scrape sums; failures by reason
// sit behind a mutex (they are rare).

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "server/app/thread_shards.hpp"

namespace callstream::server::bridge {

// The OpenAI Realtime error types and codes /metrics names (BRIDGE.md §1.1.3-1.1.4 and the
// codes bridges meet in practice); anything else is "other", so an upstream cannot grow the
// label set.
inline constexpr std::array<std::string_view, 3> upstream_error_types{
    "invalid_request_error", "server_error", "rate_limit_error"};
inline constexpr std::array<std::string_view, 8> upstream_error_codes{
    "response_cancel_not_active",
    "session_expired",
    "rate_limit_exceeded",
    "invalid_value",
    "unknown_parameter",
    "missing_required_parameter",
    "conversation_already_has_active_response",
    "item_truncate_invalid_audio_end_ms"};

// What every bridged frame counts, one block per network thread (bridge_metrics::frames()).
struct alignas(64) bridge_frame_counters {
    std::atomic<std::uint64_t> frames_to_upstream{0};
    std::atomic<std::uint64_t> bytes_to_upstream{0};
    std::atomic<std::uint64_t> frames_from_upstream{0}; // 20 ms frames released to the caller
    std::atomic<std::uint64_t> messages_from_upstream{0};
    std::atomic<std::uint64_t> bytes_from_upstream{0};
};

struct bridge_metrics {
    std::atomic<std::int64_t> active{0};                 // calls with a live bridge
    std::atomic<std::uint64_t> connects{0};              // upstream WebSockets opened
    std::atomic<std::uint64_t> reconnects{0};            // of those, by the reconnect policy
    std::atomic<std::uint64_t> caller_frames_dropped{0}; // over the not-ready buffer
    std::atomic<std::uint64_t> port_dropped{0};
    std::atomic<std::uint64_t> clears{0};
    std::atomic<std::uint64_t> barge_ins{0};
    std::atomic<std::uint64_t> truncations{0};
    std::atomic<std::uint64_t> prewarm_opened{0};
    std::atomic<std::uint64_t> prewarm_adopted{0};
    std::atomic<std::uint64_t> prewarm_expired{0};

    // Connect time (TCP + TLS + WebSocket handshake), ms buckets.
    static constexpr std::array<std::uint64_t, 10> connect_bounds_ms{1,   5,   10,  25,   50,
                                                                     100, 250, 500, 1000, 5000};
    std::array<std::atomic<std::uint64_t>, connect_bounds_ms.size() + 1> connect_ms{};
    std::atomic<std::uint64_t> connect_ms_sum{0};

    // The calling thread's per-frame counters.
    bridge_frame_counters& frames() noexcept { return frame_shards_.mine(); }
    // Their sums over every thread: what /metrics shows.
    struct frame_totals {
        std::uint64_t frames_to_upstream = 0, bytes_to_upstream = 0, frames_from_upstream = 0,
                      messages_from_upstream = 0, bytes_from_upstream = 0;
    };
    frame_totals frame_sums() const noexcept;

    void observe_connect_ms(std::uint64_t ms) noexcept;
    void count_failure(std::string_view reason);
    // An upstream `error` event. The labels come from the upstream, so they are bounded: a type
    // or code outside the documented lists (upstream_error_types/_codes) counts as "other".
    void count_upstream_error(std::string_view type, std::string_view code);
    void render(std::string& out) const; // Prometheus text, appended

  private:
    thread_shards<bridge_frame_counters> frame_shards_;
    mutable std::mutex failures_mutex_;
    std::map<std::string, std::uint64_t, std::less<>> failures_;
    std::map<std::pair<std::string_view, std::string_view>, std::uint64_t> upstream_errors_;
};

} // namespace callstream::server::bridge
