#include <cstdint>
#include <thread>

#include <gtest/gtest.h>

#include "pipeline/audio_frame.hpp"
#include "pipeline/spsc_ring.hpp"

namespace callstream::pipeline {
namespace {

TEST(spsc_ring, capacity_rounds_up_to_a_power_of_two_and_all_of_it_is_usable) {
    spsc_ring<int> ring(5);
    ASSERT_EQ(ring.capacity(), 8U);
    for (int i = 0; i < 8; ++i) {
        EXPECT_TRUE(ring.try_push(i));
    }
    EXPECT_FALSE(ring.try_push(99)) << "a full ring refuses, it does not overwrite";
    EXPECT_EQ(ring.size_approx(), 8U);
    int v = -1;
    for (int i = 0; i < 8; ++i) {
        ASSERT_TRUE(ring.try_pop(v));
        EXPECT_EQ(v, i);
    }
    EXPECT_FALSE(ring.try_pop(v));
    EXPECT_TRUE(ring.empty());
}

TEST(spsc_ring, wraps_around_many_laps_in_order) {
    spsc_ring<std::uint32_t> ring(4);
    std::uint32_t next_in = 0;
    std::uint32_t next_out = 0;
    for (int lap = 0; lap < 1000; ++lap) {
        // Alternate partial fills so head and tail cross the wrap point at every offset.
        const int fill = 1 + lap % 4;
        for (int i = 0; i < fill; ++i) {
            ASSERT_TRUE(ring.try_push(next_in++));
        }
        std::uint32_t v = 0;
        for (int i = 0; i < fill; ++i) {
            ASSERT_TRUE(ring.try_pop(v));
            ASSERT_EQ(v, next_out++);
        }
    }
}

TEST(spsc_ring, in_place_push_and_pop_see_the_same_slot) {
    spsc_ring<audio_frame> ring(2);
    audio_frame* slot = ring.begin_push();
    ASSERT_NE(slot, nullptr);
    slot->count = 3;
    slot->samples[2] = 1234;
    slot->timestamp_ms = 40;
    EXPECT_EQ(ring.front(), nullptr) << "not visible before commit";
    ring.commit_push();
    audio_frame* got = ring.front();
    ASSERT_NE(got, nullptr);
    EXPECT_EQ(got->count, 3);
    EXPECT_EQ(got->samples[2], 1234);
    EXPECT_EQ(got->timestamp_ms, 40);
    ring.pop_front();
    EXPECT_EQ(ring.front(), nullptr);

    EXPECT_TRUE(ring.try_push_with([](audio_frame& f) { f.count = 7; }));
    EXPECT_TRUE(ring.try_push_with([](audio_frame& f) { f.count = 8; }));
    bool called = false;
    EXPECT_FALSE(ring.try_push_with([&](audio_frame&) { called = true; }));
    EXPECT_FALSE(called);
    std::uint16_t sum = 0;
    EXPECT_EQ(
        ring.consume_all([&](audio_frame& f) { sum = static_cast<std::uint16_t>(sum + f.count); }),
        2U);
    EXPECT_EQ(sum, 15);
}

TEST(spsc_ring, producer_size_never_underestimates) {
    spsc_ring<int> ring(8);
    EXPECT_EQ(ring.producer_size(), 0U);
    ring.try_push(1);
    ring.try_push(2);
    EXPECT_EQ(ring.producer_size(), 2U);
    int v = 0;
    ring.try_pop(v);
    EXPECT_EQ(ring.producer_size(), 1U);
}

// Two threads, millions of items through a small ring: every item arrives once, in order.
// Runs under ThreadSanitizer in scripts/test, which checks the memory ordering too.
TEST(spsc_ring, two_thread_stress_keeps_order_and_loses_nothing) {
#if defined(__SANITIZE_THREAD__)
    constexpr std::uint64_t items = 1'000'000; // TSan is ~10x slower; still a million handoffs
#else
    constexpr std::uint64_t items = 4'000'000;
#endif
    struct item {
        std::uint64_t seq = 0;
        std::uint64_t check = 0; // a second word so torn reads would show
    };
    spsc_ring<item> ring(256);
    std::thread producer([&] {
        for (std::uint64_t i = 0; i < items;) {
            // Mix the copy and in-place forms.
            const bool ok =
                (i & 1) != 0 ? ring.try_push(item{i, ~i}) : ring.try_push_with([i](item& slot) {
                    slot = item{i, ~i};
                });
            if (ok) {
                ++i;
            } else {
                std::this_thread::yield();
            }
        }
    });
    std::uint64_t expected = 0;
    std::uint64_t bad = 0;
    while (expected < items) {
        const item* it = ring.front();
        if (it == nullptr) {
            std::this_thread::yield();
            continue;
        }
        if (it->seq != expected || it->check != ~expected) {
            ++bad;
        }
        ring.pop_front();
        ++expected;
    }
    producer.join();
    EXPECT_EQ(bad, 0U);
    EXPECT_EQ(expected, items);
    EXPECT_TRUE(ring.empty());
}

} // namespace
} // namespace callstream::pipeline
