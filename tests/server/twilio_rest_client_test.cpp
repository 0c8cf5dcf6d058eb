// The REST client against real sockets on loopback: refused connections, a server that never
// answers, and the JSON Twilio sends. The full HTTPS exchange (TLS, keep-alive reuse, Basic
// auth, every error mapping) runs against the Node stand-in in tests/e2e/twilio_calls.test.mjs.
#include <optional>

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete" // gcc bug 109224, see the client
#endif

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <gtest/gtest.h>

#include "server/twilio/rest_client.hpp"

using namespace callstream::server;
namespace asio = boost::asio;

namespace {

twilio_rest_config config_for(unsigned short port, std::chrono::milliseconds timeout) {
    twilio_rest_config c;
    c.api_base = "https://127.0.0.1:" + std::to_string(port);
    c.timeout = timeout;
    c.credentials = {"AC" + std::string(32, '0'), "AC" + std::string(32, '0'), "secret"};
    return c;
}

call_result run_create(asio::io_context& ioc, twilio_rest_client& client) {
    std::optional<call_result> out;
    // Built outside the coroutine: gcc 12 cannot keep string-literal temporaries in its frame.
    const form_fields params{{"To", "+14155551212"}};
    asio::co_spawn(
        ioc, [&]() -> asio::awaitable<void> { out = co_await client.create_call(params); },
        asio::detached);
    ioc.run_for(std::chrono::seconds(10));
    EXPECT_TRUE(out.has_value());
    return out.value_or(call_result{});
}

} // namespace

TEST(twilio_rest_client, parses_call_resource_and_error_json) {
    call_result ok;
    EXPECT_TRUE(parse_twilio_json(
        R"({"sid":"CA0123","account_sid":"AC1","status":"queued","start_time":null,)"
        R"("subresource_uris":{"streams":"/x"},"queue_time":"0"})",
        ok));
    EXPECT_EQ(ok.call_sid, "CA0123");
    EXPECT_EQ(ok.status, "queued");

    call_result err;
    EXPECT_TRUE(parse_twilio_json(
        R"({"code": 21211, "message": "The 'To' number 5551234567 is not a valid phone number.",)"
        R"( "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})",
        err));
    EXPECT_EQ(err.error_code, 21211);
    EXPECT_EQ(err.error_message, "The 'To' number 5551234567 is not a valid phone number.");
    EXPECT_EQ(err.more_info, "https://www.twilio.com/docs/errors/21211");
    EXPECT_TRUE(err.status.empty()); // the numeric HTTP status is not a call status

    call_result bad;
    EXPECT_FALSE(parse_twilio_json("<TwilioResponse/>", bad));
    EXPECT_FALSE(parse_twilio_json("[1,2]", bad));
}

TEST(twilio_rest_client, refused_connection_is_connect_failed) {
    asio::io_context ioc;
    unsigned short port = 0;
    {
        // Bind a port and release it: nothing listens there afterwards.
        asio::ip::tcp::acceptor a(ioc, {asio::ip::make_address("127.0.0.1"), 0});
        port = a.local_endpoint().port();
    }
    twilio_rest_client client(config_for(port, std::chrono::milliseconds(2000)));
    const auto r = run_create(ioc, client);
    EXPECT_EQ(r.outcome, twilio_outcome::connect_failed);
    EXPECT_NE(r.detail.find("refused"), std::string::npos) << r.detail;
    EXPECT_EQ(r.http_status, 0u);
    EXPECT_EQ(client.connections_opened(), 1u);
}

TEST(twilio_rest_client, silent_server_times_out) {
    asio::io_context ioc;
    // Accepts (the kernel completes the TCP handshake from the backlog) but never speaks TLS.
    asio::ip::tcp::acceptor silent(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    twilio_rest_client client(
        config_for(silent.local_endpoint().port(), std::chrono::milliseconds(300)));
    const auto r = run_create(ioc, client);
    EXPECT_EQ(r.outcome, twilio_outcome::timeout) << r.detail;
}

TEST(twilio_rest_client, rejects_bad_configuration_at_startup) {
    auto c = config_for(443, std::chrono::milliseconds(1000));
    c.api_base = "http://api.twilio.com";
    EXPECT_THROW(twilio_rest_client{c}, std::runtime_error);
    c.api_base = "https://127.0.0.1:1";
    c.ca_file = "/nonexistent/ca.pem";
    EXPECT_THROW(twilio_rest_client{c}, std::runtime_error);
}
