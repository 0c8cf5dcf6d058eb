#include <gtest/gtest.h>

#include "server/form_codec.hpp"

using namespace callstream::server;

TEST(form_codec, encodes_plus_ampersand_space_and_repeated_keys) {
    const form_params p = {{"To", "sip:alice@example.com?X-A=1&X-B=2"},
                           {"From", "+15551234567"},
                           {"StatusCallbackEvent", "initiated"},
                           {"StatusCallbackEvent", "answered"},
                           {"Twiml", "<Response> </Response>"}};
    EXPECT_EQ(encode_form(p), "To=sip%3Aalice%40example.com%3FX-A%3D1%26X-B%3D2&From=%2B15551234567"
                              "&StatusCallbackEvent=initiated&StatusCallbackEvent=answered"
                              "&Twiml=%3CResponse%3E+%3C%2FResponse%3E");
}

TEST(form_codec, round_trips_utf8_and_reserved_bytes) {
    const form_params p = {{"a b", "é&=+%"}, {"k", ""}, {"k", "x"}};
    const auto decoded = decode_form(encode_form(p));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, p);
}

TEST(form_codec, decodes_edge_cases_and_rejects_bad_escapes) {
    const auto d = decode_form("a=1&&b&c=%2b+x&=v");
    ASSERT_TRUE(d);
    EXPECT_EQ(*d, (form_params{{"a", "1"}, {"b", ""}, {"c", "+ x"}, {"", "v"}}));
    EXPECT_FALSE(decode_form("a=%G1"));
    EXPECT_FALSE(decode_form("a=%4"));
    EXPECT_FALSE(decode_form("a=%"));
    ASSERT_NE(find_form_value(*d, "c"), nullptr);
    EXPECT_EQ(*find_form_value(*d, "c"), "+ x");
    EXPECT_EQ(find_form_value(*d, "zz"), nullptr);
}
