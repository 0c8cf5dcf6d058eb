#pragma once
// Counters that every media frame bumps, one block per thread: each thread adds to a shard of
// its own and a reader sums the shards, so no two network threads write to one cache line (a
// line written by several cores moves between them on every add).
//
// Shard: a struct of relaxed atomics, alignas(64) so that shards never share a line.
// Threading: mine() from any thread; the shard it returns is the calling thread's from then on
// (threads take shards round-robin on first use, per instance; past Count threads two share
// one, still correctly, since every add is atomic, but no longer alone on the line). all() from
// any thread: relaxed reads, a scrape's sum, not an atomic snapshot.
// Ownership: the shards live in this object; a returned reference is valid while it lives.
// Errors: none.

#include <array>
#include <atomic>
#include <cstddef>

namespace callstream::server {

template <typename Shard, std::size_t Count = 16> class thread_shards {
    static_assert(alignof(Shard) >= 64, "a shard must own its cache lines");

  public:
    Shard& mine() noexcept {
        // One cached shard per thread and instantiation; a thread that serves another instance
        // (tests run several servers in one process) takes a shard there.
        struct cached {
            const thread_shards* owner = nullptr;
            Shard* shard = nullptr;
        };
        thread_local cached c;
        if (c.owner != this) {
            c.owner = this;
            c.shard = &shards_[next_.fetch_add(1, std::memory_order_relaxed) % Count];
        }
        return *c.shard;
    }

    const std::array<Shard, Count>& all() const noexcept { return shards_; }

  private:
    std::array<Shard, Count> shards_{};
    std::atomic<std::size_t> next_{0};
};

} // namespace callstream::server
