#pragma once
// A bounded, lock-free single-producer/single-consumer ring of fixed-size values.
//
// Threading: exactly one producer thread calls the push side (try_push, try_emplace,
// begin_push/commit_push, producer_size) and exactly one consumer thread calls the pop side
// (try_pop, front/pop_front, consume_all, empty). Either side may change thread over time if
// the hand-over itself synchronises (a mutex, a join, a release/acquire pair). size_approx() is
// callable from any thread and is only an estimate.
//
// Capacity is rounded up to a power of two at construction (the only allocation); a full ring
// refuses the push (the caller drops and counts: never block in the audio path).
//
// Why our own ring instead of boost::lockfree::spsc_queue: copying a ~2 KiB audio_frame in and
// out costs the same through both (bench/micro/micro_pipeline.cpp: BM_spsc_ring_push_pop 44 ns,
// BM_boost_spsc_push_pop 44 ns per frame), but Boost has no in-place push, and building the
// value straight in the slot and reading it where it lies (begin_push/commit_push,
// front/pop_front) takes 7 ns (BM_spsc_ring_in_place). Each side also caches the other side's
// index, so the shared cache line is read only when the cached value says the ring looks full
// (producer) or empty (consumer); head and tail live on separate cache lines.
// Indices count up forever (64-bit, no wrap in practice) and are masked on access, so the whole
// capacity is usable and full/empty need no spare slot.

#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace callstream::pipeline {

// std::hardware_destructive_interference_size is 64 on x86-64 but gcc warns when it is used in
// a header (its value may change with -mtune), so we spell out the cache line size.
inline constexpr std::size_t cache_line_bytes = 64;

template <typename T> class spsc_ring {
    static_assert(std::is_nothrow_destructible_v<T>);
    static_assert(std::is_default_constructible_v<T>, "slots are constructed up front");

  public:
    // At least `min_capacity` slots (rounded up to a power of two, minimum 2).
    explicit spsc_ring(std::size_t min_capacity)
        : capacity_(round_up_pow2(min_capacity)), mask_(capacity_ - 1),
          slots_(std::make_unique<T[]>(capacity_)) {}

    spsc_ring(const spsc_ring&) = delete;
    spsc_ring& operator=(const spsc_ring&) = delete;

    std::size_t capacity() const noexcept { return capacity_; }

    // ---- producer side -------------------------------------------------------------------

    // The next free slot to fill in place, or nullptr when the ring is full. The slot holds a
    // stale value from an earlier lap; overwrite what you need, then commit_push().
    T* begin_push() noexcept {
        const std::uint64_t head = head_.value.load(std::memory_order_relaxed);
        if (head - producer_cached_tail_ >= capacity_) {
            producer_cached_tail_ = tail_.value.load(std::memory_order_acquire);
            if (head - producer_cached_tail_ >= capacity_) {
                return nullptr;
            }
        }
        return &slots_[head & mask_];
    }
    // The slot the next push fills (full or not): for prefetching, never for writing.
    const T* next_push_slot() const noexcept {
        return &slots_[head_.value.load(std::memory_order_relaxed) & mask_];
    }
    // Publishes the slot returned by the last successful begin_push().
    void commit_push() noexcept {
        head_.value.store(head_.value.load(std::memory_order_relaxed) + 1,
                          std::memory_order_release);
    }

    bool try_push(const T& value) noexcept(std::is_nothrow_copy_assignable_v<T>) {
        T* slot = begin_push();
        if (slot == nullptr) {
            return false;
        }
        *slot = value;
        commit_push();
        return true;
    }
    // Fills the slot with `fill(T&)` in place; false (and `fill` not called) when full.
    template <typename Fill> bool try_push_with(Fill&& fill) {
        T* slot = begin_push();
        if (slot == nullptr) {
            return false;
        }
        std::forward<Fill>(fill)(*slot);
        commit_push();
        return true;
    }
    // Occupancy as the producer sees it: exact or an over-estimate (the consumer may have freed
    // more since), so "room for n more" decisions based on it are always safe.
    std::size_t producer_size() noexcept {
        producer_cached_tail_ = tail_.value.load(std::memory_order_acquire);
        return static_cast<std::size_t>(head_.value.load(std::memory_order_relaxed) -
                                        producer_cached_tail_);
    }

    // ---- consumer side -------------------------------------------------------------------

    // The oldest value, or nullptr when empty. Valid until pop_front().
    T* front() noexcept {
        const std::uint64_t tail = tail_.value.load(std::memory_order_relaxed);
        if (tail == consumer_cached_head_) {
            consumer_cached_head_ = head_.value.load(std::memory_order_acquire);
            if (tail == consumer_cached_head_) {
                return nullptr;
            }
        }
        return &slots_[tail & mask_];
    }
    // Releases the slot returned by the last successful front().
    void pop_front() noexcept {
        tail_.value.store(tail_.value.load(std::memory_order_relaxed) + 1,
                          std::memory_order_release);
    }

    bool try_pop(T& out) noexcept(std::is_nothrow_move_assignable_v<T>) {
        T* slot = front();
        if (slot == nullptr) {
            return false;
        }
        out = std::move(*slot);
        pop_front();
        return true;
    }
    // Calls `consume(T&)` on every value present now, in order; returns how many.
    template <typename Consume> std::size_t consume_all(Consume&& consume) {
        std::size_t n = 0;
        for (T* slot = front(); slot != nullptr; slot = front()) {
            consume(*slot);
            pop_front();
            ++n;
        }
        return n;
    }
    bool empty() noexcept { return front() == nullptr; }

    // ---- any thread ----------------------------------------------------------------------

    // Occupancy estimate for metrics: may be stale by the time it returns.
    std::size_t size_approx() const noexcept {
        const std::uint64_t tail = tail_.value.load(std::memory_order_acquire);
        const std::uint64_t head = head_.value.load(std::memory_order_acquire);
        return head >= tail ? static_cast<std::size_t>(head - tail) : 0;
    }

  private:
    static std::size_t round_up_pow2(std::size_t n) noexcept {
        std::size_t c = 2;
        while (c < n) {
            c <<= 1;
        }
        return c;
    }

    // Each index sits alone on its cache line; the side that writes it also keeps its cached
    // copy of the other index on its own line.
    struct alignas(cache_line_bytes) index {
        std::atomic<std::uint64_t> value{0};
    };

    const std::size_t capacity_;
    const std::size_t mask_;
    const std::unique_ptr<T[]> slots_;
    index head_;                                                       // written by the producer
    index tail_;                                                       // written by the consumer
    alignas(cache_line_bytes) std::uint64_t producer_cached_tail_ = 0; // producer-only
    alignas(cache_line_bytes) std::uint64_t consumer_cached_head_ = 0; // consumer-only
};

} // namespace callstream::pipeline
