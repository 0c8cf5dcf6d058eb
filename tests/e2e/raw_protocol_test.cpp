// RFC 6455 violations written byte by byte to a real socket after a hand-made upgrade. Each must
// get its own close code from the server and the TCP connection closed, while a well-behaved
// stream on the same server keeps echoing. (codec/websocket_frame.cpp enforces the framing
// rules; these tests pin down what the server actually sends.)
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_media.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

namespace callstream::testing {
namespace {

std::string close_payload(int code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>((code >> 8) & 0xFF));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

struct violation {
    const char* name;
    std::string bytes;
    int expected_code;
};

void PrintTo(const violation& v, std::ostream* os) {
    *os << v.name;
}

std::vector<violation> violations() {
    return {
        // RFC 6455 §5.1: a server MUST close the connection on an unmasked client frame.
        {"unmasked_frame", make_frame(fin | op_text, R"({"event":"connected"})", false), 1002},
        // §5.2: RSV bits set without a negotiated extension.
        {"rsv1", make_frame(fin | rsv1 | op_text, R"({"event":"connected"})"), 1002},
        {"rsv2", make_frame(fin | rsv2 | op_text, R"({"event":"connected"})"), 1002},
        {"rsv3", make_frame(fin | rsv3 | op_text, R"({"event":"connected"})"), 1002},
        // §5.2: reserved non-control (0x3) and control (0xB) opcodes.
        {"opcode_3", make_frame(fin | 0x3, "x"), 1002},
        {"opcode_b", make_frame(fin | 0xB, "x"), 1002},
        // §5.5: control frames must not be fragmented nor longer than 125 bytes.
        {"fragmented_ping", make_frame(op_ping, "hi"), 1002},
        {"ping_126_bytes", make_frame(fin | op_ping, std::string(126, 'p')), 1002},
        // §5.4: a continuation frame with no message in progress.
        {"continuation_without_start", make_frame(fin | op_cont, "orphan"), 1002},
        // A 2^63 length: the most significant bit MUST be 0 (§5.2), a protocol error before it
        // is a size.
        {"length_2_pow_63", make_header_64(fin | op_text, 1ULL << 63), 1002},
        // A length over --max-message-bytes (64 KiB) in the header alone: refused before the
        // body is read.
        {"length_over_64k", make_header_64(fin | op_text, 64 * 1024 + 1), 1009},
        // §5.2: the minimal number of bytes MUST be used to encode the length.
        {"non_minimal_length",
         std::string("\x81\xFE\x00\x05\x37\xFA\x21\x3D", 8) + make_frame(0, "hello").substr(6),
         1002},
        // §8.1: text frames must be UTF-8 (0xC3 0x28 is an invalid 2-byte sequence).
        {"invalid_utf8", make_frame(fin | op_text, "{\"event\":\"\xC3\x28\"}"), 1007},
        {"invalid_utf8_across_fragments",
         make_frame(op_text, "{\"event\":\"\xE2\x82") + make_frame(fin | op_cont, "\x28\"}"), 1007},
        // §7.4: 1005/1006/1015 must not be sent; <1000 and >=5000 are not valid codes.
        {"close_1005", make_frame(fin | op_close, close_payload(1005)), 1002},
        {"close_1006", make_frame(fin | op_close, close_payload(1006)), 1002},
        {"close_1015", make_frame(fin | op_close, close_payload(1015)), 1002},
        {"close_999", make_frame(fin | op_close, close_payload(999)), 1002},
        // RFC 6455 §7.4.2 defines no codes at or above 5000 (nor 1012-2999 in its own range):
        // refused as a protocol error (Autobahn's 7.13 cases leave this to the implementation).
        {"close_5000", make_frame(fin | op_close, close_payload(5000)), 1002},
        {"close_1012", make_frame(fin | op_close, close_payload(1012)), 1002},
        // §5.5.1: a close body is empty or starts with a 2-byte code.
        {"close_one_byte", make_frame(fin | op_close, "\x03"), 1002},
        // §5.5.1: the close reason must be UTF-8 too; failed as a protocol error.
        {"close_reason_invalid_utf8", make_frame(fin | op_close, close_payload(1000, "\xC3\x28")),
         1002},
        // Valid closes are echoed back with the peer's code (§5.5.1), 4000 included.
        {"close_1000_echoed", make_frame(fin | op_close, close_payload(1000, "bye")), 1000},
        {"close_4000_echoed", make_frame(fin | op_close, close_payload(4000)), 4000},
    };
}

class raw_protocol : public ::testing::TestWithParam<violation> {};

TEST_P(raw_protocol, closes_with_the_right_code_and_spares_other_streams) {
    const violation& v = GetParam();
    server_process server;
    good_stream good(server.port(), 1);
    ASSERT_TRUE(good.echoes());

    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101) << raw.response_head();
    // A live stream first, so the violation arrives mid-call as it would from a broken peer.
    const auto sid = twilio::stream_sid(2);
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, twilio::connected())));
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)))));
    ASSERT_TRUE(raw.send(v.bytes));

    const auto close = raw.read_close();
    ASSERT_TRUE(close) << v.name << ": no close frame";
    EXPECT_EQ(close->close_code(), v.expected_code) << v.name << ": " << close->close_reason();
    EXPECT_TRUE(raw.wait_eof()) << v.name << ": server kept the TCP connection open";
    raw.close(); // Beast's teardown waits for our FIN (RFC 6455 §7.1.1) before it lets go

    // The other stream did not notice.
    EXPECT_TRUE(good.echoes());
    EXPECT_TRUE(good.echoes());
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 1));
    EXPECT_TRUE(server.running());
}

INSTANTIATE_TEST_SUITE_P(rfc6455, raw_protocol, ::testing::ValuesIn(violations()),
                         [](const auto& info) { return std::string(info.param.name); });

// A violation before any Twilio message (straight after the upgrade) is handled the same way.
TEST(raw_protocol_early, unmasked_frame_before_start_is_closed_1002) {
    server_process server;
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, "{}", false)));
    const auto close = raw.read_close();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1002);
    EXPECT_TRUE(raw.wait_eof());
    raw.close();
    EXPECT_TRUE(wait_for_metric_value(
        server.port(), "callstream_streams_closed_total{reason=\"websocket_error\"}", 1));
}

// After failing a connection the server sends FIN and reads until the peer's (RFC 6455 §7.1.1:
// the server closes the TCP connection first, without resetting it over unread bytes). A
// violator that never closes its socket is cut off at the close deadline (--handshake-timeout),
// not held forever.
TEST(raw_protocol_early, violator_that_keeps_its_socket_is_dropped_at_the_close_deadline) {
    server_process server({"--idle-timeout", "30", "--handshake-timeout", "2"});
    good_stream good(server.port(), 1);
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 2));
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, "{}", false)));
    const auto close = raw.read_close();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1002);
    EXPECT_TRUE(raw.wait_eof());
    // raw stays open (and keeps sending: the server reads and drops it); the server must still
    // close the connection, at which point our writes fail (RST). The good stream is unaffected.
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 1));
    const auto t0 = std::chrono::steady_clock::now();
    bool cut = false;
    while (!cut && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
        ASSERT_TRUE(good.echoes());
        cut = !raw.send("junk after the close");
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_TRUE(cut) << "the server kept the violator's connection open";
    EXPECT_GE(seconds_since(t0), 1.0); // held for the close deadline, not reset at once
    EXPECT_TRUE(good.echoes());
}

// The opening handshake is callstream's: the RFC 6455 §1.3 example key gets the RFC's accept
// value, and a request the handshake cannot accept is refused with a status saying why.
TEST(raw_protocol_early, upgrade_answers_the_rfc_example_key) {
    server_process server;
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    EXPECT_NE(raw.response_head().find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
              std::string::npos)
        << raw.response_head();
}

TEST(raw_protocol_early, upgrade_with_a_bad_version_or_key_is_refused) {
    server_process server;
    const std::string head = "GET /media-stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             "Upgrade: websocket\r\nConnection: Upgrade\r\n";
    {
        raw_socket raw(server.port());
        raw.send(head + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 8\r\n\r\n");
        EXPECT_EQ(raw.read_response_status(), 426);
        EXPECT_NE(raw.response_head().find("Sec-WebSocket-Version: 13"), std::string::npos);
    }
    {
        raw_socket raw(server.port());
        raw.send(head + "Sec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n\r\n");
        EXPECT_EQ(raw.read_response_status(), 400);
    }
    {
        raw_socket raw(server.port());
        raw.send(head + "Sec-WebSocket-Version: 13\r\n\r\n");
        EXPECT_EQ(raw.read_response_status(), 400);
    }
    EXPECT_TRUE(metric_value(metrics_text(server.port()), "callstream_streams_active") == 0);
    EXPECT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
}

// A client may send its first frames right behind the upgrade request, in the same segment
// (before it has seen the 101): the bytes the HTTP reader took past the request are frames.
TEST(raw_protocol_early, frames_in_the_same_write_as_the_upgrade_request_are_served) {
    server_process server;
    raw_socket raw(server.port());
    const auto sid = twilio::stream_sid(3);
    std::string bytes = "GET /media-stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                        "Sec-WebSocket-Version: 13\r\n\r\n";
    bytes += make_frame(fin | op_text, twilio::connected());
    bytes += make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)));
    bytes += media_frame(sid, 2);
    ASSERT_TRUE(raw.send(bytes));
    ASSERT_EQ(raw.read_response_status(), 101);
    EXPECT_EQ(read_media(raw, 1), std::vector<int>{2});
}

// Many frames in one segment: each is handled (in order) before the server reads again, and
// every echo comes back.
TEST(raw_protocol_early, a_burst_of_frames_in_one_write_is_echoed_in_order) {
    server_process server;
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    const auto sid = twilio::stream_sid(4);
    std::string bytes = make_frame(fin | op_text, twilio::connected()) +
                        make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)));
    std::vector<int> expected;
    for (int seq = 2; seq < 2 + 20; ++seq) {
        bytes += media_frame(sid, seq);
        expected.push_back(seq == 0x7F ? 0xFF : seq); // μ-law negative zero comes back positive
    }
    ASSERT_TRUE(raw.send(bytes));
    EXPECT_EQ(read_media(raw, 20), expected);
}

// A caller's last frame and its FIN in one segment (TCP_CORK holds the frame until the FIN
// joins it): the read that takes the frame cannot see the end behind it, and no later epoll
// edge comes for it, so the server must learn of the end another way (drained_read.hpp's
// peer_end_watch). The frame is echoed, then the server ends the connection: at once, not at
// the idle timeout. Twenty rounds on one server, each a new connection.
TEST(raw_protocol_early, a_last_frame_and_the_fin_in_one_segment_end_the_session) {
    server_process server;
    for (int round = 0; round < 20; ++round) {
        raw_socket raw(server.port());
        ASSERT_EQ(raw.upgrade(), 101);
        const auto sid = twilio::stream_sid(40 + round);
        ASSERT_TRUE(raw.send(make_frame(fin | op_text, twilio::connected()) +
                             make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)))));
        EXPECT_EQ(read_media(raw, 0), std::vector<int>{});
        std::this_thread::sleep_for(std::chrono::milliseconds(20)); // start handled, read drained
        const int on = 1;
        const int off = 0;
        ASSERT_EQ(::setsockopt(raw.fd(), IPPROTO_TCP, TCP_CORK, &on, sizeof(on)), 0);
        ASSERT_TRUE(raw.send(media_frame(sid, 2)));
        ASSERT_EQ(::shutdown(raw.fd(), SHUT_WR), 0);
        ASSERT_EQ(::setsockopt(raw.fd(), IPPROTO_TCP, TCP_CORK, &off, sizeof(off)), 0);
        EXPECT_EQ(read_media(raw, 1), std::vector<int>{2}) << "round " << round;
        EXPECT_TRUE(raw.wait_eof(std::chrono::seconds(3))) << "round " << round;
    }
    EXPECT_TRUE(server.wait_for_log("reason=vanished"));
}

// Pings are answered with their payload, between a message's fragments too, and the fragmented
// message is served as one.
TEST(raw_protocol_early, pings_get_pongs_and_fragments_reassemble) {
    server_process server;
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    const auto sid = twilio::stream_sid(5);
    const std::string start = twilio::start(sid, "CA" + sid.substr(2));
    std::string bytes = make_frame(fin | op_text, twilio::connected());
    bytes += make_frame(op_text, start.substr(0, 10));
    bytes += make_frame(fin | op_ping, "between");
    bytes += make_frame(op_cont, start.substr(10, 20));
    bytes += make_frame(fin | op_cont, start.substr(30));
    bytes += make_frame(fin | op_ping, "after");
    bytes += media_frame(sid, 2);
    ASSERT_TRUE(raw.send(bytes));
    std::vector<std::string> pongs;
    std::vector<int> media;
    while (pongs.size() < 2 || media.empty()) {
        const auto f = raw.read_frame();
        ASSERT_TRUE(f) << "connection ended";
        ASSERT_NE(f->opcode, 0x8) << f->close_code() << " " << f->close_reason();
        if (f->opcode == 0xA) {
            pongs.push_back(f->payload);
        } else if (const auto p = media_payload(f->payload); p && !p->empty()) {
            media.push_back((*p)[0]);
        }
    }
    EXPECT_EQ(pongs, (std::vector<std::string>{"between", "after"}));
    EXPECT_EQ(media, std::vector<int>{2});
}

// Garbage instead of an HTTP request: 400 and the connection closed; the server keeps serving.
TEST(raw_protocol_early, garbage_request_line_gets_400) {
    server_process server;
    raw_socket raw(server.port());
    ASSERT_TRUE(raw.send(std::string("\x16\x03\x01\x00\x05hello\r\n\r\n", 14)));
    EXPECT_EQ(raw.read_response_status(), 400);
    EXPECT_TRUE(raw.wait_eof());
    EXPECT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
}

} // namespace
} // namespace callstream::testing
