#pragma once
// Pacing of a bridged call's upstream audio: cuts audio of any length into exact 20 ms μ-law
// frames and releases them to Twilio at real time plus a lead, keeps marks behind the audio they
// follow, and knows how much of it the caller has heard.
//
// Model: Twilio plays what it receives in order, at real time (TWILIO.md §2.1-2.3). So after
// callstream hands it a frame, Twilio's backlog is (time its playout will end - now); frames
// are released while that backlog is under the lead, and what the caller has heard is the
// released audio minus that backlog. Each echo of one of our marks tells exactly where Twilio's
// playout is at that moment and resynchronises the model, so an estimate never drifts further
// than between two marks; nothing is derived from wall-clock time since a response started.
//
// Positions are bytes of 8 kHz μ-law (8 per ms) on the playout timeline: everything accepted by
// push_ulaw() since the call began, including audio a clear later dropped.
//
// Calling thread: one thread (the call's bridge thread); time is passed in, so tests drive it
// without sleeping. Not real-time safe (the queue allocates); it never blocks or logs.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "pipeline/audio_frame.hpp"

namespace callstream::pipeline {

class bridge_playout {
  public:
    using clock = std::chrono::steady_clock;
    static constexpr std::size_t frame_bytes = telephony_frame_samples; // 20 ms of μ-law
    static constexpr std::uint8_t ulaw_silence = 0xFF;

    struct options {
        std::chrono::milliseconds lead{80};             // released ahead of what was heard
        std::chrono::milliseconds max_buffered{120000}; // accepted but not yet released
    };

    // Where released frames and marks go, in order.
    class sink {
      public:
        virtual void on_frame(std::span<const std::uint8_t, frame_bytes> ulaw) = 0;
        virtual void on_mark(std::uint32_t id) = 0;

      protected:
        ~sink() = default;
    };

    explicit bridge_playout(options opts) : opts_(opts) {}

    // Accepts audio; false (nothing accepted) when it would put more than max_buffered ahead
    // of what was released: audio faster than real time beyond the bound.
    bool push_ulaw(std::span<const std::uint8_t> ulaw);
    // A mark behind everything accepted so far; it goes out right after the frame that holds
    // its position. Returns the id that release() hands to the sink.
    std::uint32_t push_mark();

    // Releases what is due at `now`; returns when the next frame falls due (clock::time_point::
    // max() when nothing waits).
    clock::time_point release(clock::time_point now, sink& out);

    // Drops everything not yet released; returns the ids of marks that never went out. Twilio
    // gets a clear from the caller, which drops what it buffered: the heard position stops at
    // heard_bytes(now) for good.
    std::vector<std::uint32_t> clear(clock::time_point now);

    // Twilio echoed released mark `id`: playout is exactly at the mark's position now. Unknown
    // ids (and marks echoed because of a clear, which clear() forgot) change nothing.
    void mark_played(std::uint32_t id, clock::time_point now);

    std::int64_t heard_bytes(clock::time_point now) const;
    std::int64_t sent_bytes() const noexcept { return released_end_; }
    std::int64_t accepted_bytes() const noexcept { return accepted_; }
    // Accepted audio not yet released, in bytes.
    std::int64_t buffered_bytes() const noexcept { return accepted_ - queued_from_; }
    bool idle() const noexcept { return queue_.empty() && partial_len_ == 0; }

    static constexpr std::int64_t bytes_to_ms(std::int64_t bytes) { return bytes / 8; }

  private:
    struct entry {
        bool is_mark = false;
        std::uint32_t mark_id = 0;
        std::int64_t pos = 0; // frame: start position; mark: position it follows
        std::array<std::uint8_t, frame_bytes> ulaw{};
    };
    // A FIFO on a vector: pop_front moves an index, and the storage is reused once the queue
    // empties (or compacted once half of it has been popped), so steady playout allocates
    // nothing and keeps reusing the same memory (std::deque allocated and freed a 512-byte block
    // every two frames).
    class entry_fifo {
      public:
        bool empty() const noexcept { return head_ == items_.size(); }
        const entry& front() const noexcept { return items_[head_]; }
        void push_back(const entry& e) {
            if (head_ > 0 && head_ * 2 >= items_.size()) {
                items_.erase(items_.begin(), items_.begin() + static_cast<std::ptrdiff_t>(head_));
                head_ = 0;
            }
            items_.push_back(e);
        }
        void pop_front() noexcept {
            if (++head_ == items_.size()) {
                clear();
            }
        }
        void clear() noexcept {
            items_.clear();
            head_ = 0;
        }
        auto begin() const noexcept { return items_.begin() + static_cast<std::ptrdiff_t>(head_); }
        auto end() const noexcept { return items_.end(); }

      private:
        std::vector<entry> items_;
        std::size_t head_ = 0;
    };

    std::chrono::nanoseconds backlog(clock::time_point now) const;
    void release_frame(const entry& e, clock::time_point now, sink& out);
    void complete_partial();

    options opts_;
    entry_fifo queue_;
    std::array<std::uint8_t, frame_bytes> partial_{};
    std::size_t partial_len_ = 0;
    std::vector<std::uint32_t> marks_after_partial_;
    std::int64_t accepted_ = 0;    // timeline end of accepted audio (incl. the partial frame)
    std::int64_t queued_from_ = 0; // timeline start of what is not yet released
    std::int64_t released_end_ = 0;
    std::int64_t heard_floor_ = 0; // after a clear, heard never goes back below the cut
    clock::time_point play_end_{}; // when Twilio finishes what was released
    std::uint32_t next_mark_ = 0;
    // Released marks awaiting an echo: id -> position (a small vector: few are in flight).
    std::vector<std::pair<std::uint32_t, std::int64_t>> released_marks_;
};

} // namespace callstream::pipeline
