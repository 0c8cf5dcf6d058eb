// RFC 6455 violations written byte by byte to a real socket after a hand-made upgrade. Each must
// get its own close code from the server and the TCP connection closed, while a well-behaved
// stream on the same server keeps echoing. (Beast enforces the framing rules; these tests pin
// down what the server actually sends.)
#include <gtest/gtest.h>

#include "tests/e2e/e2e_helpers.hpp"
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
        // A 2^63 length (the most significant bit MUST be 0, §5.2). Beast refuses it as over
        // read_message_max before looking at that bit, so the code is 1009, not 1002.
        {"length_2_pow_63", make_header_64(fin | op_text, 1ULL << 63), 1009},
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
        // RFC 6455 §7.4.2 defines no codes at or above 5000; Beast accepts them and echoes the
        // code back (as Autobahn's 7.13 cases allow: behaviour there is implementation-defined).
        {"close_5000_echoed", make_frame(fin | op_close, close_payload(5000)), 5000},
        // §5.5.1: a close body is empty or starts with a 2-byte code.
        {"close_one_byte", make_frame(fin | op_close, "\x03"), 1002},
        // §5.5.1: the close reason must be UTF-8 too; Beast fails it as a protocol error.
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

// After failing a connection Beast half-closes and waits for the peer's FIN, with no deadline of
// its own for that wait (Beast 1.81 does not re-arm its timer when it starts failing the
// connection). What bounds it is the WebSocket idle timer still running from the open state: a
// violator that never closes its socket is dropped within --idle-timeout, not held forever.
TEST(raw_protocol_early, violator_that_keeps_its_socket_is_dropped_at_the_idle_timeout) {
    server_process server({"--idle-timeout", "2"});
    good_stream good(server.port(), 1);
    raw_socket raw(server.port());
    ASSERT_EQ(raw.upgrade(), 101);
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 2));
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, "{}", false)));
    const auto close = raw.read_close();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1002);
    EXPECT_TRUE(raw.wait_eof());
    // raw stays open; the server must still let go of the stream. The good stream keeps
    // talking meanwhile (so its own idle timer never fires).
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    bool released = false;
    while (!released && std::chrono::steady_clock::now() < deadline) {
        ASSERT_TRUE(good.echoes());
        released = metric_value(metrics_text(server.port()), "callstream_streams_active") == 1;
    }
    EXPECT_TRUE(released);
    EXPECT_TRUE(good.echoes());
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
