#pragma once
// What the live monitor sees of one media stream: per-leg peak levels and frame counters the
// stream writes per 20 ms frame, a short timeline of rare events (DTMF, marks, clears), and,
// only while someone listens in, a lock-free ring of the μ-law frames of both legs.
//
// Frames: 20 ms of 8 kHz μ-law (160 bytes; shorter frames are taken as they come).
// Threading: the stream's network thread is the only writer (caller_frame, outbound_frame,
// set_frames_dropped, event). The hub's timer (any thread) reads levels and events; the one
// listener (its own network thread) drains the ring. Per frame the writer does a 160-byte max
// scan and a few relaxed stores in one cache line: no lock, allocation, syscall or JSON. While
// a listener is attached it also pushes the frame into the ring (one copy, no lock).
// Ownership: shared by the stream (which creates it at start), the hub's registry and a
// listener; the ring, once made, lives as long as the tap.
// Errors: a full ring drops the frame and counts it (listen_dropped); nothing throws per frame.

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <boost/lockfree/spsc_queue.hpp>

namespace callstream::server::monitor {

enum class leg : std::uint8_t { caller = 0, outbound = 1 };

// The loudest sample of a μ-law frame as its 7-bit magnitude code (0 silence .. 127 full
// scale). μ-law bytes are the one's complement of sign|exponent|mantissa, so the magnitude is
// monotonic in (~byte & 0x7f): a max over bytes, with no decoding (the compiler vectorises it).
inline std::uint8_t ulaw_peak_code(std::span<const std::uint8_t> ulaw) noexcept {
    std::uint8_t peak = 0;
    for (const std::uint8_t b : ulaw) {
        const auto code = static_cast<std::uint8_t>(~b & 0x7f);
        peak = code > peak ? code : peak;
    }
    return peak;
}

// One frame of one leg for a listener, stamped when the stream handled it.
struct listen_frame {
    static constexpr std::size_t max_bytes = 160;
    std::uint8_t leg = 0;
    std::uint8_t size = 0;
    std::uint32_t seq = 0;       // per tap, both legs, in the order the stream saw them
    double captured_unix_ms = 0; // system clock, for the page's latency figure
    std::array<std::uint8_t, max_bytes> ulaw{};
};

// A rare event for the page's timeline.
struct timeline_event {
    std::uint64_t seq = 0;
    std::int64_t unix_ms = 0;
    std::string kind;   // dtmf, mark, clear, barge-in
    std::string detail; // the digit, the mark's name, ...
};

// Fixed when the stream starts.
struct call_facts {
    std::string call_sid;
    std::string stream_sid;
    std::string from;
    std::string to;
    std::string app; // the processor chain, e.g. "echo" or "record,play"
    bool receive_only = false;
    bool bridged = false;
    std::chrono::system_clock::time_point started = std::chrono::system_clock::now();
};

class stream_tap {
  public:
    static constexpr std::size_t ring_frames = 128; // 1.28 s of both legs
    static constexpr std::size_t kept_events = 32;

    explicit stream_tap(call_facts facts) : facts_(std::move(facts)) {}

    const call_facts& facts() const noexcept { return facts_; }

    // Stream's network thread, once per caller frame / per frame sent to the caller.
    void caller_frame(std::span<const std::uint8_t> ulaw) noexcept {
        note(hot_.caller_peak, hot_.frames_in, ulaw, leg::caller);
    }
    void outbound_frame(std::span<const std::uint8_t> ulaw) noexcept {
        note(hot_.outbound_peak, hot_.frames_out, ulaw, leg::outbound);
    }
    // The stream's running total of dropped frames (pipeline and clears); only when it changes.
    void set_frames_dropped(std::uint64_t total) noexcept {
        hot_.dropped.store(total, std::memory_order_relaxed);
    }
    // Stream's network thread, for rare events (never per frame). Takes a short lock.
    void event(std::string_view kind, std::string_view detail);
    // True while the caller's last frames were loud (the page's "speaking" and barge-in label).
    bool caller_loud() const noexcept;

    // What the hub's timer reads: the peaks since its previous read (then reset) and totals.
    struct reading {
        std::uint8_t caller_peak = 0;
        std::uint8_t outbound_peak = 0;
        std::uint64_t frames_in = 0;
        std::uint64_t frames_out = 0;
        std::uint64_t frames_dropped = 0;
        std::uint64_t listen_dropped = 0;
        bool listening = false;
    };
    // Any thread. A frame racing with the reset may count in the next reading instead (a
    // meter's tolerance; the writer never waits).
    reading take_reading() noexcept;
    std::vector<timeline_event> recent_events() const;

    // The listener side (one at a time). attach: false when someone already listens.
    bool attach_listener();
    void detach_listener() noexcept;
    // Listener's thread: pops up to `out.size()` frames; returns how many.
    std::size_t drain(std::span<listen_frame> out) noexcept;

  private:
    using ring = boost::lockfree::spsc_queue<listen_frame, boost::lockfree::capacity<ring_frames>>;

    void note(std::atomic<std::uint8_t>& peak, std::atomic<std::uint64_t>& frames,
              std::span<const std::uint8_t> ulaw, leg which) noexcept {
        const std::uint8_t p = ulaw_peak_code(ulaw);
        // Single writer: load+store, not a locked read-modify-write.
        if (p > peak.load(std::memory_order_relaxed)) {
            peak.store(p, std::memory_order_relaxed);
        }
        frames.store(frames.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
        if (which == leg::caller) {
            hot_.caller_last_peak.store(p, std::memory_order_relaxed);
        }
        if (hot_.listening.load(std::memory_order_acquire)) {
            push_listen(ulaw, which);
        }
    }
    void push_listen(std::span<const std::uint8_t> ulaw, leg which) noexcept;

    // Everything the per-frame path touches, in one cache line of its own.
    struct alignas(64) hot_fields {
        std::atomic<std::uint8_t> caller_peak{0};
        std::atomic<std::uint8_t> outbound_peak{0};
        std::atomic<std::uint8_t> caller_last_peak{0};
        std::atomic<bool> listening{false};
        std::uint32_t listen_seq = 0; // writer-only
        std::atomic<std::uint64_t> frames_in{0};
        std::atomic<std::uint64_t> frames_out{0};
        std::atomic<std::uint64_t> dropped{0};
        std::atomic<std::uint64_t> listen_dropped{0};
        ring* listen_ring = nullptr; // set before `listening` turns true (release), never reset
    };
    hot_fields hot_;

    const call_facts facts_;
    mutable std::mutex mutex_; // events_, listener_attached_, making the ring
    std::deque<timeline_event> events_;
    std::uint64_t next_event_seq_ = 1;
    bool listener_attached_ = false;
    std::unique_ptr<ring> ring_;
};

} // namespace callstream::server::monitor
