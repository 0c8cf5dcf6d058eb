#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "codec/base64.hpp"
#include "server/bridge/openai_realtime_messages.hpp"

namespace callstream::server::bridge {
namespace {

// Parses `json` from a padded copy, as the bridge does from its read buffer. The storage is kept
// with the result because the event's views point into it.
struct parsed {
    std::error_code ec;
    realtime_event event;
    std::string storage;
};

parsed parse(std::string_view json) {
    static simdjson::ondemand::parser parser;
    parsed p;
    p.storage = std::string(json) + std::string(simdjson::SIMDJSON_PADDING, '\0');
    p.ec = parse_server_event(parser, {p.storage.data(), json.size()}, p.storage.size(), p.event);
    return p;
}

// Builders must produce JSON a strict parser accepts; returns the parsed DOM for checks.
simdjson::dom::element dom(simdjson::dom::parser& parser, const std::string& json) {
    simdjson::dom::element element;
    const auto error = parser.parse(json).get(element);
    EXPECT_FALSE(error) << json;
    return element;
}

TEST(bridge_openai_messages, session_update_forces_pcmu_both_ways_and_carries_the_config) {
    std::string out;
    append_session_update(out, {"gpt-realtime", "marin", "Be \"brief\".\n", realtime_format::pcmu});
    simdjson::dom::parser parser;
    const auto e = dom(parser, out);
    EXPECT_EQ(std::string_view(e["type"]), "session.update");
    EXPECT_EQ(std::string_view(e["session"]["type"]), "realtime");
    EXPECT_EQ(std::string_view(e["session"]["model"]), "gpt-realtime");
    EXPECT_EQ(std::string_view(e["session"]["instructions"]), "Be \"brief\".\n");
    EXPECT_EQ(std::string_view(e["session"]["audio"]["input"]["format"]["type"]), "audio/pcmu");
    EXPECT_EQ(std::string_view(e["session"]["audio"]["output"]["format"]["type"]), "audio/pcmu");
    EXPECT_EQ(std::string_view(e["session"]["audio"]["output"]["voice"]), "marin");
    EXPECT_EQ(std::string_view(e["session"]["audio"]["input"]["turn_detection"]["type"]),
              "server_vad");
    // G.711 takes no rate: the API rejects the key.
    EXPECT_TRUE(e["session"]["audio"]["input"]["format"]["rate"].error());
}

TEST(bridge_openai_messages, session_update_asks_pcm_at_24k_and_leaves_out_empty_fields) {
    std::string out;
    append_session_update(out, {"", "", "", realtime_format::pcm24});
    simdjson::dom::parser parser;
    const auto e = dom(parser, out);
    for (const char* direction : {"input", "output"}) {
        EXPECT_EQ(std::string_view(e["session"]["audio"][direction]["format"]["type"]),
                  "audio/pcm");
        EXPECT_EQ(int64_t(e["session"]["audio"][direction]["format"]["rate"]), 24000);
    }
    EXPECT_TRUE(e["session"]["model"].error());
    EXPECT_TRUE(e["session"]["instructions"].error());
    EXPECT_TRUE(e["session"]["audio"]["output"]["voice"].error());
}

TEST(bridge_openai_messages, client_events_are_valid_json_with_the_documented_fields) {
    simdjson::dom::parser parser;
    const std::vector<std::uint8_t> ulaw = {0xff, 0x7f, 0x00, 0x10, 0x80};
    std::string out;
    append_input_audio(out, ulaw);
    auto e = dom(parser, out);
    EXPECT_EQ(std::string_view(e["type"]), "input_audio_buffer.append");
    EXPECT_EQ(std::string_view(e["audio"]), codec::base64_encode(ulaw));

    // Appending reuses the buffer: a second event after clear() is identical.
    const std::string first = out;
    out.clear();
    append_input_audio(out, ulaw);
    EXPECT_EQ(out, first);

    out.clear();
    append_item_truncate(out, "item_\"x", 1234);
    e = dom(parser, out);
    EXPECT_EQ(std::string_view(e["type"]), "conversation.item.truncate");
    EXPECT_EQ(std::string_view(e["item_id"]), "item_\"x");
    EXPECT_EQ(int64_t(e["content_index"]), 0);
    EXPECT_EQ(int64_t(e["audio_end_ms"]), 1234);

    out.clear();
    append_response_cancel(out);
    EXPECT_EQ(out, R"({"type":"response.cancel"})");
    out.clear();
    append_response_create(out);
    EXPECT_EQ(out, R"({"type":"response.create"})");
}

TEST(bridge_openai_messages, parses_ga_and_beta_audio_deltas_in_any_field_order) {
    for (
        const char* json : {
            R"({"type":"response.output_audio.delta","event_id":"e1","response_id":"r1","item_id":"i1","output_index":0,"content_index":0,"delta":"//8="})",
            R"({"delta":"//8=","item_id":"i1","response_id":"r1","type":"response.audio.delta"})",
        }) {
        const auto p = parse(json);
        ASSERT_FALSE(p.ec) << p.ec.message();
        EXPECT_EQ(p.event.type, realtime_event_type::audio_delta);
        EXPECT_EQ(p.event.item_id, "i1");
        EXPECT_EQ(p.event.response_id, "r1");
        EXPECT_EQ(p.event.delta, "//8=");
    }
}

TEST(bridge_openai_messages, parses_effective_formats_of_ga_and_beta_sessions) {
    auto p = parse(R"({"type":"session.updated","event_id":"e","session":{"type":"realtime",
        "object":"realtime.session","id":"sess_1","model":"gpt-realtime","output_modalities":["audio"],
        "audio":{"input":{"format":{"type":"audio/pcmu"},"transcription":null,"noise_reduction":null,
        "turn_detection":{"type":"server_vad","threshold":0.5}},
        "output":{"format":{"type":"audio/pcm","rate":24000},"voice":"marin","speed":1.0}},
        "tools":[],"max_output_tokens":"inf"}})");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.event.type, realtime_event_type::session_updated);
    EXPECT_EQ(p.event.input_format, realtime_format::pcmu);
    EXPECT_EQ(p.event.output_format, realtime_format::pcm24);

    p = parse(R"({"type":"session.created","session":{"input_audio_format":"g711_ulaw",
        "output_audio_format":"pcm16","voice":"alloy"}})");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.event.type, realtime_event_type::session_created);
    EXPECT_EQ(p.event.input_format, realtime_format::pcmu);
    EXPECT_EQ(p.event.output_format, realtime_format::pcm24);

    // audio/pcm at any other rate is one this bridge cannot carry.
    p = parse(
        R"({"type":"session.updated","session":{"audio":{"output":{"format":{"type":"audio/pcm","rate":16000}}}}})");
    ASSERT_FALSE(p.ec) << p.ec.message();
    EXPECT_EQ(p.event.output_format, realtime_format::unknown);
    EXPECT_EQ(p.event.output_format_name, "audio/pcm");
    EXPECT_EQ(p.event.input_format, realtime_format::unknown);
}

TEST(bridge_openai_messages, parses_barge_in_response_and_error_events) {
    auto p = parse(
        R"({"type":"input_audio_buffer.speech_started","audio_start_ms":1000,"item_id":"in_1"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::speech_started);
    EXPECT_EQ(p.event.audio_ms, 1000);

    p = parse(
        R"({"type":"response.created","response":{"object":"realtime.response","id":"resp_1","status":"in_progress","output":[]}})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::response_created);
    EXPECT_EQ(p.event.response_id, "resp_1");
    EXPECT_EQ(p.event.response_status, "in_progress");

    p = parse(
        R"({"type":"response.done","response":{"id":"resp_1","status":"cancelled","status_details":{"type":"cancelled","reason":"turn_detected"}}})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::response_done);
    EXPECT_EQ(p.event.response_status, "cancelled");

    p = parse(
        R"({"type":"error","event_id":"e","error":{"type":"invalid_request_error","code":"response_cancel_not_active","message":"no active response","param":null,"event_id":null}})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::error);
    EXPECT_EQ(p.event.error_type, "invalid_request_error");
    EXPECT_EQ(p.event.error_code, "response_cancel_not_active");
    EXPECT_EQ(p.event.error_message, "no active response");

    p = parse(R"({"type":"error","error":{"type":"server_error","code":null,"message":null}})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.error_code, "");

    // Events the bridge does not use parse as `other`, keeping their name.
    p = parse(R"({"type":"rate_limits.updated","rate_limits":[{"name":"tokens","limit":1}]})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::other);
    EXPECT_EQ(p.event.type_name, "rate_limits.updated");
    // A transcript delta's "delta" is text, not audio, and its type says so.
    p = parse(R"({"type":"response.output_audio_transcript.delta","delta":"Hel"})");
    ASSERT_FALSE(p.ec);
    EXPECT_EQ(p.event.type, realtime_event_type::other);
}

TEST(bridge_openai_messages, refuses_malformed_events_with_a_reason) {
    EXPECT_EQ(parse("{\"type\":\"error\"").ec, realtime_errc::invalid_json);
    EXPECT_EQ(parse("not json").ec, realtime_errc::invalid_json);
    EXPECT_EQ(parse("[1,2]").ec, realtime_errc::invalid_json);
    EXPECT_EQ(parse(R"({"type":"a"} {"type":"b"})").ec, realtime_errc::invalid_json);
    EXPECT_EQ(parse(R"({"event_id":"e"})").ec, realtime_errc::missing_type);
    EXPECT_EQ(parse(R"({"type":7})").ec, realtime_errc::missing_type);
    EXPECT_EQ(parse(R"({"type":"response.output_audio.delta","item_id":5,"delta":"AA=="})").ec,
              realtime_errc::bad_field);
    EXPECT_EQ(parse(R"({"type":"session.updated","session":{"audio":{"input":{"format":7}}}})").ec,
              realtime_errc::bad_field);
    EXPECT_EQ(parse(R"({"type":"error","error":"boom"})").ec, realtime_errc::bad_field);
}

} // namespace
} // namespace callstream::server::bridge
