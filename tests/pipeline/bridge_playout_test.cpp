// The bridge's pacer: exact 20 ms frames, real time plus the lead, marks behind their audio,
// clear, and the heard position, with time driven by the test (no sleeping).
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/processors/bridge_playout.hpp"

namespace {

using callstream::pipeline::bridge_playout;
using namespace std::chrono_literals;

struct recorder final : bridge_playout::sink {
    std::vector<std::vector<std::uint8_t>> frames;
    std::vector<std::uint32_t> marks;
    std::vector<std::size_t> marks_after_frames; // frames released before each mark
    void on_frame(std::span<const std::uint8_t, bridge_playout::frame_bytes> ulaw) override {
        frames.emplace_back(ulaw.begin(), ulaw.end());
    }
    void on_mark(std::uint32_t id) override {
        marks.push_back(id);
        marks_after_frames.push_back(frames.size());
    }
};

std::vector<std::uint8_t> ramp(std::size_t n, std::uint8_t first = 0) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) {
        v[i] = static_cast<std::uint8_t>(first + i);
    }
    return v;
}

const auto t0 = bridge_playout::clock::time_point{} + 1000s;

TEST(BridgePlayout, ReleasesWholeFramesUpToTheLeadThenOneFramePerTwentyMs) {
    bridge_playout p({80ms, 60000ms});
    ASSERT_TRUE(p.push_ulaw(ramp(1000)));
    recorder out;
    auto due = p.release(t0, out);
    ASSERT_EQ(out.frames.size(), 4U); // 80 ms of lead = 4 frames handed over at once
    EXPECT_EQ(due, t0 + 20ms);        // the next falls due when one has played
    const auto all = ramp(1000);
    for (std::size_t i = 0; i < 4; ++i) {
        EXPECT_EQ(out.frames[i][0], all[160 * i]);
        EXPECT_EQ(out.frames[i][159], all[160 * i + 159]);
    }
    EXPECT_EQ(p.release(t0 + 10ms, out), t0 + 20ms);
    EXPECT_EQ(out.frames.size(), 4U);
    due = p.release(t0 + 20ms, out);
    EXPECT_EQ(out.frames.size(), 5U);
    EXPECT_EQ(due, t0 + 40ms);
    // 1000 bytes = 6 whole frames + 40 bytes, which wait for more audio.
    p.release(t0 + 40ms, out);
    EXPECT_EQ(out.frames.size(), 6U);
    EXPECT_EQ(p.sent_bytes(), 960);
    EXPECT_EQ(p.accepted_bytes(), 1000);
}

TEST(BridgePlayout, HeardFollowsRealTimeBehindWhatWasSent) {
    bridge_playout p({80ms, 60000ms});
    ASSERT_TRUE(p.push_ulaw(ramp(640)));
    recorder out;
    p.release(t0, out);
    EXPECT_EQ(p.heard_bytes(t0), 0);
    EXPECT_EQ(p.heard_bytes(t0 + 50ms), 400);
    EXPECT_EQ(p.heard_bytes(t0 + 500ms), 640); // never beyond what was sent
}

TEST(BridgePlayout, MarksGoOutBehindTheFrameHoldingTheirPosition) {
    bridge_playout p({80ms, 60000ms});
    ASSERT_TRUE(p.push_ulaw(ramp(320)));
    const auto first = p.push_mark();
    ASSERT_TRUE(p.push_ulaw(ramp(100)));
    const auto second = p.push_mark();
    recorder out;
    auto due = p.release(t0, out);
    ASSERT_EQ(out.marks, std::vector<std::uint32_t>{first});
    EXPECT_EQ(out.marks_after_frames[0], 2U);
    // The 100-byte tail waits until the caller is about to run dry, then goes out padded.
    EXPECT_EQ(due, t0 + 20ms);
    p.release(t0 + 20ms, out);
    ASSERT_EQ(out.frames.size(), 3U);
    ASSERT_EQ(out.marks.size(), 2U);
    EXPECT_EQ(out.marks[1], second);
    EXPECT_EQ(out.frames[2][99], 99);
    EXPECT_EQ(out.frames[2][100], bridge_playout::ulaw_silence);
    EXPECT_EQ(p.accepted_bytes(), 480);
}

TEST(BridgePlayout, ClearDropsTheQueueReturnsUnsentMarksAndFreezesHeard) {
    bridge_playout p({80ms, 60000ms});
    ASSERT_TRUE(p.push_ulaw(ramp(160 * 50))); // 1 s
    const auto mark = p.push_mark();
    recorder out;
    for (auto t = 0ms; t <= 100ms; t += 20ms) {
        p.release(t0 + t, out);
    }
    EXPECT_EQ(out.frames.size(), 9U); // 4 up front, then one per 20 ms
    const auto unsent = p.clear(t0 + 110ms);
    EXPECT_EQ(unsent, std::vector<std::uint32_t>{mark});
    EXPECT_EQ(p.heard_bytes(t0 + 110ms), 880);
    EXPECT_EQ(p.heard_bytes(t0 + 2s), 880); // what was dropped is never heard
    EXPECT_TRUE(p.idle());
    // New audio starts on the timeline where the accepted audio ended.
    ASSERT_TRUE(p.push_ulaw(ramp(160)));
    p.release(t0 + 200ms, out);
    EXPECT_EQ(p.sent_bytes(), 160 * 51);
    EXPECT_EQ(p.heard_bytes(t0 + 200ms), 160 * 50);
    EXPECT_EQ(p.heard_bytes(t0 + 220ms), 160 * 51);
}

TEST(BridgePlayout, MarkEchoResynchronisesTheModel) {
    bridge_playout p({80ms, 60000ms});
    ASSERT_TRUE(p.push_ulaw(ramp(320)));
    const auto mark = p.push_mark();
    ASSERT_TRUE(p.push_ulaw(ramp(320)));
    recorder out;
    p.release(t0, out);
    ASSERT_EQ(out.frames.size(), 4U);
    // Twilio played slower than real time: the mark (at 40 ms) echoes only at t0 + 70 ms.
    p.mark_played(mark, t0 + 70ms);
    EXPECT_EQ(p.heard_bytes(t0 + 70ms), 320);
    EXPECT_EQ(p.heard_bytes(t0 + 90ms), 480);
}

TEST(BridgePlayout, RefusesAudioTooFarAheadOfRealTime) {
    bridge_playout p({80ms, 1000ms});
    EXPECT_TRUE(p.push_ulaw(ramp(8000)));
    EXPECT_FALSE(p.push_ulaw(ramp(1)));
    recorder out;
    p.release(t0, out);
    EXPECT_TRUE(p.push_ulaw(ramp(160 * 4))); // released audio made room
}

} // namespace

// Two minutes of upstream audio in bursts of four frames every 80 ms: the queue is filled,
// drained, emptied and compacted thousands of times (it reuses its storage instead of allocating
// per frame), and every frame still comes out once, in order.
TEST(BridgePlayout, MinutesOfBurstyAudioComeOutInOrderThroughTheReusedQueue) {
    bridge_playout p({80ms, 60000ms});
    recorder out;
    auto now = t0;
    std::uint32_t next = 0;
    constexpr std::uint32_t frames = 6000;
    for (std::uint32_t tick = 0; out.frames.size() < frames && tick < 4 * frames; ++tick) {
        for (std::uint32_t k = 0; tick % 4 == 0 && k < 4 && next < frames; ++k, ++next) {
            std::vector<std::uint8_t> frame(bridge_playout::frame_bytes, 0x55);
            frame[0] = static_cast<std::uint8_t>(next >> 8);
            frame[1] = static_cast<std::uint8_t>(next);
            ASSERT_TRUE(p.push_ulaw(frame));
        }
        p.release(now, out);
        now += 20ms;
    }
    ASSERT_EQ(out.frames.size(), frames);
    for (std::uint32_t i = 0; i < frames; ++i) {
        const std::uint32_t id = (std::uint32_t{out.frames[i][0]} << 8) | out.frames[i][1];
        ASSERT_EQ(id, i) << "frame " << i << " out of order";
    }
    EXPECT_TRUE(p.idle());
}
