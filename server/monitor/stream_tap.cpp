#include "server/monitor/stream_tap.hpp"

#include <algorithm>
#include <cstring>

namespace callstream::server::monitor {
namespace {

std::int64_t unix_ms_now() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// About -36 dBFS: above a quiet line's noise, below any speech.
constexpr std::uint8_t loud_code = 0x30;

} // namespace

void stream_tap::event(std::string_view kind, std::string_view detail) {
    const std::lock_guard lock(mutex_);
    timeline_event e;
    e.seq = next_event_seq_++;
    e.unix_ms = unix_ms_now();
    e.kind = std::string(kind);
    e.detail = std::string(detail.substr(0, 128));
    events_.push_back(std::move(e));
    if (events_.size() > kept_events) {
        events_.pop_front();
    }
}

bool stream_tap::caller_loud() const noexcept {
    return hot_.caller_last_peak.load(std::memory_order_relaxed) >= loud_code;
}

stream_tap::reading stream_tap::take_reading() noexcept {
    reading r;
    r.caller_peak = hot_.caller_peak.exchange(0, std::memory_order_relaxed);
    r.outbound_peak = hot_.outbound_peak.exchange(0, std::memory_order_relaxed);
    r.frames_in = hot_.frames_in.load(std::memory_order_relaxed);
    r.frames_out = hot_.frames_out.load(std::memory_order_relaxed);
    r.frames_dropped = hot_.dropped.load(std::memory_order_relaxed);
    r.listen_dropped = hot_.listen_dropped.load(std::memory_order_relaxed);
    r.listening = hot_.listening.load(std::memory_order_relaxed);
    return r;
}

std::vector<timeline_event> stream_tap::recent_events() const {
    const std::lock_guard lock(mutex_);
    return {events_.begin(), events_.end()};
}

bool stream_tap::attach_listener() {
    const std::lock_guard lock(mutex_);
    if (listener_attached_) {
        return false;
    }
    listener_attached_ = true;
    if (!ring_) {
        ring_ = std::make_unique<ring>();
        hot_.listen_ring = ring_.get();
    }
    ring_->consume_all([](const listen_frame&) {}); // what a previous listener left behind
    hot_.listening.store(true, std::memory_order_release);
    return true;
}

void stream_tap::detach_listener() noexcept {
    const std::lock_guard lock(mutex_);
    hot_.listening.store(false, std::memory_order_relaxed);
    listener_attached_ = false;
}

std::size_t stream_tap::drain(std::span<listen_frame> out) noexcept {
    if (!ring_) {
        return 0;
    }
    return ring_->pop(out.data(), out.size());
}

void stream_tap::push_listen(std::span<const std::uint8_t> ulaw, leg which) noexcept {
    listen_frame f;
    f.leg = static_cast<std::uint8_t>(which);
    f.size = static_cast<std::uint8_t>(std::min(ulaw.size(), listen_frame::max_bytes));
    f.seq = hot_.listen_seq++;
    f.captured_unix_ms = std::chrono::duration<double, std::milli>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    std::memcpy(f.ulaw.data(), ulaw.data(), f.size);
    if (!hot_.listen_ring->push(f)) {
        hot_.listen_dropped.fetch_add(1, std::memory_order_relaxed);
    }
}

} // namespace callstream::server::monitor
