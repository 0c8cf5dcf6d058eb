// Graceful shutdown and reload against the real binary: SIGTERM closes every stream with 1001
// and a reason and exits 0 within --shutdown-timeout; a second signal exits at once; SIGHUP
// re-reads the TLS certificate for new connections while open wss streams keep going.
#include <csignal>
#include <thread>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <gtest/gtest.h>
#include <openssl/x509.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

namespace callstream::testing {
namespace {

using namespace std::chrono_literals;

TEST(shutdown, sigterm_closes_every_stream_with_1001_and_exits_0) {
    server_process server({"--shutdown-timeout", "10"});
    std::vector<std::unique_ptr<good_stream>> streams;
    for (int i = 1; i <= 5; ++i) {
        streams.push_back(std::make_unique<good_stream>(server.port(), i));
        ASSERT_TRUE(streams.back()->echoes());
    }
    // One more connection that upgraded but never started: it is a stream too.
    ws_client unstarted(server.port());
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 6));

    const auto t0 = clock_type::now();
    server.signal(SIGTERM);
    for (auto& s : streams) {
        const auto closed = s->client.wait_close(10s);
        EXPECT_TRUE(closed.closed) << closed.error;
        EXPECT_EQ(closed.code, 1001);
        EXPECT_EQ(closed.reason, "server shutting down");
    }
    const auto closed = unstarted.wait_close(10s);
    EXPECT_EQ(closed.code, 1001);
    const int status = server.stop(0, 15s); // signal 0: only wait for the exit
    EXPECT_EQ(status, 0) << server.log();
    EXPECT_LT(seconds_since(t0), 10.0);
    const auto log = server.log();
    EXPECT_NE(log.find("shutdown_requested"), std::string::npos);
    EXPECT_NE(log.find("stopped"), std::string::npos);
    EXPECT_EQ(log.find("shutdown_deadline_passed"), std::string::npos) << log;
}

// New connections are refused once shutdown begins (the listener is closed first).
// With --monitor the context holds a timer bound to a network thread's io_context; the server
// must destroy it before that io_context (a sanitizer build reported a heap-use-after-free at
// exit and exited 1 when it did not).
TEST(shutdown, sigterm_with_the_monitor_on_exits_0) {
    server_process server({"--monitor", "--api-token", "shutdown-test-token"});
    const auto token = http_request(server.port(), "POST", "/monitor/token", "",
                                    {{"Authorization", "Bearer shutdown-test-token"}});
    ASSERT_EQ(token.status, 200) << token.body;
    good_stream stream(server.port(), 1);
    ASSERT_TRUE(stream.echoes());
    server.signal(SIGTERM);
    EXPECT_EQ(stream.client.wait_close(10s).code, 1001);
    const int status = server.stop(0, 15s);
    EXPECT_EQ(status, 0) << server.log();
}

TEST(shutdown, no_new_connections_after_sigterm) {
    server_process server({"--shutdown-timeout", "10", "--handshake-timeout", "30"});
    // A peer that never answers our close frame holds shutdown open for a while.
    raw_socket stuck(server.port());
    ASSERT_EQ(stuck.upgrade(), 101);
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 1));
    server.signal(SIGTERM);
    ASSERT_TRUE(server.wait_for_log("shutdown_requested"));
    const auto close = stuck.read_close();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->close_code(), 1001);
    EXPECT_THROW(http_request(server.port(), "GET", "/healthz"), std::exception);
    EXPECT_TRUE(server.running());
}

// A peer that never completes the close handshake cannot hold the process past
// --shutdown-timeout: it exits 0 at the deadline and says how many streams were left.
TEST(shutdown, exits_at_the_shutdown_timeout_when_a_peer_never_answers) {
    server_process server({"--shutdown-timeout", "2", "--handshake-timeout", "30"});
    good_stream good(server.port(), 1);
    raw_socket stuck(server.port());
    ASSERT_EQ(stuck.upgrade(), 101);
    ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 2));
    const auto t0 = clock_type::now();
    server.signal(SIGTERM);
    EXPECT_EQ(good.client.wait_close(10s).code, 1001);
    const int status = server.stop(0, 15s);
    const double elapsed = seconds_since(t0);
    EXPECT_EQ(status, 0) << server.log();
    EXPECT_GE(elapsed, 1.5);
    EXPECT_LT(elapsed, 8.0);
    EXPECT_NE(server.log().find("shutdown_deadline_passed"), std::string::npos);
}

// While a graceful shutdown waits, a second SIGTERM (or SIGINT) exits at once.
TEST(shutdown, second_signal_exits_at_once) {
    for (const int second : {SIGTERM, SIGINT}) {
        server_process server({"--shutdown-timeout", "60", "--handshake-timeout", "60"});
        raw_socket stuck(server.port());
        ASSERT_EQ(stuck.upgrade(), 101);
        ASSERT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 1));
        server.signal(SIGTERM);
        ASSERT_TRUE(server.wait_for_log("shutdown_requested"));
        ASSERT_TRUE(stuck.read_close()); // shutdown is now waiting for this peer
        EXPECT_TRUE(server.running());
        const auto t0 = clock_type::now();
        const int status = server.stop(second, 10s);
        EXPECT_LT(seconds_since(t0), 3.0);
        EXPECT_EQ(status, 1) << server.log();
        EXPECT_NE(server.log().find("shutdown_forced"), std::string::npos);
    }
}

// The subject CN of the certificate the server presents to a new TLS connection.
std::string served_common_name(std::uint16_t port) {
    namespace net = boost::asio;
    net::io_context ioc;
    net::ssl::context ctx(net::ssl::context::tls_client);
    ctx.set_verify_mode(net::ssl::verify_none);
    net::ssl::stream<net::ip::tcp::socket> stream(ioc, ctx);
    stream.next_layer().connect({net::ip::make_address("127.0.0.1"), port});
    stream.handshake(net::ssl::stream_base::client);
    X509* cert = SSL_get1_peer_certificate(stream.native_handle());
    if (cert == nullptr) {
        return {};
    }
    char cn[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn));
    X509_free(cert);
    boost::system::error_code ignored;
    stream.next_layer().close(ignored);
    return cn;
}

TEST(reload, sighup_rereads_the_certificate_and_open_streams_keep_echoing) {
    temp_dir dir;
    ASSERT_TRUE(make_self_signed_cert(dir, "first.callstream.test", "cert.pem", "key.pem"));
    ASSERT_TRUE(make_self_signed_cert(dir, "second.callstream.test", "cert2.pem", "key2.pem"));
    server_process server({"--tls-cert", dir.file("cert.pem"), "--tls-key", dir.file("key.pem")});
    EXPECT_EQ(served_common_name(server.port()), "first.callstream.test");
    good_stream wss(server.port(), 1, true);
    ASSERT_TRUE(wss.echoes());

    // Swap both files atomically (as a certificate renewal would) and reload.
    ASSERT_EQ(std::rename(dir.file("cert2.pem").c_str(), dir.file("cert.pem").c_str()), 0);
    ASSERT_EQ(std::rename(dir.file("key2.pem").c_str(), dir.file("key.pem").c_str()), 0);
    server.signal(SIGHUP);
    ASSERT_TRUE(server.wait_for_log("tls_reloaded"));
    EXPECT_EQ(served_common_name(server.port()), "second.callstream.test");
    EXPECT_TRUE(wss.echoes());
    good_stream fresh(server.port(), 2, true);
    EXPECT_TRUE(fresh.echoes());
    EXPECT_TRUE(wss.echoes());
    EXPECT_TRUE(server.running());
}

// A broken certificate on reload keeps the old one serving and logs why.
TEST(reload, sighup_with_a_broken_certificate_keeps_the_old_one) {
    temp_dir dir;
    ASSERT_TRUE(make_self_signed_cert(dir, "first.callstream.test", "cert.pem", "key.pem"));
    server_process server({"--tls-cert", dir.file("cert.pem"), "--tls-key", dir.file("key.pem")});
    good_stream wss(server.port(), 1, true);
    ASSERT_TRUE(wss.echoes());
    ASSERT_EQ(run_command("echo garbage > " + dir.file("cert.pem")), 0);
    server.signal(SIGHUP);
    ASSERT_TRUE(server.wait_for_log("tls_reload_failed"));
    EXPECT_EQ(served_common_name(server.port()), "first.callstream.test");
    EXPECT_TRUE(wss.echoes());
}

// Without TLS, SIGHUP is harmless.
TEST(reload, sighup_without_tls_changes_nothing) {
    server_process server;
    good_stream good(server.port(), 1);
    server.signal(SIGHUP);
    EXPECT_TRUE(good.echoes());
    EXPECT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
    EXPECT_TRUE(server.running());
}

} // namespace
} // namespace callstream::testing
