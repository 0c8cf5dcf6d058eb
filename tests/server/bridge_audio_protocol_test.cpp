#include <cmath>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "server/bridge/audio_protocol.hpp"
#include "tests/server/bridge_recording_bridge.hpp"

namespace callstream::server::bridge {
namespace {

call_metadata a_call() {
    call_metadata call;
    call.call_sid = "CA1";
    call.stream_sid = "MZ1";
    call.from = "+15550001111";
    call.custom_parameters = {{"bridge", "bot"}};
    return call;
}

audio_protocol make(std::string_view format, audio_flow_options flow = {}) {
    return audio_protocol(*parse_audio_format(format), flow);
}

TEST(bridge_audio_protocol, asks_for_its_subprotocol_and_sends_start_first) {
    auto p = make("l16-16000");
    recording_bridge bridge;
    EXPECT_EQ(p.websocket_subprotocol(), "callstream.audio.v1");
    p.on_open(bridge);
    EXPECT_TRUE(bridge.texts.empty()); // a pre-warmed socket waits for the call's metadata
    p.on_start(a_call(), bridge);
    const auto starts = bridge.events("start");
    ASSERT_EQ(starts.size(), 1u);
    EXPECT_EQ(std::string_view(starts[0]["callSid"]), "CA1");
    EXPECT_EQ(std::string_view(starts[0]["from"]), "+15550001111");
    EXPECT_EQ(int64_t(starts[0]["format"]["sampleRate"]), 16000);
}

TEST(bridge_audio_protocol, caller_audio_goes_out_in_exact_20ms_frames_of_the_format) {
    std::vector<std::uint8_t> ulaw(160);
    for (std::size_t i = 0; i < ulaw.size(); ++i) {
        ulaw[i] = codec::linear_to_ulaw(
            static_cast<std::int16_t>(8000 * std::sin(2 * M_PI * 440 * double(i) / 8000)));
    }
    for (const auto& [format, bytes] :
         {std::pair{"pcmu", 160u}, std::pair{"l16-8000", 320u}, std::pair{"l16-16000", 640u},
          std::pair{"l16-24000", 960u}}) {
        auto p = make(format);
        recording_bridge bridge;
        p.on_start(a_call(), bridge);
        // Odd sizes are re-framed: 100 + 220 bytes are two frames.
        p.on_caller_audio({ulaw.data(), 100}, 0, bridge);
        EXPECT_TRUE(bridge.binaries.empty());
        std::vector<std::uint8_t> rest(ulaw.begin() + 100, ulaw.end());
        rest.insert(rest.end(), ulaw.begin(), ulaw.end());
        p.on_caller_audio(rest, 20, bridge);
        ASSERT_EQ(bridge.binaries.size(), 2u) << format;
        EXPECT_EQ(bridge.binaries[0].size(), bytes) << format;
        EXPECT_EQ(bridge.binaries[1].size(), bytes) << format;
    }
    // μ-law passes through byte for byte; l16 at 8 kHz is the exact G.711 decode.
    auto p = make("pcmu");
    recording_bridge bridge;
    p.on_caller_audio(ulaw, 0, bridge);
    EXPECT_EQ(bridge.binaries.at(0), ulaw);
    auto l = make("l16-8000");
    recording_bridge lb;
    l.on_caller_audio(ulaw, 0, lb);
    for (std::size_t i = 0; i < ulaw.size(); ++i) {
        const auto s =
            static_cast<std::int16_t>(lb.binaries[0][2 * i] | lb.binaries[0][2 * i + 1] << 8);
        EXPECT_EQ(s, codec::ulaw_to_linear(ulaw[i]));
    }
}

TEST(bridge_audio_protocol, app_audio_plays_at_its_rate_with_split_samples_rejoined) {
    auto p = make("l16-24000");
    recording_bridge bridge;
    const std::vector<std::uint8_t> a = {0x34, 0x12, 0x78};
    const std::vector<std::uint8_t> b = {0x56};
    p.on_upstream_binary(a, bridge);
    p.on_upstream_binary(b, bridge);
    EXPECT_EQ(bridge.pcm, (std::vector<std::int16_t>{0x1234, 0x5678}));
    EXPECT_EQ(bridge.pcm_rate, 24000u);
    auto u = make("pcmu");
    recording_bridge ub;
    u.on_upstream_binary(a, ub);
    EXPECT_EQ(ub.ulaw, a);
}

TEST(bridge_audio_protocol, control_frames_reach_the_core_and_events_reach_the_app) {
    auto p = make("pcmu");
    recording_bridge bridge;
    p.on_start(a_call(), bridge);
    deliver(p, bridge, R"({"type":"mark","name":"greeting"})");
    ASSERT_EQ(bridge.marks, (std::vector<std::string>{"greeting"}));
    deliver(p, bridge, R"({"type":"clear"})");
    EXPECT_EQ(bridge.clears, 1);
    deliver(p, bridge, R"({"type":"transfer","to":"+1555"})"); // newer than us: ignored
    EXPECT_TRUE(bridge.failures.empty());
    deliver(p, bridge, R"({"type":"hangup","reason":"done"})");
    ASSERT_EQ(bridge.failures.size(), 1u);
    EXPECT_EQ(bridge.failures[0].first, "hangup");
    EXPECT_NE(bridge.failures[0].second.find("done"), std::string::npos);

    p.on_mark_played("greeting", true, bridge);
    p.on_dtmf('#', bridge);
    p.on_stop(bridge);
    ASSERT_EQ(bridge.events("mark").size(), 1u);
    EXPECT_TRUE(bool(bridge.events("mark")[0]["cleared"]));
    EXPECT_EQ(std::string_view(bridge.events("dtmf")[0]["digit"]), "#");
    EXPECT_EQ(bridge.events("stop").size(), 1u);
}

TEST(bridge_audio_protocol, malformed_control_fails_the_upstream) {
    for (const auto& [json, label] :
         {std::pair{"{\"type\":", "invalid_json"}, std::pair{R"({"type":"mark"})", "bad_event"},
          std::pair{R"({"name":"x"})", "invalid_json"}}) {
        auto p = make("pcmu");
        recording_bridge bridge;
        deliver(p, bridge, json);
        ASSERT_EQ(bridge.failures.size(), 1u) << json;
        EXPECT_EQ(bridge.failures[0].first, label) << json;
    }
}

TEST(bridge_audio_protocol, xoff_when_the_queue_fills_and_xon_once_it_drains) {
    auto p = make("pcmu", {1000, 800});
    recording_bridge bridge;
    p.on_start(a_call(), bridge);
    const std::vector<std::uint8_t> second(8000, 0x55); // 1 s
    p.on_upstream_binary({second.data(), 4000}, bridge);
    EXPECT_TRUE(bridge.events("xoff").empty());
    p.on_upstream_binary({second.data(), 4000}, bridge);
    ASSERT_EQ(bridge.events("xoff").size(), 1u);
    EXPECT_EQ(int64_t(bridge.events("xoff")[0]["queuedMs"]), 1000);
    EXPECT_TRUE(p.flow_off());
    // The caller hears; each caller frame re-checks the queue.
    bridge.heard = 100;
    p.on_caller_audio(std::vector<std::uint8_t>(160, 0xff), 0, bridge);
    EXPECT_TRUE(bridge.events("xon").empty());
    bridge.heard = 200;
    p.on_caller_audio(std::vector<std::uint8_t>(160, 0xff), 20, bridge);
    ASSERT_EQ(bridge.events("xon").size(), 1u);
    EXPECT_EQ(int64_t(bridge.events("xon")[0]["queuedMs"]), 800);
    EXPECT_FALSE(p.flow_off());

    // Audio a clear dropped is not queued any more.
    p.on_upstream_binary(second, bridge); // 1800 ms queued: xoff
    EXPECT_EQ(bridge.events("xoff").size(), 2u);
    deliver(p, bridge, R"({"type":"clear"})");
    EXPECT_EQ(bridge.events("xon").size(), 2u);
}

TEST(bridge_audio_protocol, options_are_validated_with_the_flag_to_fix) {
    upstream_config u;
    u.name = "bot";
    u.protocol = "audio";
    EXPECT_EQ(validate_audio_options(u), "");
    u.options = {{"format", "l16-24000"}, {"xoff_ms", "2000"}};
    EXPECT_EQ(validate_audio_options(u), "");
    auto made = make_audio_protocol(u);
    EXPECT_EQ(dynamic_cast<audio_protocol&>(*made).format().rate_hz, 24000u);
    u.options = {{"format", "l16-44100"}};
    EXPECT_NE(validate_audio_options(u).find("--bridge-option bot=format=l16-44100"),
              std::string::npos);
    u.options = {{"xoff_ms", "1000"}, {"xon_ms", "1000"}};
    EXPECT_FALSE(validate_audio_options(u).empty());
    u.options = {{"voice", "x"}};
    EXPECT_FALSE(validate_audio_options(u).empty());
    EXPECT_EQ(dynamic_cast<audio_protocol&>(*make_audio_protocol(upstream_config{})).format(),
              *parse_audio_format("l16-16000"));
}

} // namespace
} // namespace callstream::server::bridge
