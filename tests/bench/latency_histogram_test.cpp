#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "bench/load/latency_histogram.hpp"

namespace {

using callstream::bench::latency_histogram;

TEST(latency_histogram, small_values_are_exact) {
    for (std::uint64_t v = 0; v < 2 * latency_histogram::sub_count; ++v) {
        const auto i = latency_histogram::index_of(v);
        EXPECT_EQ(latency_histogram::lowest_in(i), v);
        EXPECT_EQ(latency_histogram::highest_in(i), v);
    }
}

TEST(latency_histogram, buckets_tile_the_range_with_bounded_relative_error) {
    // Adjacent buckets touch, and each wide bucket is at most 1/sub_count of its low end.
    for (std::size_t i = 1; i < latency_histogram::bucket_count; ++i) {
        ASSERT_EQ(latency_histogram::lowest_in(i), latency_histogram::highest_in(i - 1) + 1) << i;
        const auto lo = latency_histogram::lowest_in(i);
        const auto width = latency_histogram::highest_in(i) - lo + 1;
        if (width > 1) {
            ASSERT_LE(width * latency_histogram::sub_count, lo) << i;
        }
    }
    EXPECT_EQ(latency_histogram::highest_in(latency_histogram::bucket_count - 1),
              latency_histogram::max_value());
    std::mt19937_64 rng(7);
    for (int k = 0; k < 100000; ++k) {
        const std::uint64_t v = rng() >> (24 + rng() % 40);
        const auto i = latency_histogram::index_of(v);
        ASSERT_LE(latency_histogram::lowest_in(i), v);
        ASSERT_GE(latency_histogram::highest_in(i), v);
    }
}

TEST(latency_histogram, percentiles_of_a_uniform_sequence) {
    latency_histogram h;
    for (std::uint64_t v = 1; v <= 10000; ++v) {
        h.record(v);
    }
    EXPECT_EQ(h.count(), 10000u);
    EXPECT_EQ(h.min(), 1u);
    EXPECT_EQ(h.max(), 10000u);
    EXPECT_DOUBLE_EQ(h.mean(), 5000.5);
    // Reported as the bucket's highest value: within 1/128 above the exact rank.
    for (double p : {50.0, 90.0, 99.0, 99.9}) {
        const double exact = p * 100.0;
        const auto got = static_cast<double>(h.value_at_percentile(p));
        EXPECT_GE(got, exact) << p;
        EXPECT_LE(got, exact * (1.0 + 1.0 / 128)) << p;
    }
    EXPECT_EQ(h.value_at_percentile(100), 10000u);
    EXPECT_EQ(h.value_at_percentile(0), 1u);
}

TEST(latency_histogram, a_tail_shows_only_above_its_percentile) {
    latency_histogram h;
    for (int i = 0; i < 990; ++i) {
        h.record(100);
    }
    for (int i = 0; i < 10; ++i) {
        h.record(50000);
    }
    EXPECT_EQ(h.value_at_percentile(50), 100u);
    EXPECT_EQ(h.value_at_percentile(99), 100u);
    EXPECT_GE(h.value_at_percentile(99.9), 50000u);
    EXPECT_EQ(h.value_at_percentile(99.9), 50000u); // capped at the exact maximum
}

TEST(latency_histogram, merge_equals_recording_everything_in_one) {
    latency_histogram a;
    latency_histogram b;
    latency_histogram all;
    std::mt19937 rng(11);
    std::exponential_distribution<double> dist(1.0 / 3000.0);
    for (int i = 0; i < 20000; ++i) {
        const auto v = static_cast<std::uint64_t>(dist(rng));
        (i % 3 == 0 ? a : b).record(v);
        all.record(v);
    }
    a.merge(b);
    EXPECT_EQ(a.count(), all.count());
    EXPECT_EQ(a.min(), all.min());
    EXPECT_EQ(a.max(), all.max());
    EXPECT_DOUBLE_EQ(a.mean(), all.mean());
    for (double p : {1.0, 50.0, 90.0, 99.0, 99.9, 99.99}) {
        EXPECT_EQ(a.value_at_percentile(p), all.value_at_percentile(p)) << p;
    }
}

TEST(latency_histogram, values_beyond_the_range_are_clamped_and_counted) {
    latency_histogram h;
    h.record(latency_histogram::max_value() + 5);
    h.record(3);
    EXPECT_EQ(h.clamped(), 1u);
    EXPECT_EQ(h.max(), latency_histogram::max_value());
    EXPECT_EQ(h.value_at_percentile(100), latency_histogram::max_value());
}

TEST(latency_histogram, empty_reports_zero) {
    const latency_histogram h;
    EXPECT_EQ(h.count(), 0u);
    EXPECT_EQ(h.value_at_percentile(99), 0u);
    EXPECT_EQ(h.min(), 0u);
    EXPECT_EQ(h.mean(), 0.0);
}

} // namespace
