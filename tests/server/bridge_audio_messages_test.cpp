#include <gtest/gtest.h>
#include <simdjson.h>

#include "server/bridge/audio_protocol_messages.hpp"

namespace callstream::server::bridge {
namespace {

struct parsed {
    std::error_code ec;
    audio_control control;
    std::string storage;
};

parsed parse(std::string_view json) {
    static simdjson::ondemand::parser parser;
    parsed p;
    p.storage = std::string(json) + std::string(simdjson::SIMDJSON_PADDING, '\0');
    p.ec =
        parse_audio_control(parser, {p.storage.data(), json.size()}, p.storage.size(), p.control);
    return p;
}

TEST(bridge_audio_messages, formats_parse_and_size_their_frames) {
    EXPECT_EQ(parse_audio_format("pcmu")->frame_bytes(), 160u);
    EXPECT_EQ(parse_audio_format("l16-8000")->frame_bytes(), 320u);
    EXPECT_EQ(parse_audio_format("l16-16000")->frame_bytes(), 640u);
    EXPECT_EQ(parse_audio_format("l16-24000")->frame_bytes(), 960u);
    EXPECT_EQ(parse_audio_format("l16-24000")->to_string(), "l16-24000");
    EXPECT_EQ(parse_audio_format("pcmu")->to_string(), "pcmu");
    EXPECT_FALSE(parse_audio_format("l16-48000"));
    EXPECT_FALSE(parse_audio_format("l16"));
    EXPECT_FALSE(parse_audio_format("pcmu-16000"));
    EXPECT_FALSE(parse_audio_format(""));
}

TEST(bridge_audio_messages, start_frame_carries_the_call_and_the_format) {
    call_metadata call;
    call.call_sid = "CA1";
    call.stream_sid = "MZ1";
    call.account_sid = "AC1";
    call.from = "+15550001111";
    call.to = "+15550002222";
    call.custom_parameters = {{"bridge", "bot"}, {"lang", "fr\"CA"}};
    std::string out;
    append_audio_start(out, call, *parse_audio_format("l16-24000"));
    simdjson::dom::parser parser;
    simdjson::dom::element e;
    ASSERT_FALSE(parser.parse(out).get(e)) << out;
    EXPECT_EQ(std::string_view(e["type"]), "start");
    EXPECT_EQ(int64_t(e["version"]), 1);
    EXPECT_EQ(std::string_view(e["callSid"]), "CA1");
    EXPECT_EQ(std::string_view(e["streamSid"]), "MZ1");
    EXPECT_EQ(std::string_view(e["accountSid"]), "AC1");
    EXPECT_EQ(std::string_view(e["from"]), "+15550001111");
    EXPECT_EQ(std::string_view(e["to"]), "+15550002222");
    EXPECT_EQ(std::string_view(e["customParameters"]["lang"]), "fr\"CA");
    EXPECT_EQ(std::string_view(e["format"]["encoding"]), "l16");
    EXPECT_EQ(int64_t(e["format"]["sampleRate"]), 24000);
    EXPECT_EQ(int64_t(e["format"]["channels"]), 1);
    EXPECT_EQ(int64_t(e["frameMs"]), 20);
}

TEST(bridge_audio_messages, events_to_the_app_are_exact) {
    std::string out;
    append_audio_mark(out, "greeting", false);
    EXPECT_EQ(out, R"({"type":"mark","name":"greeting","cleared":false})");
    out.clear();
    append_audio_mark(out, "greeting", true);
    EXPECT_EQ(out, R"({"type":"mark","name":"greeting","cleared":true})");
    out.clear();
    append_audio_dtmf(out, '#');
    EXPECT_EQ(out, R"({"type":"dtmf","digit":"#"})");
    out.clear();
    append_audio_flow(out, true, 18000);
    EXPECT_EQ(out, R"({"type":"xoff","queuedMs":18000})");
    out.clear();
    append_audio_flow(out, false, 16000);
    EXPECT_EQ(out, R"({"type":"xon","queuedMs":16000})");
    out.clear();
    append_audio_stop(out, "caller hung up");
    EXPECT_EQ(out, R"({"type":"stop","reason":"caller hung up"})");
}

TEST(bridge_audio_messages, parses_control_from_the_app) {
    auto p = parse(R"({"name":"m1","type":"mark"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.control.type, audio_control_type::mark);
    EXPECT_EQ(p.control.name, "m1");
    p = parse(R"({"type":"clear"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.control.type, audio_control_type::clear);
    p = parse(R"({"type":"hangup","reason":"done"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.control.type, audio_control_type::hangup);
    EXPECT_EQ(p.control.reason, "done");
    // Newer apps may send types this version does not know.
    p = parse(R"({"type":"transfer","to":"+1555"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.control.type, audio_control_type::other);
    EXPECT_EQ(p.control.type_name, "transfer");
}

TEST(bridge_audio_messages, refuses_malformed_control) {
    EXPECT_EQ(parse("{").ec, audio_protocol_errc::invalid_json);
    EXPECT_EQ(parse("\"clear\"").ec, audio_protocol_errc::invalid_json);
    EXPECT_EQ(parse(R"({"name":"x"})").ec, audio_protocol_errc::missing_type);
    EXPECT_EQ(parse(R"({"type":"mark"})").ec, audio_protocol_errc::bad_field);
    EXPECT_EQ(parse(R"({"type":"mark","name":3})").ec, audio_protocol_errc::bad_field);
    EXPECT_EQ(parse(R"({"type":"clear"}x)").ec, audio_protocol_errc::invalid_json);
}

} // namespace
} // namespace callstream::server::bridge
