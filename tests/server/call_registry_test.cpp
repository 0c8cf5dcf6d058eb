#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "server/calls/call_registry.hpp"

using namespace callstream::server;

namespace {

std::string sid(int n) {
    std::string s = "CA" + std::string(32, '0');
    const std::string digits = std::to_string(n);
    s.replace(s.size() - digits.size(), digits.size(), digits);
    return s;
}

status_update status(const std::string& call, const char* call_status, const char* sequence) {
    status_update u;
    u.call_sid = call;
    u.call_status = call_status;
    u.sequence_number = sequence;
    return u;
}

} // namespace

TEST(call_registry, out_of_order_callbacks_keep_the_highest_sequence) {
    call_registry reg;
    reg.on_call_created(sid(1), "+14155551212", "+15017122661", "queued");
    EXPECT_TRUE(reg.on_status(status(sid(1), "ringing", "1")));
    EXPECT_TRUE(reg.on_status(status(sid(1), "completed", "3")));
    EXPECT_FALSE(reg.on_status(status(sid(1), "in-progress", "2"))); // late
    EXPECT_FALSE(reg.on_status(status(sid(1), "initiated", "0")));   // later still
    EXPECT_FALSE(reg.on_status(status(sid(1), "ringing", "x")));     // not a number
    auto call = reg.find(sid(1));
    ASSERT_TRUE(call);
    EXPECT_EQ(call->status, "completed");
    EXPECT_EQ(call->sequence_number, 3);
    EXPECT_EQ(call->to, "+14155551212");
    EXPECT_EQ(call->direction, "outbound-api");
}

// The terminal status may arrive first (Twilio does not order its callbacks): the earlier
// statuses that come after it must not reopen the call.
TEST(call_registry, terminal_status_arriving_first_stays_terminal) {
    call_registry reg;
    reg.on_call_created(sid(4), "+14155551212", "+15017122661", "queued");
    EXPECT_TRUE(reg.on_status(status(sid(4), "completed", "3")));
    EXPECT_FALSE(reg.on_status(status(sid(4), "ringing", "1")));
    EXPECT_FALSE(reg.on_status(status(sid(4), "initiated", "0")));
    EXPECT_FALSE(reg.on_status(status(sid(4), "in-progress", "2")));
    EXPECT_FALSE(reg.on_status(status(sid(4), "completed", "3"))); // a retried duplicate
    const auto call = reg.find(sid(4));
    ASSERT_TRUE(call);
    EXPECT_EQ(call->status, "completed");
    EXPECT_EQ(call->sequence_number, 3);
}

TEST(call_registry, callback_before_create_response_is_not_overwritten) {
    call_registry reg;
    EXPECT_TRUE(reg.on_status(status(sid(2), "ringing", "1")));
    reg.on_call_created(sid(2), "sip:a@example.com", "bot", "queued");
    EXPECT_EQ(reg.find(sid(2))->status, "ringing");
    EXPECT_EQ(reg.find(sid(2))->to, "sip:a@example.com");
}

TEST(call_registry, amd_result_sets_answered_by_only) {
    call_registry reg;
    reg.on_call_created(sid(3), "+1", "+2", "queued");
    status_update amd;
    amd.call_sid = sid(3);
    amd.answered_by = "machine_end_beep";
    EXPECT_FALSE(reg.on_status(amd));
    EXPECT_EQ(reg.find(sid(3))->answered_by, "machine_end_beep");
    EXPECT_EQ(reg.find(sid(3))->status, "queued");
}

TEST(call_registry, evicts_oldest_beyond_capacity) {
    call_registry reg(3);
    for (int i = 0; i < 5; ++i) {
        reg.on_call_created(sid(i), "+1", "+2", "queued");
    }
    EXPECT_EQ(reg.size(), 3u);
    EXPECT_FALSE(reg.find(sid(0)));
    EXPECT_FALSE(reg.find(sid(1)));
    const auto recent = reg.recent();
    ASSERT_EQ(recent.size(), 3u);
    EXPECT_EQ(recent[0].sid, sid(4)); // newest first
    EXPECT_EQ(recent[2].sid, sid(2));
    EXPECT_EQ(reg.recent(1).size(), 1u);
}

TEST(call_registry, streams_start_and_stop_and_render_as_json) {
    call_registry reg;
    reg.on_stream_started(sid(7), "MZ" + std::string(32, 'a'), "record,play");
    reg.on_stream_stopped(sid(7), "MZ" + std::string(32, 'a'));
    reg.on_stream_stopped(sid(8), "MZ" + std::string(32, 'b')); // unknown call: ignored
    auto call = reg.find(sid(7));
    ASSERT_TRUE(call);
    ASSERT_EQ(call->streams.size(), 1u);
    EXPECT_TRUE(call->streams[0].stopped);
    EXPECT_FALSE(reg.find(sid(8)));
    const std::string json = call_record_json(*call);
    EXPECT_NE(json.find("\"processors\":[\"record,play\"]"), std::string::npos) << json;
    EXPECT_NE(json.find("\"stream_sid\":\"MZaaaa"), std::string::npos) << json;
    EXPECT_EQ(json.find("\"stopped\":null"), std::string::npos) << json;
}

// Four threads update the same 60 calls at once. Every update is distinct, so the end state is
// known exactly: each call's status is the one sent with its highest SequenceNumber, whichever
// thread sent it and in whatever order they ran, and each call holds one stopped stream per
// thread per round.
TEST(call_registry, concurrent_updates_stay_consistent) {
    constexpr int threads_n = 4;
    constexpr int calls = 60;
    constexpr int rounds = 25;
    const char* const statuses[] = {"initiated", "ringing", "in-progress", "completed"};
    call_registry reg(1000);
    std::vector<std::thread> threads;
    for (int t = 0; t < threads_n; ++t) {
        threads.emplace_back([&reg, &statuses, t] {
            for (int r = 0; r < rounds; ++r) {
                for (int c = 0; c < calls; ++c) {
                    // Sequence numbers r*4+t are unique per call; thread t always sends
                    // statuses[t], so the winner's status names the winning thread.
                    const int seq = r * threads_n + t;
                    reg.on_status(status(sid(c), statuses[t], std::to_string(seq).c_str()));
                    const std::string mz = "MZ" + std::to_string(t) + "-" + std::to_string(r);
                    reg.on_stream_started(sid(c), mz, "echo");
                    reg.on_stream_stopped(sid(c), mz);
                    (void)reg.recent(5);
                }
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    ASSERT_EQ(reg.size(), static_cast<std::size_t>(calls));
    for (int c = 0; c < calls; ++c) {
        const auto call = reg.find(sid(c));
        ASSERT_TRUE(call) << sid(c);
        EXPECT_EQ(call->sequence_number, (rounds - 1) * threads_n + threads_n - 1);
        EXPECT_EQ(call->status, "completed"); // statuses[3]: the highest sequence is thread 3's
        ASSERT_EQ(call->streams.size(), static_cast<std::size_t>(threads_n * rounds));
        std::vector<std::string> names;
        for (const auto& st : call->streams) {
            EXPECT_TRUE(st.stopped) << st.stream_sid;
            EXPECT_EQ(st.processors, "echo");
            names.push_back(st.stream_sid);
        }
        std::sort(names.begin(), names.end());
        EXPECT_EQ(std::unique(names.begin(), names.end()), names.end()) << "a stream twice";
    }
    EXPECT_EQ(reg.recent().size(), reg.size());
}

// The same under eviction: with room for 50 of 60 calls, every call left is whole.
TEST(call_registry, concurrent_updates_with_eviction_keep_whole_records) {
    call_registry reg(50);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&reg, t] {
            for (int i = 0; i < 200; ++i) {
                const std::string s = sid(i % 60);
                reg.on_status(status(s, "ringing", std::to_string(i * 4 + t).c_str()));
                reg.on_stream_started(s, "MZ" + std::to_string(t), "echo");
                reg.on_stream_stopped(s, "MZ" + std::to_string(t));
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(reg.size(), 50U);
    const auto recent = reg.recent();
    ASSERT_EQ(recent.size(), 50U);
    for (const auto& call : recent) {
        EXPECT_EQ(call.sid.size(), 34U);
        EXPECT_EQ(call.status.empty(), call.sequence_number < 0) << call.sid;
        for (const auto& st : call.streams) {
            EXPECT_TRUE(st.stopped) << call.sid << " " << st.stream_sid;
        }
    }
}
