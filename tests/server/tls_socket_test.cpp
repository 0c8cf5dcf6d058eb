// tls_socket over a real loopback TCP connection, against Asio's own TLS client: the session it
// takes over from an ssl::stream carries on both ways, records the client sent before the
// handover are read after it, key updates either way carry on, and every way a TLS stream ends
// (close_notify either side first, TCP without close_notify, a forged record) ends a read with
// the right code, whatever other sessions left in the thread's OpenSSL error queue. As a client
// (the bridge's upstream), against Asio's TLS server: it verifies the server's certificate and
// host name, and a failure reports OpenSSL's reason after alerting the server.
#include <array>
#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "server/app/tls_socket.hpp"

namespace callstream::server {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;
using namespace std::chrono_literals;

// A P-256 key and a self-signed certificate for it, in the server's context, and trusted by
// `trusting` when one is given.
void use_self_signed(net::ssl::context& ctx, net::ssl::context* trusting = nullptr) {
    EVP_PKEY* key = EVP_EC_gen("P-256");
    ASSERT_NE(key, nullptr);
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    ASSERT_GT(X509_sign(cert, key, EVP_sha256()), 0);
    ASSERT_EQ(SSL_CTX_use_certificate(ctx.native_handle(), cert), 1);
    ASSERT_EQ(SSL_CTX_use_PrivateKey(ctx.native_handle(), key), 1);
    if (trusting != nullptr) {
        ASSERT_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(trusting->native_handle()), cert), 1);
    }
    X509_free(cert);
    EVP_PKEY_free(key);
}

template <typename Done> void run_until(net::io_context& ioc, Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline) {
        ioc.run_for(10ms);
    }
    ioc.restart();
    ASSERT_TRUE(done()) << "timed out";
}

// A handshaken TLS connection on one io_context: Asio's client, and the server's ssl::stream
// until handover() gives its session to a tls_socket.
class tls_connection : public ::testing::Test {
  protected:
    void SetUp() override {
        use_self_signed(server_ctx_);
        // After the certificate: an SSL object copies its context's certificate when made.
        server_stream_ = std::make_unique<net::ssl::stream<tls_socket::socket_type>>(
            ioc_.get_executor(), server_ctx_);
        client_ctx_.set_verify_mode(net::ssl::verify_none);
        tcp::acceptor acceptor(ioc_, {net::ip::make_address("127.0.0.1"), 0});
        client_.next_layer().connect(acceptor.local_endpoint());
        // Each record goes out when written (Nagle would hold a second small one back).
        client_.next_layer().set_option(tcp::no_delay(true));
        acceptor.accept(server_stream_->next_layer());
        bool client_done = false;
        bool server_done = false;
        client_.async_handshake(net::ssl::stream_base::client, [&](const error_code& ec) {
            EXPECT_FALSE(ec) << ec.message();
            client_done = true;
        });
        server_stream_->async_handshake(net::ssl::stream_base::server, [&](const error_code& ec) {
            EXPECT_FALSE(ec) << ec.message();
            server_done = true;
        });
        run_until([&] { return client_done && server_done; });
    }

    void handover() {
        std::string why;
        server_ = tls_socket::adopt(server_stream_->native_handle(),
                                    std::move(server_stream_->next_layer()), why);
        ASSERT_TRUE(server_) << why;
        server_stream_.reset(); // Asio's engine and its reference to the session go
    }

    template <typename Done> void run_until(Done done) { server::run_until(ioc_, done); }

    // One read of the server's: {error, bytes as text}.
    std::pair<error_code, std::string> server_read() {
        std::array<char, 64 * 1024> room{};
        std::optional<std::pair<error_code, std::string>> got;
        server_->async_read_some(net::buffer(room), [&](const error_code& ec, std::size_t n) {
            got.emplace(ec, std::string(room.data(), n));
        });
        run_until([&] { return got.has_value(); });
        return got.value_or(std::pair<error_code, std::string>{net::error::timed_out, {}});
    }

    // What the server reads until it holds `bytes` bytes (or fails).
    std::string server_read_all(std::size_t bytes) {
        std::string all;
        while (all.size() < bytes) {
            auto [ec, some] = server_read();
            if (ec) {
                ADD_FAILURE() << ec.message();
                break;
            }
            all += some;
        }
        return all;
    }

    void client_write(const std::string& text) {
        bool done = false;
        net::async_write(client_, net::buffer(text), [&](const error_code& ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            done = true;
        });
        run_until([&] { return done; });
    }

    std::string client_read(std::size_t bytes) {
        std::string got(bytes, '\0');
        bool done = false;
        net::async_read(client_, net::buffer(got), [&](const error_code& ec, std::size_t) {
            EXPECT_FALSE(ec) << ec.message();
            done = true;
        });
        run_until([&] { return done; });
        return got;
    }

    // Encrypts `parts` as one gather write and sends it at once (small writes fit the socket).
    void server_write(const std::vector<std::string>& parts) {
        std::vector<net::const_buffer> list;
        for (const auto& p : parts) {
            list.emplace_back(net::buffer(p));
        }
        error_code ec;
        ASSERT_TRUE(server_->encrypt(list, ec)) << ec.message();
        EXPECT_TRUE(server_->flush_now());
    }

    net::io_context ioc_;
    net::ssl::context server_ctx_{net::ssl::context::tls_server};
    net::ssl::context client_ctx_{net::ssl::context::tls_client};
    net::ssl::stream<tcp::socket> client_{ioc_, client_ctx_};
    std::unique_ptr<net::ssl::stream<tls_socket::socket_type>> server_stream_;
    std::optional<tls_socket> server_;
};

TEST_F(tls_connection, carries_the_session_on_both_ways) {
    handover();
    client_write("hello from the caller");
    EXPECT_EQ(server_read_all(21), "hello from the caller");

    // A frame header and its payload go out together, in order.
    server_write({std::string("\x81\x05"), "reply"});
    EXPECT_EQ(client_read(7), "\x81\x05reply");
}

TEST_F(tls_connection, a_write_bigger_than_the_socket_takes_at_once_arrives_whole) {
    handover();
    // A small send buffer, so the socket cannot take it all however the kernel tunes it.
    server_->next_layer().set_option(net::socket_base::send_buffer_size(64 * 1024));
    std::string big(3 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) {
        big[i] = static_cast<char>('a' + i % 26);
    }
    std::vector<net::const_buffer> list{net::buffer(big), net::buffer("tail", 4)};
    error_code ec;
    ASSERT_TRUE(server_->encrypt(list, ec)) << ec.message();
    ASSERT_FALSE(server_->flush_now());
    bool flushed = false;
    server_->async_flush([&](const error_code& e) {
        EXPECT_FALSE(e) << e.message();
        flushed = true;
    });
    EXPECT_EQ(client_read(big.size() + 4), big + "tail");
    run_until([&] { return flushed; });
}

TEST_F(tls_connection, records_sent_before_the_handover_are_read_after_it) {
    // Two records in one burst: the server's ssl::stream reads the first, and the second waits
    // in Asio's BIO pair when the session changes hands.
    client_write("GET");
    client_write("frames sent before the 101");
    std::array<char, 3> first{};
    bool read = false;
    net::async_read(*server_stream_, net::buffer(first), [&](const error_code& ec, std::size_t) {
        EXPECT_FALSE(ec) << ec.message();
        read = true;
    });
    run_until([&] { return read; });
    EXPECT_EQ(std::string(first.data(), first.size()), "GET");
    ASSERT_GT(BIO_ctrl_pending(SSL_get_rbio(server_stream_->native_handle())), 0U)
        << "the second record was not left in the pair: the test shows nothing";
    handover();
    EXPECT_EQ(server_read_all(26), "frames sent before the 101");
}

TEST_F(tls_connection, the_peers_close_notify_is_the_end_of_the_stream_and_is_answered) {
    handover();
    bool client_shut = false;
    client_.async_shutdown([&](const error_code& ec) {
        EXPECT_FALSE(ec) << ec.message();
        client_shut = true;
    });
    EXPECT_EQ(server_read().first, net::error::eof);
    EXPECT_EQ(server_read().first, net::error::eof); // and stays the end
    server_->close_notify();
    EXPECT_TRUE(server_->flush_now());
    run_until([&] { return client_shut; }); // the client's shutdown waited for ours
}

TEST_F(tls_connection, our_close_notify_goes_out_while_a_read_waits_for_the_peers) {
    handover();
    std::array<char, 64> room{};
    std::optional<error_code> server_end;
    server_->async_read_some(net::buffer(room),
                             [&](const error_code& ec, std::size_t) { server_end = ec; });
    server_->close_notify();
    EXPECT_TRUE(server_->flush_now());
    std::array<char, 16> client_room{};
    std::optional<error_code> client_end;
    client_.async_read_some(net::buffer(client_room),
                            [&](const error_code& ec, std::size_t) { client_end = ec; });
    run_until([&] { return client_end.has_value(); });
    EXPECT_EQ(*client_end, net::error::eof) << client_end->message();
    EXPECT_FALSE(server_end.has_value()); // still waiting for the client's close_notify
    client_.async_shutdown([](const error_code&) {});
    run_until([&] { return server_end.has_value(); });
    EXPECT_EQ(*server_end, net::error::eof) << server_end->message();
}

TEST_F(tls_connection, tcp_ending_without_close_notify_is_a_truncation) {
    handover();
    client_.next_layer().shutdown(tcp::socket::shutdown_send); // a FIN
    EXPECT_EQ(server_read().first, net::ssl::error::stream_truncated);
}

TEST_F(tls_connection, a_forged_record_fails_the_read_and_every_later_use) {
    handover();
    client_write("genuine");
    EXPECT_EQ(server_read_all(7), "genuine");
    // An application-data record that was not made with the session's keys.
    std::string forged = "\x17\x03\x03";
    forged += static_cast<char>(0);
    forged += static_cast<char>(40);
    forged += std::string(40, 'x');
    net::write(client_.next_layer(), net::buffer(forged));
    // An entry another session left in this thread's error queue is not reported as ours.
    ERR_raise(ERR_LIB_SSL, SSL_R_UNEXPECTED_MESSAGE);
    const auto [ec, data] = server_read();
    EXPECT_EQ(&ec.category(), &net::error::get_ssl_category()) << ec.message();
    EXPECT_EQ(ERR_GET_REASON(static_cast<unsigned long>(ec.value())),
              SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC)
        << ec.message();
    EXPECT_EQ(ERR_peek_error(), 0UL); // and the queue is left empty
    EXPECT_TRUE(data.empty());
    EXPECT_TRUE(server_read().first); // no second try at a failed session
    error_code write_ec;
    const std::string text = "after";
    const std::array<net::const_buffer, 1> list{net::buffer(text)};
    EXPECT_FALSE(server_->encrypt(list, write_ec));
    EXPECT_TRUE(write_ec);
}

TEST_F(tls_connection, key_updates_either_way_keep_the_session_going) {
    handover();
    // Counts the KeyUpdate messages the client receives: the test shows something only if the
    // server really sent them.
    static int updates_received = 0;
    updates_received = 0;
    SSL_set_msg_callback(
        client_.native_handle(),
        [](int write_p, int, int content_type, const void* buf, std::size_t len, SSL*, void*) {
            if (write_p == 0 && content_type == SSL3_RT_HANDSHAKE && len > 0 &&
                *static_cast<const unsigned char*>(buf) == SSL3_MT_KEY_UPDATE) {
                ++updates_received;
            }
        });
    // The client asks for new keys both ways (RFC 8446 4.6.3): its KeyUpdate goes out ahead of
    // its next record, and the server's answering KeyUpdate must reach the client ahead of the
    // first record under the server's new key, or the client cannot read it.
    ASSERT_EQ(SSL_key_update(client_.native_handle(), SSL_KEY_UPDATE_REQUESTED), 1);
    client_write("under the client's new key");
    EXPECT_EQ(server_read_all(26), "under the client's new key");
    server_write({std::string("under the server's new key")});
    EXPECT_EQ(client_read(26), "under the server's new key");

    // And the server asking: the client answers with its next write, which the server reads.
    ASSERT_EQ(SSL_key_update(server_->ssl(), SSL_KEY_UPDATE_REQUESTED), 1);
    server_write({std::string("asked")});
    EXPECT_EQ(client_read(5), "asked");
    client_write("answered");
    EXPECT_EQ(server_read_all(8), "answered");
    server_write({std::string("still")});
    EXPECT_EQ(client_read(5), "still");
    EXPECT_EQ(updates_received, 2); // the server's answer, then its own request
}

TEST_F(tls_connection, errors_left_in_the_threads_queue_by_other_sessions_change_nothing) {
    handover();
    // What another connection's failed handshake on this network thread may leave behind:
    // reads and writes (which do not clear the queue first) carry on, and the end is the end.
    ERR_raise(ERR_LIB_SSL, SSL_R_UNEXPECTED_MESSAGE);
    client_write("one");
    client_write("two");
    EXPECT_EQ(server_read_all(6), "onetwo");
    server_write({std::string("reply")});
    EXPECT_EQ(client_read(5), "reply");
    bool client_shut = false;
    client_.async_shutdown([&](const error_code&) { client_shut = true; });
    EXPECT_EQ(server_read().first, net::error::eof);
    ERR_clear_error();
    server_->close_notify();
    EXPECT_TRUE(server_->flush_now());
    run_until([&] { return client_shut; });
}

// tls_socket as the client (the bridge's upstream over wss://) against Asio's TLS server.
class tls_client_session : public ::testing::Test {
  protected:
    // Connects; `trusted`: the client's context trusts the server's certificate. `host`: the
    // name the client verifies the certificate against (empty: none).
    void connect(bool trusted, const char* host) {
        use_self_signed(server_ctx_, trusted ? &client_ctx_ : nullptr);
        client_ctx_.set_verify_mode(net::ssl::verify_peer);
        server_ = std::make_unique<net::ssl::stream<tcp::socket>>(ioc_, server_ctx_);
        tcp::acceptor acceptor(ioc_, {net::ip::make_address("127.0.0.1"), 0});
        tls_socket::socket_type socket(ioc_.get_executor());
        socket.connect(acceptor.local_endpoint());
        acceptor.accept(server_->next_layer());
        std::string why;
        client_ = tls_socket::client(client_ctx_.native_handle(), std::move(socket), why);
        ASSERT_TRUE(client_) << why;
        if (host != nullptr) {
            ASSERT_EQ(SSL_set1_host(client_->ssl(), host), 1);
        }
    }

    // Both handshakes: {the client's result, the server's}.
    std::pair<error_code, error_code> handshake() {
        std::optional<error_code> client;
        std::optional<error_code> server;
        client_->async_handshake([&](const error_code& ec) { client = ec; });
        server_->async_handshake(net::ssl::stream_base::server,
                                 [&](const error_code& ec) { server = ec; });
        run_until(ioc_, [&] { return client.has_value() && server.has_value(); });
        return {client.value_or(net::error::timed_out), server.value_or(net::error::timed_out)};
    }

    net::io_context ioc_;
    net::ssl::context server_ctx_{net::ssl::context::tls_server};
    net::ssl::context client_ctx_{net::ssl::context::tls_client};
    std::unique_ptr<net::ssl::stream<tcp::socket>> server_;
    std::optional<tls_socket> client_;
};

TEST_F(tls_client_session, verifies_the_server_and_carries_data_both_ways) {
    ASSERT_NO_FATAL_FAILURE(connect(true, "localhost"));
    const auto [client, server] = handshake();
    ASSERT_FALSE(client) << client.message();
    ASSERT_FALSE(server) << server.message();
    EXPECT_EQ(SSL_get_verify_result(client_->ssl()), X509_V_OK);

    const std::string hello = "GET /bot HTTP/1.1";
    const std::array<net::const_buffer, 1> list{net::buffer(hello)};
    error_code ec;
    ASSERT_TRUE(client_->encrypt(list, ec)) << ec.message();
    EXPECT_TRUE(client_->flush_now());
    std::string got(hello.size(), '\0');
    bool read = false;
    net::async_read(*server_, net::buffer(got), [&](const error_code& e, std::size_t) {
        EXPECT_FALSE(e) << e.message();
        read = true;
    });
    run_until(ioc_, [&] { return read; });
    EXPECT_EQ(got, hello);

    bool written = false;
    net::async_write(*server_, net::buffer("HTTP/1.1 101", 12),
                     [&](const error_code& e, std::size_t) {
                         EXPECT_FALSE(e) << e.message();
                         written = true;
                     });
    std::string reply;
    while (reply.size() < 12) {
        std::array<char, 64> room{};
        std::optional<error_code> end;
        client_->async_read_some(net::buffer(room), [&](const error_code& e, std::size_t n) {
            end = e;
            reply.append(room.data(), n);
        });
        run_until(ioc_, [&] { return end.has_value(); });
        ASSERT_FALSE(*end) << end->message();
    }
    EXPECT_EQ(reply, "HTTP/1.1 101");
    EXPECT_TRUE(written);
}

TEST_F(tls_client_session, an_untrusted_certificate_fails_with_the_reason_and_alerts_the_server) {
    ASSERT_NO_FATAL_FAILURE(connect(false, "localhost"));
    const auto [client, server] = handshake();
    EXPECT_NE(client.message().find("certificate verify failed"), std::string::npos)
        << client.message();
    EXPECT_EQ(SSL_get_verify_result(client_->ssl()), X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    // The alert went out before the failure was reported: the server knows why.
    EXPECT_NE(server.message().find("alert"), std::string::npos) << server.message();
}

TEST_F(tls_client_session, a_certificate_for_another_host_fails_as_a_hostname_mismatch) {
    ASSERT_NO_FATAL_FAILURE(connect(true, "bot.example.test"));
    const auto [client, server] = handshake();
    EXPECT_TRUE(client);
    EXPECT_EQ(SSL_get_verify_result(client_->ssl()), X509_V_ERR_HOSTNAME_MISMATCH);
    EXPECT_NE(server.message().find("alert"), std::string::npos) << server.message();
}

} // namespace
} // namespace callstream::server
