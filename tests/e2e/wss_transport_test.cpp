// The media WebSocket over wss:// once its TLS session has changed hands at the upgrade
// (server/app/tls_socket.hpp), driven by a raw TLS client (OpenSSL on a plain socket): frames
// sent right behind the upgrade request, in its record or in records of their own, are served;
// a record forged under the TLS layer ends its own connection and no other; and the close
// handshake ends with close_notify both ways.
#include <chrono>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_media.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

namespace callstream::testing {
namespace {

const std::string upgrade_request =
    "GET /media-stream HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    "Sec-WebSocket-Version: 13\r\n\r\n";

std::string start_frames(const std::string& sid) {
    return make_frame(fin | op_text, twilio::connected()) +
           make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)));
}

// Upgrades `raw`, starts call `n` and sees its first frame echoed.
void start_echoing_call(raw_socket& raw, int n) {
    const auto sid = twilio::stream_sid(n);
    ASSERT_TRUE(raw.send(upgrade_request));
    ASSERT_EQ(raw.read_response_status(), 101) << raw.response_head();
    ASSERT_TRUE(raw.send(start_frames(sid) + media_frame(sid, 2)));
    ASSERT_EQ(read_media(raw, 1), std::vector<int>{2});
}

class wss_transport : public ::testing::Test {
  protected:
    void SetUp() override {
        ASSERT_TRUE(make_self_signed_cert(dir_));
        server_.emplace(std::vector<std::string>{"--tls-cert", dir_.file("cert.pem"), "--tls-key",
                                                 dir_.file("key.pem")});
    }
    std::uint16_t port() const { return server_->port(); }

    temp_dir dir_;
    std::optional<server_process> server_;
};

// Frames in the same TLS record as the request: past the request in the HTTP reader's buffer.
TEST_F(wss_transport, frames_in_the_record_of_the_upgrade_request_are_served) {
    raw_socket raw(port(), 0, raw_socket::transport::tls);
    const auto sid = twilio::stream_sid(1);
    ASSERT_TRUE(raw.send(upgrade_request + start_frames(sid) + media_frame(sid, 2)));
    ASSERT_EQ(raw.read_response_status(), 101) << raw.response_head();
    EXPECT_EQ(read_media(raw, 1), std::vector<int>{2});
}

// Frames in records of their own, sent before the 101 came: ciphertext the server's TLS layer
// may already hold when the session changes hands, which must be read after it, in order.
TEST_F(wss_transport, frames_in_records_behind_the_upgrade_request_are_served_in_order) {
    for (int round = 0; round < 10; ++round) {
        raw_socket raw(port(), 0, raw_socket::transport::tls);
        const auto sid = twilio::stream_sid(10 + round);
        ASSERT_TRUE(raw.send(upgrade_request));
        ASSERT_TRUE(raw.send(start_frames(sid)));
        ASSERT_TRUE(raw.send(media_frame(sid, 2)));
        ASSERT_TRUE(raw.send(media_frame(sid, 3)));
        ASSERT_EQ(raw.read_response_status(), 101) << raw.response_head();
        EXPECT_EQ(read_media(raw, 2), (std::vector<int>{2, 3})) << "round " << round;
    }
}

TEST_F(wss_transport, a_forged_record_ends_its_own_connection_and_no_other) {
    good_stream good(port(), 1, true);
    ASSERT_TRUE(good.echoes());
    raw_socket raw(port(), 0, raw_socket::transport::tls);
    ASSERT_NO_FATAL_FAILURE(start_echoing_call(raw, 2));
    // An application-data record not made with the session's keys.
    std::string forged = "\x17\x03\x03";
    forged += '\0';
    forged += static_cast<char>(64);
    forged += std::string(64, 'x');
    ASSERT_TRUE(raw.send_tcp(forged));
    EXPECT_TRUE(raw.wait_eof(std::chrono::seconds(5)));
    EXPECT_TRUE(server_->wait_for_log("stream_read_failed"));
    EXPECT_TRUE(good.echoes());
    EXPECT_TRUE(good.echoes());
    EXPECT_TRUE(wait_for_metric_value(port(), "callstream_streams_active", 1));
}

TEST_F(wss_transport, the_close_handshake_ends_with_close_notify_both_ways) {
    raw_socket raw(port(), 0, raw_socket::transport::tls);
    ASSERT_NO_FATAL_FAILURE(start_echoing_call(raw, 3));
    ASSERT_TRUE(raw.send(make_frame(fin | op_close, std::string("\x03\xE8", 2))));
    const auto close = raw.read_close();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1000);
    // Then the server's close_notify (a TLS end, not a bare TCP one), which we answer.
    EXPECT_TRUE(raw.wait_eof(std::chrono::seconds(5)));
    EXPECT_TRUE(raw.saw_close_notify());
    raw.close();
    EXPECT_TRUE(wait_for_metric_value(port(), "callstream_streams_active", 0));
    EXPECT_TRUE(server_->running());
}

} // namespace
} // namespace callstream::testing
