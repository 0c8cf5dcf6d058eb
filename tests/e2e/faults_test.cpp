// Faults against the real binary: slow-loris, silent connections, half-open peers, capacity
// limits. Each fault must be cut off by the server on time while a well-behaved stream on the
// same server keeps echoing.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

namespace callstream::testing {
namespace {

using namespace std::chrono_literals;

// Keeps `good` echoing until `done` returns true or `timeout` passes; false if an echo failed.
template <typename Done>
bool echo_while(good_stream& good, Done done, std::chrono::milliseconds timeout = 20s) {
    const auto deadline = clock_type::now() + timeout;
    while (!done()) {
        if (clock_type::now() > deadline || !good.echoes()) {
            return false;
        }
        std::this_thread::sleep_for(50ms);
    }
    return true;
}

// Headers trickled one byte every 200 ms: the whole request must arrive within
// --handshake-timeout, so the server hangs up about 2 s after the first byte, mid-headers.
TEST(faults, slow_loris_is_cut_off_at_the_handshake_timeout) {
    server_process server({"--handshake-timeout", "2"});
    good_stream good(server.port(), 1);
    ASSERT_TRUE(good.echoes());

    raw_socket loris(server.port());
    const auto t0 = clock_type::now();
    const std::string request =
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    std::size_t sent = 0;
    bool cut = false;
    while (sent < request.size() && seconds_since(t0) < 15) {
        if (!loris.send(request.substr(sent, 1))) {
            cut = true;
            break;
        }
        ++sent;
        if (loris.wait_eof(200ms)) {
            cut = true;
            break;
        }
        ASSERT_TRUE(good.echoes()) << "well-behaved stream disturbed after " << sent << " bytes";
    }
    const double elapsed = seconds_since(t0);
    EXPECT_TRUE(cut) << "the server waited for the whole trickled request";
    EXPECT_LT(sent, request.size());
    EXPECT_GE(elapsed, 1.5) << "cut before the timeout";
    EXPECT_LT(elapsed, 8.0) << "cut long after the 2 s timeout";
    EXPECT_TRUE(good.echoes());
}

// A TCP connection that never sends a byte is closed after the handshake timeout.
TEST(faults, silent_connection_is_closed_after_the_handshake_timeout) {
    server_process server({"--handshake-timeout", "2"});
    good_stream good(server.port(), 1);
    raw_socket silent(server.port());
    const auto t0 = clock_type::now();
    bool closed = false;
    ASSERT_TRUE(echo_while(good, [&] { return closed = silent.wait_eof(100ms); }));
    EXPECT_TRUE(closed);
    EXPECT_GE(seconds_since(t0), 1.5);
    EXPECT_LT(seconds_since(t0), 8.0);
    // The good stream and the scrape itself.
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_connections_active", 2));
}

// A peer that upgrades, starts a stream, then neither reads nor writes (a client that vanished
// without a FIN looks like this to the server): Beast's keep-alive ping goes unanswered and the
// idle timeout closes the stream.
TEST(faults, half_open_peer_is_closed_by_the_idle_timeout) {
    server_process server({"--idle-timeout", "2"});
    good_stream good(server.port(), 1);
    raw_socket dead(server.port());
    ASSERT_EQ(dead.upgrade(), 101);
    const auto sid = twilio::stream_sid(2);
    ASSERT_TRUE(dead.send(make_frame(0x81, twilio::connected())));
    ASSERT_TRUE(dead.send(make_frame(0x81, twilio::start(sid, "CA" + sid.substr(2)))));
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 2));
    const auto t0 = clock_type::now();
    const std::string idle = "callstream_streams_closed_total{reason=\"idle_timeout\"}";
    ASSERT_TRUE(
        echo_while(good, [&] { return metric_value(metrics_text(server.port()), idle) == 1; }));
    EXPECT_GE(seconds_since(t0), 1.0);
    EXPECT_LT(seconds_since(t0), 10.0);
    EXPECT_TRUE(dead.wait_eof(5s));
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 1));
    EXPECT_TRUE(good.echoes()) << "the good stream kept echoing, so it was not idle";
}

// --max-streams 3: the fourth upgrade gets 503 with Retry-After; the three keep echoing; once
// one ends, a new stream is admitted.
TEST(faults, max_streams_refuses_the_next_upgrade_with_503) {
    server_process server({"--max-streams", "3"});
    std::vector<std::unique_ptr<good_stream>> streams;
    for (int i = 1; i <= 3; ++i) {
        streams.push_back(std::make_unique<good_stream>(server.port(), i));
        ASSERT_TRUE(streams.back()->echoes());
    }
    raw_socket fourth(server.port());
    EXPECT_EQ(fourth.upgrade(), 503);
    EXPECT_NE(fourth.response_head().find("Retry-After: 1"), std::string::npos)
        << fourth.response_head();
    EXPECT_TRUE(fourth.wait_eof());
    for (auto& s : streams) {
        EXPECT_TRUE(s->echoes());
    }
    EXPECT_EQ(metric_value(metrics_text(server.port()), "callstream_streams_refused_total"), 1);

    streams.front()->client.close();
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 2));
    good_stream again(server.port(), 9);
    EXPECT_TRUE(again.echoes());
    for (std::size_t i = 1; i < streams.size(); ++i) {
        EXPECT_TRUE(streams[i]->echoes());
    }
}

// --max-connections 3: the fourth TCP connection is closed without a byte; existing streams
// keep echoing; after one ends, new connections are served again.
TEST(faults, max_connections_closes_the_next_connection) {
    server_process server({"--max-connections", "3"});
    good_stream a(server.port(), 1);
    good_stream b(server.port(), 2);
    ASSERT_TRUE(a.echoes());
    ASSERT_TRUE(b.echoes());
    raw_socket third(server.port());
    ASSERT_EQ(third.upgrade(), 101); // proves the server counted it

    raw_socket fourth(server.port());
    ASSERT_TRUE(fourth.wait_eof(5s)) << "the connection over the limit was kept";
    EXPECT_TRUE(a.echoes());
    EXPECT_TRUE(b.echoes());

    third.send(make_frame(0x88, std::string("\x03\xE8", 2))); // close 1000
    ASSERT_TRUE(third.read_close());
    third.close();
    // The count drops once the server has torn that connection down; poll with real requests.
    const auto deadline = clock_type::now() + 10s;
    int status = 0;
    while (clock_type::now() < deadline && status != 200) {
        try {
            status = http_request(server.port(), "GET", "/healthz").status;
        } catch (const std::exception&) {
            std::this_thread::sleep_for(20ms);
        }
    }
    EXPECT_EQ(status, 200);
    EXPECT_TRUE(a.echoes());
    EXPECT_TRUE(b.echoes());
}

} // namespace
} // namespace callstream::testing
