// The bridge's side of the opening handshake: the request it sends an upstream, and every rule
// of RFC 6455 section 4.2.2 its response must pass (with the reason the call's failure carries).
#include <array>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "server/bridge/upstream_handshake.hpp"
#include "server/media/websocket_upgrade.hpp"

namespace callstream::server::bridge {
namespace {

namespace http = boost::beast::http;

constexpr std::array<std::uint8_t, 16> rfc_nonce{'t', 'h', 'e', ' ', 's', 'a', 'm', 'p',
                                                 'l', 'e', ' ', 'n', 'o', 'n', 'c', 'e'};

http::response<http::string_body> accepted(std::string_view key) {
    http::response<http::string_body> res{http::status::switching_protocols, 11};
    res.set(http::field::upgrade, "WebSocket");
    res.set(http::field::connection, "keep-alive, Upgrade");
    res.set(http::field::sec_websocket_accept, websocket_accept_key(key));
    return res;
}

TEST(upstream_handshake, the_key_is_the_nonce_in_base64) {
    EXPECT_EQ(websocket_client_key(rfc_nonce), "dGhlIHNhbXBsZSBub25jZQ==");
}

TEST(upstream_handshake, the_request_carries_the_upgrade_and_the_configured_headers) {
    const std::vector<std::pair<std::string, std::string>> headers{
        {"Authorization", "Bearer sk-test"}, {"OpenAI-Beta", "realtime=v1"}};
    upgrade_request_fields f;
    f.host = "bot.example:8443";
    f.target = "/v1/realtime?model=m";
    f.key = websocket_client_key(rfc_nonce);
    f.user_agent = "callstream/test";
    f.headers = &headers;
    f.subprotocol = "callstream.audio.v1";
    std::string refused;
    const auto req = websocket_upgrade_request(f, &refused);
    EXPECT_TRUE(refused.empty());
    EXPECT_EQ(req.method(), http::verb::get);
    EXPECT_EQ(req.target(), "/v1/realtime?model=m");
    EXPECT_EQ(req.version(), 11);
    EXPECT_EQ(req[http::field::host], "bot.example:8443");
    EXPECT_EQ(req[http::field::upgrade], "websocket");
    EXPECT_EQ(req[http::field::connection], "Upgrade");
    EXPECT_EQ(req[http::field::sec_websocket_key], "dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_EQ(req[http::field::sec_websocket_version], "13");
    EXPECT_EQ(req[http::field::sec_websocket_protocol], "callstream.audio.v1");
    EXPECT_EQ(req["Authorization"], "Bearer sk-test");
    EXPECT_EQ(req["OpenAI-Beta"], "realtime=v1");
}

TEST(upstream_handshake, a_header_that_could_split_the_request_is_not_sent) {
    const std::vector<std::pair<std::string, std::string>> headers{{"X-Ok", "fine"},
                                                                   {"X-Bad", "a\r\nInjected: yes"}};
    upgrade_request_fields f;
    f.host = "h";
    f.target = "/";
    f.key = websocket_client_key(rfc_nonce);
    f.headers = &headers;
    std::string refused;
    const auto req = websocket_upgrade_request(f, &refused);
    EXPECT_EQ(refused, "X-Bad");
    EXPECT_EQ(req["X-Ok"], "fine");
    EXPECT_EQ(req.find("X-Bad"), req.end());
    EXPECT_EQ(req.find("Injected"), req.end());
}

TEST(upstream_handshake, a_good_101_is_accepted) {
    const auto key = websocket_client_key(rfc_nonce);
    bool mismatch = true;
    EXPECT_EQ(check_upgrade_response(accepted(key), key, "", &mismatch), "");
    EXPECT_FALSE(mismatch);
    auto with_protocol = accepted(key);
    with_protocol.set(http::field::sec_websocket_protocol, "callstream.audio.v1");
    EXPECT_EQ(check_upgrade_response(with_protocol, key, "callstream.audio.v1", &mismatch), "");
}

TEST(upstream_handshake, every_rule_of_the_response_is_checked_with_a_reason) {
    const auto key = websocket_client_key(rfc_nonce);
    bool mismatch = false;
    auto not_101 = accepted(key);
    not_101.result(http::status::unauthorized);
    EXPECT_NE(check_upgrade_response(not_101, key, "", &mismatch).find("HTTP 401"),
              std::string::npos);

    auto no_upgrade = accepted(key);
    no_upgrade.set(http::field::upgrade, "h2c");
    EXPECT_NE(check_upgrade_response(no_upgrade, key, "", &mismatch).find("Upgrade"),
              std::string::npos);

    auto no_connection = accepted(key);
    no_connection.set(http::field::connection, "close");
    EXPECT_NE(check_upgrade_response(no_connection, key, "", &mismatch).find("Connection"),
              std::string::npos);

    auto wrong_accept = accepted(key);
    wrong_accept.set(http::field::sec_websocket_accept, websocket_accept_key("other"));
    EXPECT_NE(check_upgrade_response(wrong_accept, key, "", &mismatch).find("Accept"),
              std::string::npos);

    auto extension = accepted(key);
    extension.set(http::field::sec_websocket_extensions, "permessage-deflate");
    EXPECT_NE(check_upgrade_response(extension, key, "", &mismatch).find("extension"),
              std::string::npos);
    EXPECT_FALSE(mismatch);

    auto other_protocol = accepted(key);
    other_protocol.set(http::field::sec_websocket_protocol, "v2");
    EXPECT_NE(check_upgrade_response(other_protocol, key, "v1", &mismatch).find("'v2'"),
              std::string::npos);
    EXPECT_TRUE(mismatch);
    EXPECT_NE(check_upgrade_response(accepted(key), key, "v1", &mismatch), "");
    EXPECT_TRUE(mismatch);
}

} // namespace
} // namespace callstream::server::bridge
