#include <gtest/gtest.h>
#include <simdjson.h>

#include "server/twilio/media_messages.hpp"

namespace callstream::server {
namespace {

// Parses `json` from a padded copy, as the session does from its read buffer.
struct parsed {
    std::error_code ec;
    inbound_message msg;
    pipeline::stream_info start;
    std::string storage;
};

parsed parse(std::string_view json) {
    static simdjson::ondemand::parser parser;
    parsed p;
    p.storage = std::string(json) + std::string(simdjson::SIMDJSON_PADDING, '\0');
    p.ec = parse_inbound(parser, {p.storage.data(), json.size()}, p.storage.size(), p.msg, p.start);
    return p;
}

TEST(twilio_protocol, parses_twilio_start_message) {
    const auto p = parse(R"({
      "event": "start", "sequenceNumber": "1",
      "start": {
        "accountSid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "streamSid":  "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "callSid":    "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX",
        "tracks": [ "inbound" ],
        "customParameters": { "FirstName": "Jane", "app": "record,play" },
        "mediaFormat": { "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1 }
      },
      "streamSid": "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"})");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.msg.event, inbound_event::start);
    EXPECT_EQ(p.start.call_sid, "CAXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    EXPECT_EQ(p.start.account_sid, "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    EXPECT_EQ(p.start.stream_sid, "MZXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX");
    EXPECT_EQ(p.start.parameter("FirstName"), "Jane");
    EXPECT_EQ(p.start.parameter("app"), "record,play");
    EXPECT_EQ(p.start.parameter("missing", "dflt"), "dflt");
}

TEST(twilio_protocol, parses_media_in_any_field_order) {
    // Views point into the parser, so each message is checked before the next parse.
    for (
        const char* json :
        {R"({"event":"media","sequenceNumber":"4","media":{"track":"inbound","chunk":"2","timestamp":"5","payload":"no+JhoaJjpzS"},"streamSid":"MZ1"})",
         R"({"streamSid":"MZ1","media":{"payload":"no+JhoaJjpzS","timestamp":"5"},"event":"media"})"}) {
        const auto p = parse(json);
        ASSERT_FALSE(p.ec) << p.ec.message();
        EXPECT_EQ(p.msg.event, inbound_event::media);
        EXPECT_EQ(p.msg.payload, "no+JhoaJjpzS");
        EXPECT_EQ(p.msg.timestamp_ms, 5);
        EXPECT_EQ(p.msg.stream_sid, "MZ1");
    }
}

TEST(twilio_protocol, accepts_numeric_timestamps) {
    const auto p =
        parse(R"({"event":"media","media":{"timestamp":1234,"payload":""},"streamSid":"MZ1"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.msg.timestamp_ms, 1234);
}

TEST(twilio_protocol, parses_dtmf_mark_stop_connected) {
    EXPECT_EQ(parse(R"({"event":"connected","protocol":"Call","version":"1.0.0"})").msg.event,
              inbound_event::connected);
    const auto d = parse(
        R"({"event":"dtmf","streamSid":"MZ1","sequenceNumber":"5","dtmf":{"track":"inbound_track","digit":"#"}})");
    ASSERT_FALSE(d.ec);
    EXPECT_EQ(d.msg.digit, "#");
    const auto m = parse(
        R"({"event":"mark","sequenceNumber":"4","streamSid":"MZ1","mark":{"name":"my label"}})");
    EXPECT_EQ(m.msg.mark_name, "my label");
    const auto s = parse(
        R"({"event":"stop","sequenceNumber":"5","stop":{"accountSid":"AC1","callSid":"CA1"},"streamSid":"MZ1"})");
    EXPECT_EQ(s.msg.event, inbound_event::stop);
}

TEST(twilio_protocol, unknown_event_is_not_an_error) {
    const auto p = parse(R"({"event":"future-thing","streamSid":"MZ1","x":[1,{"y":2}]})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.msg.event, inbound_event::unknown);
    EXPECT_EQ(p.msg.event_name, "future-thing");
}

TEST(twilio_protocol, escaped_strings_are_unescaped) {
    const auto p = parse(R"({"event":"mark","streamSid":"MZ1","mark":{"name":"a\"b\u00e9"}})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.msg.mark_name, "a\"b\xc3\xa9");
}

TEST(twilio_protocol, refuses_malformed_messages) {
    EXPECT_EQ(parse("not json").ec, protocol_errc::invalid_json);
    EXPECT_EQ(parse(R"({"event":"media",)").ec, protocol_errc::invalid_json);
    EXPECT_EQ(parse(R"([1,2])").ec, protocol_errc::invalid_json);
    EXPECT_EQ(parse(R"({"streamSid":"MZ1"})").ec, protocol_errc::missing_event);
    EXPECT_EQ(parse(R"({"event":5})").ec, protocol_errc::missing_event);
    EXPECT_EQ(parse(R"({"event":"media","streamSid":"MZ1"})").ec, protocol_errc::missing_payload);
    EXPECT_EQ(parse(R"({"event":"media","media":{"payload":1},"streamSid":"MZ1"})").ec,
              protocol_errc::bad_field);
    EXPECT_EQ(parse(R"({"event":"media","media":{"payload":""}})").ec,
              protocol_errc::missing_stream_sid);
    EXPECT_EQ(parse(R"({"event":"start","start":{"streamSid":"MZ1"}})").ec,
              protocol_errc::bad_start);
    EXPECT_EQ(parse(R"({"event":"start","start":{"callSid":"CA1","customParameters":{"a":1}}})").ec,
              protocol_errc::bad_field);
    EXPECT_EQ(
        parse(R"({"event":"media","media":{"payload":"","timestamp":"12x"},"streamSid":"M"})").ec,
        protocol_errc::bad_field);
}

TEST(twilio_protocol, outbound_messages_are_exact_json) {
    outbound_writer w;
    w.set_stream_sid("MZ\"1");
    std::string out;
    const std::uint8_t ulaw[] = {0xFF, 0x00, 0x7E};
    w.media(ulaw, out);
    EXPECT_EQ(out, R"({"event":"media","streamSid":"MZ\"1","media":{"payload":"/wB+"}})");
    w.mark("turn\n1", out);
    EXPECT_EQ(out, R"({"event":"mark","streamSid":"MZ\"1","mark":{"name":"turn\n1"}})");
    w.clear(out);
    EXPECT_EQ(out, R"({"event":"clear","streamSid":"MZ\"1"})");
}

} // namespace
} // namespace callstream::server
