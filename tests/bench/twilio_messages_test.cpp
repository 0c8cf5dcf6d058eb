#include <array>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "bench/load/twilio_messages.hpp"
#include "codec/base64.hpp"
#include "codec/g711.hpp"

namespace {

using namespace callstream::bench;

// Parses `text` with simdjson (a real JSON parser, not ours) and returns the document's object.
struct parsed {
    simdjson::padded_string text;
    simdjson::dom::parser parser;
    simdjson::dom::element root;
    explicit parsed(std::string_view t) : text(t) {
        const auto err = parser.parse(text).get(root);
        EXPECT_FALSE(err) << simdjson::error_message(err) << " in " << t;
    }
    std::string str(std::string_view pointer) {
        std::string_view v;
        const auto err = root.at_pointer(pointer).get(v);
        EXPECT_FALSE(err) << pointer;
        return std::string(v);
    }
};

std::string base64_of_frame(std::uint8_t seed) {
    std::array<std::uint8_t, frame_bytes> ulaw{};
    for (std::size_t i = 0; i < ulaw.size(); ++i) {
        ulaw[i] = static_cast<std::uint8_t>(seed + i * 7);
    }
    return callstream::codec::base64_encode(ulaw);
}

TEST(twilio_messages, sids_are_two_letters_and_32_hex_digits) {
    std::mt19937_64 rng(1);
    const auto a = make_sid("MZ", rng);
    const auto b = make_sid("MZ", rng);
    ASSERT_EQ(a.size(), 34u);
    EXPECT_EQ(a.substr(0, 2), "MZ");
    EXPECT_EQ(a.find_first_not_of("0123456789abcdef", 2), std::string::npos);
    EXPECT_NE(a, b);
}

TEST(twilio_messages, media_counters_stay_right_across_digit_changes) {
    media_message m("MZ0123456789abcdef0123456789abcdef");
    const auto payload = base64_of_frame(3);
    const std::string head = payload.substr(0, 8);
    for (std::uint64_t chunk : {1ull, 9ull, 10ull, 11ull, 99ull, 100ull, 5ull, 123456789ull}) {
        m.set(chunk + 1, chunk, (chunk - 1) * 20, payload, head);
        parsed p(m.view());
        EXPECT_EQ(p.str("/event"), "media");
        EXPECT_EQ(p.str("/sequenceNumber"), std::to_string(chunk + 1));
        EXPECT_EQ(p.str("/media/chunk"), std::to_string(chunk));
        EXPECT_EQ(p.str("/media/timestamp"), std::to_string((chunk - 1) * 20));
        EXPECT_EQ(p.str("/media/track"), "inbound");
        EXPECT_EQ(p.str("/media/payload"), payload);
        EXPECT_EQ(p.str("/streamSid"), "MZ0123456789abcdef0123456789abcdef");
    }
    // Same digit counts reuse the layout; only changes of width lay it out again.
    const auto before = m.relayouts();
    m.set(123456789, 123456788, 123456787ull * 20, payload, head);
    EXPECT_EQ(m.relayouts(), before);
}

TEST(twilio_messages, frame_id_survives_a_g711_round_trip_and_base64) {
    for (unsigned id : {0u, 1u, 0x7Fu, 0xF7u, 0x1234u, 0xFFFFu}) {
        std::array<std::uint8_t, frame_bytes> ulaw{};
        ulaw.fill(0x55);
        embed_frame_id(ulaw, static_cast<std::uint16_t>(id));
        for (std::size_t i = 0; i < frame_id_bytes; ++i) {
            EXPECT_NE(ulaw[i], 0x7F);
        }
        // What a decoding echo server returns: mu-law -> PCM -> mu-law.
        std::array<std::uint8_t, frame_bytes> echoed{};
        for (std::size_t i = 0; i < ulaw.size(); ++i) {
            echoed[i] =
                callstream::codec::linear_to_ulaw(callstream::codec::ulaw_to_linear(ulaw[i]));
        }
        const auto b64 = callstream::codec::base64_encode(echoed);
        const auto got = frame_id_from_base64(b64);
        ASSERT_TRUE(got.has_value()) << id;
        EXPECT_EQ(*got, id);
    }
    EXPECT_FALSE(frame_id_from_base64(base64_of_frame(0)).has_value());
    EXPECT_FALSE(frame_id_from_base64("abc").has_value());
}

TEST(twilio_messages, payload_is_found_in_compact_and_spaced_json) {
    EXPECT_EQ(find_payload(R"({"event":"media","media":{"payload":"AAEC"}})"), "AAEC");
    EXPECT_EQ(find_payload(R"({"event": "media", "media": {"payload": "AAEC"}})"), "AAEC");
    EXPECT_EQ(find_payload(R"({"event":"mark","mark":{"name":"x"}})"), "");
    EXPECT_EQ(find_payload(R"({"payload" 1})"), "");
}

TEST(twilio_messages, control_messages_are_twilio_shaped_json) {
    std::mt19937_64 rng(2);
    const call_identity call{make_sid("AC", rng), make_sid("CA", rng), make_sid("MZ", rng)};
    {
        parsed p(connected_message());
        EXPECT_EQ(p.str("/event"), "connected");
        EXPECT_EQ(p.str("/protocol"), "Call");
    }
    {
        parsed p(start_message(call, R"("app":"echo","caller":"+15551234567")"));
        EXPECT_EQ(p.str("/event"), "start");
        EXPECT_EQ(p.str("/sequenceNumber"), "1");
        EXPECT_EQ(p.str("/start/accountSid"), call.account_sid);
        EXPECT_EQ(p.str("/start/callSid"), call.call_sid);
        EXPECT_EQ(p.str("/start/streamSid"), call.stream_sid);
        EXPECT_EQ(p.str("/streamSid"), call.stream_sid);
        EXPECT_EQ(p.str("/start/tracks/0"), "inbound");
        EXPECT_EQ(p.str("/start/customParameters/app"), "echo");
        EXPECT_EQ(p.str("/start/mediaFormat/encoding"), "audio/x-mulaw");
        std::int64_t rate = 0;
        EXPECT_FALSE(p.root.at_pointer("/start/mediaFormat/sampleRate").get(rate));
        EXPECT_EQ(rate, 8000);
    }
    {
        parsed p(dtmf_message(call, 42, '#'));
        EXPECT_EQ(p.str("/event"), "dtmf");
        EXPECT_EQ(p.str("/sequenceNumber"), "42");
        EXPECT_EQ(p.str("/dtmf/track"), "inbound_track");
        EXPECT_EQ(p.str("/dtmf/digit"), "#");
    }
    {
        parsed p(mark_message(call, 43, 7));
        EXPECT_EQ(p.str("/event"), "mark");
        EXPECT_EQ(p.str("/mark/name"), "mark-7");
    }
    {
        parsed p(stop_message(call, 44));
        EXPECT_EQ(p.str("/event"), "stop");
        EXPECT_EQ(p.str("/sequenceNumber"), "44");
        EXPECT_EQ(p.str("/stop/callSid"), call.call_sid);
        EXPECT_EQ(p.str("/streamSid"), call.stream_sid);
    }
}

} // namespace
