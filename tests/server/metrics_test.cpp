// The /metrics counters: the server's per-frame blocks (one per network thread) and the bridge's,
// summed by a scrape while threads count.
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/app/metrics.hpp"
#include "server/bridge/bridge_metrics.hpp"

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

// What one bridged frame counts: its message up, the upstream's message and frame back.
void bridge_frames(bridge::bridge_metrics& m, int frames) {
    for (int i = 0; i < frames; ++i) {
        auto& c = m.frames();
        c.frames_to_upstream.fetch_add(1, std::memory_order_relaxed);
        c.bytes_to_upstream.fetch_add(240, std::memory_order_relaxed);
        c.messages_from_upstream.fetch_add(1, std::memory_order_relaxed);
        c.bytes_from_upstream.fetch_add(260, std::memory_order_relaxed);
        c.frames_from_upstream.fetch_add(1, std::memory_order_relaxed);
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

// The bridge's per-frame counters sit in the same per-thread blocks (bridge_frame_counters).
TEST(bridge_metrics, a_scrape_sums_every_threads_bridged_frames) {
    bridge::bridge_metrics m;
    constexpr int thread_count = 20; // more than the blocks: some threads share one
    constexpr int frames_each = 4000;
    std::vector<std::thread> threads;
    for (int t = 0; t < thread_count; ++t) {
        threads.emplace_back([&] { bridge_frames(m, frames_each); });
    }
    for (int i = 0; i < 20; ++i) {
        std::string during;
        m.render(during);
    }
    for (auto& t : threads) {
        t.join();
    }
    constexpr std::uint64_t total = std::uint64_t{thread_count} * frames_each;
    std::string text = "\n";
    m.render(text);
    EXPECT_EQ(sample(text, "callstream_bridge_frames_to_upstream_total"), total);
    EXPECT_EQ(sample(text, "callstream_bridge_bytes_to_upstream_total"), total * 240);
    EXPECT_EQ(sample(text, "callstream_bridge_messages_from_upstream_total"), total);
    EXPECT_EQ(sample(text, "callstream_bridge_bytes_from_upstream_total"), total * 260);
    EXPECT_EQ(sample(text, "callstream_bridge_frames_from_upstream_total"), total);
}

TEST(bridge_metrics, two_instances_on_one_thread_keep_their_own_bridged_frames) {
    bridge::bridge_metrics a;
    bridge::bridge_metrics b;
    bridge_frames(a, 3);
    bridge_frames(b, 5);
    bridge_frames(a, 4);
    EXPECT_EQ(a.frame_sums().frames_to_upstream, 7U);
    EXPECT_EQ(b.frame_sums().frames_to_upstream, 5U);
    EXPECT_EQ(b.frame_sums().bytes_from_upstream, 5U * 260);
}
