#pragma once
// The cache lines a stream's next frame will touch, prefetched while the kernel copies the frame
// in (server/app/drained_read.hpp issues them just before the recv).
//
// Why: with hundreds of streams on a network thread, 20 ms pass between two frames of one
// stream, and in that time the thread touches every other stream's state: each object a frame
// reaches (the socket's session, its protocol handler, the pipeline, a processor, the strings
// it writes into) is out of the caches again, and the handler stalls on each miss in turn, one
// pointer after another. Measured at 400 echoed streams, those stalls were most of callstream's
// user-space time per frame. Issued together before the recv, the misses overlap each other and
// the system call instead.
//
// Layout: a fixed part (lines that stay where they are for the stream's life: objects, buffers)
// and a per-frame part after it (lines that move, like the next slot of a ring), dropped and
// added again after each frame. Adding past the capacity is ignored: a missing prefetch costs
// only the miss it would have hidden.
//
// Threading: one stream's network thread (or worker) writes and prefetches; no locks.
// Units: addresses; each add() covers every 64-byte line of [p, p + bytes). No allocation.

#include <array>
#include <cstddef>
#include <cstdint>

namespace callstream::pipeline {

class warm_lines {
  public:
    static constexpr std::size_t capacity = 64;
    static constexpr std::size_t line_bytes = 64;

    // Every line of [p, p + bytes) (at least the line holding p).
    void add(const void* p, std::size_t bytes = 1) noexcept {
        if (p == nullptr) {
            return;
        }
        auto at = reinterpret_cast<std::uintptr_t>(p) & ~(line_bytes - 1);
        const auto end = reinterpret_cast<std::uintptr_t>(p) + (bytes == 0 ? 1 : bytes);
        for (; at < end && count_ < capacity; at += line_bytes) {
            lines_[count_++] = reinterpret_cast<const void*>(at);
        }
    }
    // Every line of [from, to): the members of an object from one to (not including) another.
    void add_range(const void* from, const void* to) noexcept {
        add(from, static_cast<std::size_t>(static_cast<const char*>(to) -
                                           static_cast<const char*>(from)));
    }
    // What was added so far stays across drop_per_frame().
    void keep() noexcept { fixed_ = count_; }
    void drop_per_frame() noexcept { count_ = fixed_; }
    void clear() noexcept { count_ = fixed_ = 0; }
    std::size_t size() const noexcept { return count_; }
    const void* line(std::size_t i) const noexcept { return lines_[i]; } // i < size()

    void prefetch() const noexcept {
        for (std::size_t i = 0; i < count_; ++i) {
            __builtin_prefetch(lines_[i], 1, 3); // for writing: most of them are written
        }
    }

  private:
    std::array<const void*, capacity> lines_{};
    std::uint8_t count_ = 0;
    std::uint8_t fixed_ = 0;
};

} // namespace callstream::pipeline
