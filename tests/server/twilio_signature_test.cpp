#include <gtest/gtest.h>

#include "server/twilio/signature.hpp"

using namespace callstream::server;

namespace {

const form_fields vector_params = {{"CallSid", "CA1234567890ABCDE"},
                                   {"Caller", "+12349013030"},
                                   {"Digits", "1234"},
                                   {"From", "+12349013030"},
                                   {"To", "+18005551212"}};
const std::string vector_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const std::string body = R"({"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"})";
const std::string body_hash = "5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";

} // namespace

TEST(twilio_signature, matches_twilio_form_vector) {
    EXPECT_EQ(twilio_signature("12345", vector_url, vector_params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

TEST(twilio_signature, matches_second_form_vector_and_ignores_param_order) {
    form_fields p = {{"To", "+18005551212"},
                     {"From", "+14158675310"},
                     {"Digits", "1234"},
                     {"Caller", "+14158675310"},
                     {"CallSid", "CA1234567890ABCDE"}};
    EXPECT_EQ(twilio_signature("12345", vector_url, p), "GvWf1cFY/Q7PnoempGyD5oXAezc=");
}

TEST(twilio_signature, validates_vector_and_rejects_tampering) {
    const std::string sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    EXPECT_TRUE(twilio_validate("12345", sig, vector_url, vector_params));
    EXPECT_FALSE(twilio_validate("12346", sig, vector_url, vector_params));
    EXPECT_FALSE(twilio_validate("12345", "", vector_url, vector_params));
    EXPECT_FALSE(
        twilio_validate("12345", "0/KCTR6DLpKmkAf8muzZqo1nDgQ", vector_url, vector_params));
    EXPECT_FALSE(
        twilio_validate("12345", "1/KCTR6DLpKmkAf8muzZqo1nDgQ=", vector_url, vector_params));
    EXPECT_FALSE(twilio_validate("12345", sig, "https://mycompany.com/myapp.php?foo=1&bar=3",
                                 vector_params));
    EXPECT_FALSE(
        twilio_validate("12345", sig, "http://mycompany.com/myapp.php?foo=1&bar=2", vector_params));
    auto tampered = vector_params;
    tampered[2].second = "1235";
    EXPECT_FALSE(twilio_validate("12345", sig, vector_url, tampered));
    auto extra = vector_params;
    extra.push_back({"Extra", ""});
    EXPECT_FALSE(twilio_validate("12345", sig, vector_url, extra));
}

TEST(twilio_signature, accepts_url_with_or_without_port) {
    const std::string sig = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";
    // Signed without a port; the request arrives as seen with :443.
    EXPECT_TRUE(twilio_validate("12345", sig, "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                                vector_params));
    // Signed with :443; validated against the URL without it.
    const std::string with_port_sig =
        twilio_signature("12345", "https://mycompany.com:443/myapp.php?foo=1&bar=2", vector_params);
    EXPECT_NE(with_port_sig, sig);
    EXPECT_TRUE(twilio_validate("12345", with_port_sig, vector_url, vector_params));
    // Like twilio-node, the port-less form is always tried, so any port matches a signature made
    // without one; but a signature made over :8443 does not match :443 or another host.
    EXPECT_TRUE(twilio_validate("12345", sig, "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
                                vector_params));
    const std::string sig_8443 = twilio_signature(
        "12345", "https://mycompany.com:8443/myapp.php?foo=1&bar=2", vector_params);
    EXPECT_FALSE(twilio_validate("12345", sig_8443, vector_url, vector_params));
    EXPECT_FALSE(twilio_validate("12345", sig, "https://mycompany.org/myapp.php?foo=1&bar=2",
                                 vector_params));
}

TEST(twilio_signature, url_variants) {
    EXPECT_EQ(twilio_url_variants("https://a.example/x?y=1"),
              (std::vector<std::string>{"https://a.example/x?y=1", "https://a.example:443/x?y=1"}));
    EXPECT_EQ(twilio_url_variants("http://a.example:8080/x"),
              (std::vector<std::string>{"http://a.example/x", "http://a.example:8080/x"}));
    EXPECT_EQ(twilio_url_variants("wss://a.example/media-stream"),
              (std::vector<std::string>{"wss://a.example/media-stream",
                                        "wss://a.example:443/media-stream"}));
    EXPECT_EQ(twilio_swap_ws_scheme("https://a.example/m"), "wss://a.example/m");
    EXPECT_EQ(twilio_swap_ws_scheme("wss://a.example/m"), "https://a.example/m");
    EXPECT_EQ(twilio_swap_ws_scheme("http://a.example/m"), "ws://a.example/m");
    EXPECT_EQ(twilio_swap_ws_scheme("ftp://a.example/m"), "ftp://a.example/m");
}

TEST(twilio_signature, repeated_keys_use_distinct_sorted_values) {
    // twilio-node: Array.from(new Set(values)).sort(), each appended as name+value.
    const std::string url = "https://example.com/status";
    const form_fields repeated = {
        {"Event", "ringing"}, {"A", "1"}, {"Event", "answered"}, {"Event", "ringing"}};
    const form_fields canonical = {{"A", "1"}, {"Event", "answered"}, {"Event", "ringing"}};
    EXPECT_EQ(twilio_signature("tok", url, repeated), twilio_signature("tok", url, canonical));
    EXPECT_NE(twilio_signature("tok", url, repeated),
              twilio_signature("tok", url, {{"A", "1"}, {"Event", "ringing"}}));
}

TEST(twilio_signature, websocket_upgrade_accepts_wss_and_https_forms) {
    const std::string wss = "wss://abc.ngrok-free.app/media-stream";
    const std::string sig = twilio_signature("tok", wss, {});
    EXPECT_TRUE(twilio_validate_upgrade("tok", sig, wss));
    EXPECT_TRUE(twilio_validate_upgrade("tok", sig, "https://abc.ngrok-free.app/media-stream"));
    EXPECT_TRUE(twilio_validate_upgrade("tok", sig, "wss://abc.ngrok-free.app:443/media-stream"));
    EXPECT_FALSE(twilio_validate_upgrade("tok", sig, "wss://abc.ngrok-free.app/media-streams"));
    EXPECT_FALSE(twilio_validate_upgrade("tok2", sig, wss));
    const std::string https_sig =
        twilio_signature("tok", "https://abc.ngrok-free.app:443/media-stream", {});
    EXPECT_TRUE(twilio_validate_upgrade("tok", https_sig, wss));
}

TEST(twilio_signature, body_sha256_vector) {
    EXPECT_EQ(sha256_hex(body), body_hash);
    const std::string url = "https://example.com/myapp?bodySHA256=" + body_hash;
    EXPECT_EQ(twilio_signature("12345", url, {}), "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=");
    EXPECT_TRUE(twilio_validate_with_body("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", url, body));
    // Tampered body, tampered hash, wrong token, missing parameter.
    EXPECT_FALSE(
        twilio_validate_with_body("12345", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", url, body + " "));
    std::string bad_hash_url = url;
    bad_hash_url.back() = '8';
    EXPECT_FALSE(twilio_validate_with_body("12345", twilio_signature("12345", bad_hash_url, {}),
                                           bad_hash_url, body));
    EXPECT_FALSE(twilio_validate_with_body("54321", "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=", url, body));
    EXPECT_FALSE(twilio_validate_with_body("12345", twilio_signature("12345", "https://e.com/", {}),
                                           "https://e.com/", body));
}

TEST(twilio_signature, constant_time_equal) {
    EXPECT_TRUE(constant_time_equal("abc", "abc"));
    EXPECT_TRUE(constant_time_equal("", ""));
    EXPECT_FALSE(constant_time_equal("abc", "abd"));
    EXPECT_FALSE(constant_time_equal("abc", "abcd"));
}
