#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/app/metrics.hpp"

using namespace callstream::server;

namespace {

// The value of one unlabelled sample line ("name value") in Prometheus text.
std::uint64_t sample(const std::string& text, const std::string& name) {
    const auto at = text.find("\n" + name + " ");
    if (at == std::string::npos) {
        ADD_FAILURE() << name << " missing from /metrics";
        return 0;
    }
    return std::stoull(text.substr(at + name.size() + 2));
}

void count_frames(metrics& m, int frames) {
    for (int i = 0; i < frames; ++i) {
        auto& f = m.frames();
        f.messages_in.fetch_add(1, std::memory_order_relaxed);
        f.bytes_in.fetch_add(300, std::memory_order_relaxed);
        f.frame_processing.observe(static_cast<std::uint64_t>(i % 40));
        f.frames_out.fetch_add(1, std::memory_order_relaxed);
        f.bytes_out.fetch_add(250, std::memory_order_relaxed);
    }
}

} // namespace

TEST(metrics, each_thread_counts_frames_on_its_own_cache_line) {
    metrics m;
    frame_counters* mine = &m.frames();
    frame_counters* theirs = nullptr;
    std::thread([&] { theirs = &m.frames(); }).join();
    EXPECT_EQ(mine, &m.frames()); // a thread keeps its shard
    ASSERT_NE(mine, theirs);
    const auto distance =
        reinterpret_cast<std::uintptr_t>(theirs) > reinterpret_cast<std::uintptr_t>(mine)
            ? reinterpret_cast<std::uintptr_t>(theirs) - reinterpret_cast<std::uintptr_t>(mine)
            : reinterpret_cast<std::uintptr_t>(mine) - reinterpret_cast<std::uintptr_t>(theirs);
    EXPECT_GE(distance, 64U);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(mine) % 64, 0U);
}

TEST(metrics, a_scrape_sums_every_threads_frames) {
    metrics m;
    // More threads than shards: threads then share a shard, and nothing may be lost.
    std::vector<std::thread> threads;
    constexpr int thread_count = 20;
    constexpr int frames_each = 5000;
    for (int t = 0; t < thread_count; ++t) {
        threads.emplace_back([&] { count_frames(m, frames_each); });
    }
    // Scrapes while the threads count must not disturb them (TSan checks the races).
    for (int i = 0; i < 20; ++i) {
        (void)m.render_prometheus();
    }
    for (auto& t : threads) {
        t.join();
    }
    constexpr std::uint64_t total = std::uint64_t{thread_count} * frames_each;
    const auto sums = m.frame_sums();
    EXPECT_EQ(sums.messages_in, total);
    EXPECT_EQ(sums.frames_in, total);
    EXPECT_EQ(sums.frames_out, total);
    EXPECT_EQ(sums.bytes_in, total * 300);
    EXPECT_EQ(sums.bytes_out, total * 250);

    const std::string text = m.render_prometheus();
    EXPECT_EQ(sample(text, "callstream_messages_in_total"), total);
    EXPECT_EQ(sample(text, "callstream_frames_in_total"), total);
    EXPECT_EQ(sample(text, "callstream_frames_out_total"), total);
    EXPECT_EQ(sample(text, "callstream_bytes_in_total"), total * 300);
    EXPECT_EQ(sample(text, "callstream_bytes_out_total"), total * 250);
    EXPECT_EQ(sample(text, "callstream_frame_processing_seconds_count"), total);
}

TEST(metrics, two_instances_on_one_thread_keep_their_own_counts) {
    metrics a;
    metrics b;
    count_frames(a, 3);
    count_frames(b, 5);
    count_frames(a, 4);
    EXPECT_EQ(a.frame_sums().frames_in, 7U);
    EXPECT_EQ(b.frame_sums().frames_in, 5U);
}
