#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "codec/base64.hpp"
#include "server/bridge/bridge_metrics.hpp"
#include "server/bridge/openai_realtime_protocol.hpp"
#include "tests/server/bridge_recording_bridge.hpp"

namespace callstream::server::bridge {
namespace {

std::string session_updated(std::string_view in, std::string_view out) {
    return R"({"type":"session.updated","session":{"type":"realtime","audio":{"input":{"format":)" +
           std::string(in) + R"(},"output":{"format":)" + std::string(out) + "}}}}";
}
constexpr std::string_view pcmu = R"({"type":"audio/pcmu"})";
constexpr std::string_view pcm24 = R"({"type":"audio/pcm","rate":24000})";

std::string delta(std::string_view item, std::span<const std::uint8_t> audio,
                  std::string_view type = "response.output_audio.delta") {
    return R"({"type":")" + std::string(type) + R"(","response_id":"resp_1","item_id":")" +
           std::string(item) + R"(","output_index":0,"content_index":0,"delta":")" +
           codec::base64_encode(audio) + "\"}";
}

call_metadata call_with(std::vector<std::pair<std::string, std::string>> params = {}) {
    call_metadata call;
    call.call_sid = "CA1";
    call.stream_sid = "MZ1";
    call.custom_parameters = std::move(params);
    return call;
}

// A protocol that is open, started and ready, with a response streaming.
struct live_session {
    openai_realtime_protocol protocol{{"gpt-realtime", "marin", "Be brief.", realtime_format::pcmu},
                                      false};
    recording_bridge bridge;
    live_session() {
        protocol.on_open(bridge);
        protocol.on_start(call_with(), bridge);
        deliver(protocol, bridge, session_updated(pcmu, pcmu));
        deliver(protocol, bridge,
                R"({"type":"response.created","response":{"id":"resp_1","status":"in_progress"}})");
    }
};

TEST(bridge_openai_protocol, is_ready_only_once_session_updated_confirms_the_formats) {
    openai_realtime_protocol protocol({"gpt-realtime", "marin", "Be brief.", realtime_format::pcmu},
                                      false);
    recording_bridge bridge;
    protocol.on_open(bridge);
    ASSERT_EQ(bridge.events("session.update").size(), 1u);
    const auto update = bridge.events("session.update")[0];
    EXPECT_EQ(std::string_view(update["session"]["audio"]["input"]["format"]["type"]),
              "audio/pcmu");
    EXPECT_EQ(std::string_view(update["session"]["audio"]["output"]["format"]["type"]),
              "audio/pcmu");
    EXPECT_EQ(std::string_view(update["session"]["model"]), "gpt-realtime");
    EXPECT_FALSE(protocol.ready());
    // session.created carries the provider's defaults: not what was asked, and not the answer.
    deliver(
        protocol, bridge,
        R"({"type":"session.created","session":{"audio":{"input":{"format":{"type":"audio/pcm","rate":24000}}}}})");
    EXPECT_FALSE(protocol.ready());
    EXPECT_TRUE(bridge.failures.empty());
    deliver(protocol, bridge, session_updated(pcmu, pcmu));
    EXPECT_TRUE(protocol.ready());
    EXPECT_TRUE(bridge.failures.empty());
}

TEST(bridge_openai_protocol, a_format_mismatch_in_session_updated_fails_the_upstream) {
    openai_realtime_protocol protocol({}, false);
    recording_bridge bridge;
    protocol.on_open(bridge);
    deliver(protocol, bridge, session_updated(pcmu, pcm24));
    EXPECT_FALSE(protocol.ready());
    ASSERT_EQ(bridge.failures.size(), 1u);
    EXPECT_EQ(bridge.failures[0].first, "format_mismatch");
    EXPECT_NE(bridge.failures[0].second.find("output audio/pcm@24000"), std::string::npos)
        << bridge.failures[0].second;
}

TEST(bridge_openai_protocol, per_call_parameters_override_the_configuration_in_a_new_update) {
    openai_realtime_protocol protocol({"gpt-realtime", "marin", "Be brief.", realtime_format::pcmu},
                                      false);
    recording_bridge bridge;
    protocol.on_open(bridge);
    protocol.on_start(call_with({{"voice", "cedar"}, {"instructions", "Parle français."}}), bridge);
    const auto updates = bridge.events("session.update");
    ASSERT_EQ(updates.size(), 2u);
    EXPECT_EQ(std::string_view(updates[1]["session"]["audio"]["output"]["voice"]), "cedar");
    EXPECT_EQ(std::string_view(updates[1]["session"]["instructions"]), "Parle français.");
    EXPECT_EQ(std::string_view(updates[1]["session"]["model"]), "gpt-realtime");
    // The formats are in every update.
    EXPECT_EQ(std::string_view(updates[1]["session"]["audio"]["output"]["format"]["type"]),
              "audio/pcmu");

    // Parameters equal to the configuration send nothing more.
    openai_realtime_protocol same({"gpt-realtime", "marin", "", realtime_format::pcmu}, false);
    recording_bridge quiet;
    same.on_open(quiet);
    same.on_start(call_with({{"voice", "marin"}}), quiet);
    EXPECT_EQ(quiet.events("session.update").size(), 1u);
}

TEST(bridge_openai_protocol, caller_mulaw_is_appended_byte_for_byte) {
    live_session s;
    std::vector<std::uint8_t> frame(160);
    for (std::size_t i = 0; i < frame.size(); ++i) {
        frame[i] = static_cast<std::uint8_t>(i * 7);
    }
    s.protocol.on_caller_audio(frame, 0, s.bridge);
    const auto appends = s.bridge.events("input_audio_buffer.append");
    ASSERT_EQ(appends.size(), 1u);
    EXPECT_EQ(std::string_view(appends[0]["audio"]), codec::base64_encode(frame));
}

TEST(bridge_openai_protocol, ga_and_beta_deltas_play_into_the_call_exactly) {
    live_session s;
    const std::vector<std::uint8_t> a = {1, 2, 3, 4, 5};
    const std::vector<std::uint8_t> b = {6, 7, 8};
    deliver(s.protocol, s.bridge, delta("item_1", a));
    deliver(s.protocol, s.bridge, delta("item_1", b, "response.audio.delta"));
    EXPECT_EQ(s.bridge.ulaw, (std::vector<std::uint8_t>{1, 2, 3, 4, 5, 6, 7, 8}));
    EXPECT_TRUE(s.bridge.failures.empty());
}

TEST(bridge_openai_protocol, barge_in_truncates_at_what_the_caller_heard_and_drops_late_deltas) {
    live_session s;
    // An earlier item took the first 1000 ms of the playout timeline.
    deliver(s.protocol, s.bridge, delta("item_0", std::vector<std::uint8_t>(8000, 0x55)));
    deliver(s.protocol, s.bridge,
            R"({"type":"response.done","response":{"id":"resp_0","status":"completed"}})");
    deliver(s.protocol, s.bridge,
            R"({"type":"response.created","response":{"id":"resp_1","status":"in_progress"}})");
    // 3 s of the current item, sent faster than real time; the caller has heard 1234 ms of it.
    for (int i = 0; i < 30; ++i) {
        deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(800, 0x66)));
    }
    s.bridge.heard = 1000 + 1234;
    deliver(
        s.protocol, s.bridge,
        R"({"type":"input_audio_buffer.speech_started","audio_start_ms":4000,"item_id":"in_1"})");
    EXPECT_EQ(s.bridge.clears, 1);
    EXPECT_EQ(s.bridge.barge_ins, 1);
    EXPECT_EQ(s.bridge.events("response.cancel").size(), 1u);
    const auto truncates = s.bridge.events("conversation.item.truncate");
    ASSERT_EQ(truncates.size(), 1u);
    EXPECT_EQ(std::string_view(truncates[0]["item_id"]), "item_1");
    EXPECT_EQ(int64_t(truncates[0]["audio_end_ms"]), 1234);
    EXPECT_EQ(int64_t(truncates[0]["content_index"]), 0);
    EXPECT_EQ(s.bridge.truncations, 1);

    // Deltas of the truncated item still on the wire never reach the caller.
    const auto played = s.bridge.ulaw.size();
    deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(800, 0x77)));
    EXPECT_EQ(s.bridge.ulaw.size(), played);
    EXPECT_EQ(s.protocol.stats().late_deltas_dropped, 1u);

    // The server's own cancel crossed ours: benign, no failure; no second cancel or truncate.
    deliver(s.protocol, s.bridge,
            R"({"type":"response.done","response":{"id":"resp_1","status":"cancelled"}})");
    deliver(
        s.protocol, s.bridge,
        R"({"type":"error","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"no active response"}})");
    deliver(s.protocol, s.bridge,
            R"({"type":"input_audio_buffer.speech_started","audio_start_ms":5000})");
    EXPECT_EQ(s.bridge.events("response.cancel").size(), 1u);
    EXPECT_EQ(s.bridge.events("conversation.item.truncate").size(), 1u);
    EXPECT_EQ(s.protocol.stats().benign_errors, 1u);
    EXPECT_TRUE(s.bridge.failures.empty());

    // The next response plays normally.
    deliver(s.protocol, s.bridge, delta("item_2", std::vector<std::uint8_t>(160, 0x11)));
    EXPECT_EQ(s.bridge.ulaw.size(), played + 160);
}

TEST(bridge_openai_protocol, truncation_is_clamped_to_what_was_sent_of_the_item) {
    live_session s;
    deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(4000, 0x66))); // 500 ms
    // The heard model may run ahead of an item whose response is still active.
    s.bridge.heard = 700;
    deliver(s.protocol, s.bridge,
            R"({"type":"input_audio_buffer.speech_started","audio_start_ms":900})");
    const auto truncates = s.bridge.events("conversation.item.truncate");
    ASSERT_EQ(truncates.size(), 1u);
    EXPECT_EQ(int64_t(truncates[0]["audio_end_ms"]), 500);
}

TEST(bridge_openai_protocol, speech_over_silence_interrupts_nothing) {
    live_session s;
    deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(800, 0x66)));
    deliver(s.protocol, s.bridge,
            R"({"type":"response.done","response":{"id":"resp_1","status":"completed"}})");
    s.bridge.heard = 100; // all of it played
    deliver(s.protocol, s.bridge,
            R"({"type":"input_audio_buffer.speech_started","audio_start_ms":900})");
    EXPECT_EQ(s.bridge.clears, 0);
    EXPECT_TRUE(s.bridge.events("conversation.item.truncate").empty());
    EXPECT_TRUE(s.bridge.events("response.cancel").empty());
}

TEST(bridge_openai_protocol, a_response_without_audio_yet_is_cancelled_not_truncated) {
    live_session s;
    deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(800, 0x66)));
    deliver(s.protocol, s.bridge,
            R"({"type":"response.done","response":{"id":"resp_1","status":"completed"}})");
    s.bridge.heard = 100; // item_1 played to its end
    deliver(s.protocol, s.bridge,
            R"({"type":"response.created","response":{"id":"resp_2","status":"in_progress"}})");
    deliver(s.protocol, s.bridge, R"({"type":"input_audio_buffer.speech_started"})");
    EXPECT_EQ(s.bridge.events("response.cancel").size(), 1u);
    EXPECT_TRUE(s.bridge.events("conversation.item.truncate").empty());
}

TEST(bridge_openai_protocol, hostile_events_fail_the_upstream_with_a_label) {
    const std::pair<std::string, std::string> cases[] = {
        {R"({"type":"response.output_audio.delta","delta":)", "invalid_json"},
        {R"({"type":"response.output_audio.delta","item_id":"i","delta":"@@@"})", "bad_base64"},
        {R"({"type":"response.output_audio.delta","item_id":7,"delta":"AAAA"})", "bad_event"},
        {R"({"type":"error","error":{"type":"invalid_request_error","code":"session_expired","message":"Your session hit the maximum duration of 60 minutes."}})",
         "session_expired"},
    };
    for (const auto& [json, label] : cases) {
        live_session s;
        deliver(s.protocol, s.bridge, json);
        ASSERT_EQ(s.bridge.failures.size(), 1u) << json;
        EXPECT_EQ(s.bridge.failures[0].first, label) << json;
        EXPECT_TRUE(s.bridge.ulaw.empty());
    }
    live_session s;
    const std::uint8_t bytes[] = {1, 2, 3};
    s.protocol.on_upstream_binary(bytes, s.bridge);
    ASSERT_EQ(s.bridge.failures.size(), 1u);
    EXPECT_EQ(s.bridge.failures[0].first, "binary_frame");
}

TEST(bridge_openai_protocol, other_error_events_are_counted_and_the_session_goes_on) {
    live_session s;
    deliver(
        s.protocol, s.bridge,
        R"({"type":"error","error":{"type":"invalid_request_error","code":"invalid_value","message":"Audio content of 9250ms is already shorter than 57340ms"}})");
    deliver(s.protocol, s.bridge,
            R"({"type":"error","error":{"type":"server_error","code":null,"message":"boom"}})");
    EXPECT_EQ(s.protocol.stats().error_events, 2u);
    // Each is counted for /metrics by type and code (a null code arrives empty).
    EXPECT_EQ(s.bridge.upstream_errors,
              (std::vector<std::string>{"invalid_request_error/invalid_value", "server_error/"}));
    EXPECT_TRUE(s.bridge.failures.empty());
    deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(160, 0x11)));
    EXPECT_EQ(s.bridge.ulaw.size(), 160u);
}

TEST(bridge_openai_protocol, pcm24_upsamples_the_caller_and_plays_the_assistant_at_24k) {
    openai_realtime_protocol protocol({"", "", "", realtime_format::pcm24}, false);
    recording_bridge bridge;
    protocol.on_open(bridge);
    EXPECT_EQ(
        int64_t(bridge.events("session.update")[0]["session"]["audio"]["input"]["format"]["rate"]),
        24000);
    deliver(protocol, bridge, session_updated(pcm24, pcm24));
    ASSERT_TRUE(protocol.ready());
    protocol.on_caller_audio(std::vector<std::uint8_t>(160, 0xff), 0, bridge);
    const auto appends = bridge.events("input_audio_buffer.append");
    ASSERT_EQ(appends.size(), 1u);
    std::vector<std::uint8_t> decoded(2000);
    std::size_t n = 0;
    ASSERT_FALSE(codec::base64_decode(std::string_view(appends[0]["audio"]), decoded, n));
    EXPECT_EQ(n, 960u); // 20 ms at 24 kHz, 16 bits

    // A sample split across two deltas is put back together.
    const std::vector<std::uint8_t> first = {0x34, 0x12, 0x78};
    const std::vector<std::uint8_t> second = {0x56, 0xff, 0x7f};
    deliver(protocol, bridge, delta("item_1", first));
    deliver(protocol, bridge, delta("item_1", second));
    EXPECT_EQ(bridge.pcm, (std::vector<std::int16_t>{0x1234, 0x5678, 0x7fff}));
    EXPECT_EQ(bridge.pcm_rate, 24000u);
    EXPECT_TRUE(bridge.failures.empty());
}

TEST(bridge_openai_protocol, greet_asks_for_a_response_once_ready_and_started) {
    openai_realtime_protocol protocol({}, true);
    recording_bridge bridge;
    protocol.on_open(bridge);
    deliver(protocol, bridge, session_updated(pcmu, pcmu));
    EXPECT_TRUE(bridge.events("response.create").empty()); // no call yet (pre-warm)
    protocol.on_start(call_with(), bridge);
    EXPECT_EQ(bridge.events("response.create").size(), 1u);
    deliver(protocol, bridge, session_updated(pcmu, pcmu));
    EXPECT_EQ(bridge.events("response.create").size(), 1u);
}

TEST(bridge_openai_protocol, marks_follow_the_assistant_audio) {
    live_session s;
    for (int i = 0; i < 12; ++i) { // 1.2 s in 100 ms deltas
        deliver(s.protocol, s.bridge, delta("item_1", std::vector<std::uint8_t>(800, 0x66)));
    }
    EXPECT_EQ(s.bridge.marks.size(), 2u); // at 500 and 1000 ms
    deliver(s.protocol, s.bridge,
            R"({"type":"response.output_audio.done","response_id":"resp_1","item_id":"item_1"})");
    EXPECT_EQ(s.bridge.marks.size(), 3u);
}

TEST(bridge_openai_protocol, options_are_validated_with_the_flag_to_fix) {
    upstream_config u;
    u.name = "rt";
    u.protocol = "openai-realtime";
    EXPECT_EQ(validate_openai_realtime_options(u), "");
    u.options = {{"model", "gpt-realtime"}, {"format", "pcm24k"}, {"greet", "true"}};
    EXPECT_EQ(validate_openai_realtime_options(u), "");
    u.options = {{"format", "pcm16"}};
    EXPECT_NE(validate_openai_realtime_options(u).find("--bridge-option rt=format=pcm16"),
              std::string::npos);
    u.options = {{"temperature", "0.8"}};
    EXPECT_FALSE(validate_openai_realtime_options(u).empty());
    u.options = {{"format", "pcm24k"}, {"voice", "cedar"}};
    auto p = make_openai_realtime_protocol(u);
    ASSERT_TRUE(p);
    auto* rt = dynamic_cast<openai_realtime_protocol*>(p.get());
    ASSERT_NE(rt, nullptr);
    EXPECT_EQ(rt->session_config().format, realtime_format::pcm24);
    EXPECT_EQ(rt->session_config().voice, "cedar");
}

} // namespace
} // namespace callstream::server::bridge

TEST(bridge_metrics, upstream_error_labels_are_bounded) {
    callstream::server::bridge::bridge_metrics m;
    m.count_upstream_error("invalid_request_error", "invalid_value");
    m.count_upstream_error("invalid_request_error", "invalid_value");
    m.count_upstream_error("server_error", "");
    // What an upstream makes up (here with quotes and a newline) cannot become a label.
    for (int i = 0; i < 50; ++i) {
        m.count_upstream_error("made_up_" + std::to_string(i), "x\"}\nevil" + std::to_string(i));
    }
    std::string text;
    m.render(text);
    EXPECT_NE(text.find("callstream_bridge_upstream_errors_total{type=\"invalid_request_error\","
                        "code=\"invalid_value\"} 2\n"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("callstream_bridge_upstream_errors_total{type=\"server_error\","
                        "code=\"none\"} 1\n"),
              std::string::npos);
    EXPECT_NE(text.find("callstream_bridge_upstream_errors_total{type=\"other\",code=\"other\"} "
                        "50\n"),
              std::string::npos);
    EXPECT_EQ(text.find("evil"), std::string::npos);
    EXPECT_EQ(text.find("made_up"), std::string::npos);
}
