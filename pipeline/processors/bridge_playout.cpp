#include "pipeline/processors/bridge_playout.hpp"

#include <algorithm>
#include <cstring>

namespace callstream::pipeline {
namespace {

constexpr std::chrono::nanoseconds per_byte{125'000}; // 8 kHz μ-law: 125 µs per byte
constexpr std::chrono::nanoseconds frame_duration{20'000'000};

std::int64_t ms_to_bytes(std::chrono::milliseconds ms) {
    return ms.count() * 8;
}

} // namespace

bool bridge_playout::push_ulaw(std::span<const std::uint8_t> ulaw) {
    const auto n = static_cast<std::int64_t>(ulaw.size());
    if (accepted_ + n - queued_from_ > ms_to_bytes(opts_.max_buffered)) {
        return false;
    }
    while (!ulaw.empty()) {
        const std::size_t take = std::min(ulaw.size(), frame_bytes - partial_len_);
        std::memcpy(partial_.data() + partial_len_, ulaw.data(), take);
        partial_len_ += take;
        accepted_ += static_cast<std::int64_t>(take);
        ulaw = ulaw.subspan(take);
        if (partial_len_ == frame_bytes) {
            complete_partial();
        }
    }
    return true;
}

void bridge_playout::complete_partial() {
    entry e;
    e.pos = accepted_ - static_cast<std::int64_t>(frame_bytes);
    e.ulaw = partial_;
    queue_.push_back(e);
    partial_len_ = 0;
    for (const auto id : marks_after_partial_) {
        entry m;
        m.is_mark = true;
        m.mark_id = id;
        m.pos = accepted_;
        queue_.push_back(m);
    }
    marks_after_partial_.clear();
}

std::uint32_t bridge_playout::push_mark() {
    const std::uint32_t id = ++next_mark_;
    if (partial_len_ > 0) {
        marks_after_partial_.push_back(id); // goes out behind the frame that holds its position
    } else {
        entry m;
        m.is_mark = true;
        m.mark_id = id;
        m.pos = accepted_;
        queue_.push_back(m);
    }
    return id;
}

std::chrono::nanoseconds bridge_playout::backlog(clock::time_point now) const {
    return play_end_ > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(play_end_ - now)
                           : std::chrono::nanoseconds{0};
}

void bridge_playout::release_frame(const entry& e, clock::time_point now, sink& out) {
    released_end_ = e.pos + static_cast<std::int64_t>(frame_bytes);
    queued_from_ = released_end_;
    play_end_ = std::max(play_end_, now) + frame_duration;
    out.on_frame(std::span<const std::uint8_t, frame_bytes>(e.ulaw));
}

bridge_playout::clock::time_point bridge_playout::release(clock::time_point now, sink& out) {
    for (;;) {
        if (!queue_.empty()) {
            const entry& e = queue_.front();
            if (e.is_mark) {
                released_marks_.emplace_back(e.mark_id, e.pos);
                const auto id = e.mark_id;
                queue_.pop_front();
                out.on_mark(id);
                continue;
            }
            // After this frame Twilio would hold at most `lead` of audio.
            if (backlog(now) + frame_duration > opts_.lead) {
                return play_end_ - (opts_.lead - frame_duration);
            }
            const entry frame = e;
            queue_.pop_front();
            release_frame(frame, now, out);
            continue;
        }
        if (partial_len_ == 0) {
            return clock::time_point::max();
        }
        // A partial frame waits for more audio until the caller would otherwise run dry; then
        // it is completed with silence (Twilio wants whole frames, TWILIO.md §2.1).
        if (backlog(now) > frame_duration) {
            return play_end_ - frame_duration;
        }
        std::memset(partial_.data() + partial_len_, ulaw_silence, frame_bytes - partial_len_);
        accepted_ += static_cast<std::int64_t>(frame_bytes - partial_len_);
        partial_len_ = frame_bytes;
        complete_partial();
    }
}

std::vector<std::uint32_t> bridge_playout::clear(clock::time_point now) {
    std::vector<std::uint32_t> dropped;
    for (const auto& e : queue_) {
        if (e.is_mark) {
            dropped.push_back(e.mark_id);
        }
    }
    dropped.insert(dropped.end(), marks_after_partial_.begin(), marks_after_partial_.end());
    const std::int64_t cut = heard_bytes(now);
    queue_.clear();
    marks_after_partial_.clear();
    partial_len_ = 0;
    queued_from_ = accepted_;
    released_end_ = cut;
    heard_floor_ = cut;
    play_end_ = now;
    released_marks_.clear(); // their echoes now say nothing about playout
    return dropped;
}

void bridge_playout::mark_played(std::uint32_t id, clock::time_point now) {
    const auto it = std::find_if(released_marks_.begin(), released_marks_.end(),
                                 [id](const auto& m) { return m.first == id; });
    if (it == released_marks_.end()) {
        return;
    }
    const std::int64_t at = it->second;
    released_marks_.erase(it);
    if (at > released_end_ || at < heard_floor_) {
        return;
    }
    play_end_ = now + (released_end_ - at) * per_byte;
}

std::int64_t bridge_playout::heard_bytes(clock::time_point now) const {
    const std::int64_t behind = backlog(now) / per_byte;
    return std::max(heard_floor_, released_end_ - behind);
}

} // namespace callstream::pipeline
