// The opening handshake's pure parts: the accept key of RFC 6455 section 1.3's example, the
// checks a request must pass, and the 101 response's bytes.
#include <gtest/gtest.h>

#include "server/media/websocket_upgrade.hpp"

namespace callstream::server {
namespace {

http_request upgrade(std::string_view key, std::string_view version = "13") {
    http_request req{http::verb::get, "/media-stream", 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    if (!key.empty()) {
        req.set(http::field::sec_websocket_key, key);
    }
    if (!version.empty()) {
        req.set(http::field::sec_websocket_version, version);
    }
    return req;
}

TEST(websocket_upgrade, accept_key_of_the_rfc_example) {
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(websocket_upgrade, a_good_request_gets_the_101) {
    const auto req = upgrade("dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_FALSE(refuse_websocket_handshake(req));
    const auto res = websocket_upgrade_response(req);
    EXPECT_EQ(res.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0U);
    EXPECT_NE(res.find("\r\nUpgrade: websocket\r\n"), std::string::npos);
    EXPECT_NE(res.find("\r\nConnection: Upgrade\r\n"), std::string::npos);
    EXPECT_NE(res.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
              std::string::npos);
    EXPECT_EQ(res.substr(res.size() - 4), "\r\n\r\n");
}

TEST(websocket_upgrade, bad_requests_are_refused_with_a_reason) {
    const auto missing_key = refuse_websocket_handshake(upgrade(""));
    ASSERT_TRUE(missing_key);
    EXPECT_EQ(missing_key->result(), http::status::bad_request);
    // 15 bytes, and 24 characters that are not base64.
    EXPECT_TRUE(refuse_websocket_handshake(upgrade("AAAAAAAAAAAAAAAAAAAA")));
    EXPECT_TRUE(refuse_websocket_handshake(upgrade("!!!!!!!!!!!!!!!!!!!!!!==")));
    const auto old_version = refuse_websocket_handshake(upgrade("dGhlIHNhbXBsZSBub25jZQ==", "8"));
    ASSERT_TRUE(old_version);
    EXPECT_EQ(old_version->result(), http::status::upgrade_required);
    EXPECT_EQ((*old_version)[http::field::sec_websocket_version], "13");
    auto no_host = upgrade("dGhlIHNhbXBsZSBub25jZQ==");
    no_host.erase(http::field::host);
    EXPECT_TRUE(refuse_websocket_handshake(no_host));
}

} // namespace
} // namespace callstream::server
