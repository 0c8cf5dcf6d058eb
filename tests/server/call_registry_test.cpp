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

TEST(call_registry, concurrent_updates_stay_consistent) {
    call_registry reg(50);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&reg, t] {
            for (int i = 0; i < 200; ++i) {
                const std::string s = sid(i % 60);
                reg.on_status(status(s, "ringing", std::to_string(i + t).c_str()));
                reg.on_stream_started(s, "MZ" + std::to_string(t), "echo");
                reg.on_stream_stopped(s, "MZ" + std::to_string(t));
                (void)reg.recent(5);
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_LE(reg.size(), 50u);
    EXPECT_EQ(reg.recent().size(), reg.size());
}
