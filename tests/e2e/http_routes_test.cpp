// The HTTP side of the real binary: health, TwiML for ngrok-style hosts, errors, limits.
#include <gtest/gtest.h>

#include "tests/support/server_process.hpp"
#include "tests/support/ws_client.hpp"

namespace callstream::testing {
namespace {

class http_routes : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { server_ = new server_process(); }
    static void TearDownTestSuite() {
        delete server_;
        server_ = nullptr;
    }
    static server_process* server_;
};
server_process* http_routes::server_ = nullptr;

TEST_F(http_routes, healthz_answers_ok) {
    const auto res = http_request(server_->port(), "GET", "/healthz");
    EXPECT_EQ(res.status, 200);
    EXPECT_EQ(res.body, "ok");
}

TEST_F(http_routes, unknown_path_is_404) {
    const auto res = http_request(server_->port(), "GET", "/nope");
    EXPECT_EQ(res.status, 404);
    EXPECT_NE(res.body.find("/nope"), std::string::npos);
}

TEST_F(http_routes, wrong_method_is_405_with_allow) {
    const auto res = http_request(server_->port(), "DELETE", "/healthz");
    EXPECT_EQ(res.status, 405);
    EXPECT_EQ(res.headers.at("allow"), "GET");
}

TEST_F(http_routes, twiml_stream_url_follows_the_host_header) {
    const auto res =
        http_request(server_->port(), "POST", "/twiml", "", {{"Host", "abc.ngrok-free.app"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_NE(res.headers.at("content-type").find("text/xml"), std::string::npos);
    EXPECT_NE(res.body.find(R"(<Stream url="wss://abc.ngrok-free.app/media-stream">)"),
              std::string::npos)
        << res.body;
    EXPECT_NE(res.body.find("<Response><Connect>"), std::string::npos);
}

TEST_F(http_routes, twiml_prefers_forwarded_host) {
    const auto res = http_request(server_->port(), "GET", "/twiml", "",
                                  {{"Host", "internal:5050"},
                                   {"X-Forwarded-Host", "calls.example.com"},
                                   {"X-Forwarded-Proto", "https"}});
    EXPECT_NE(res.body.find(R"(url="wss://calls.example.com/media-stream")"), std::string::npos)
        << res.body;
}

TEST_F(http_routes, twiml_passes_call_fields_as_escaped_parameters) {
    const auto res = http_request(
        server_->port(), "POST", "/twiml?app=record",
        "CallSid=CA123&From=%22Bob%22+%3Cbob%40x%3E&To=sip%3Aa%40b.com%3Bx%3D1&Other=ignored",
        {{"Content-Type", "application/x-www-form-urlencoded"}});
    EXPECT_EQ(res.status, 200);
    EXPECT_NE(res.body.find(R"(<Parameter name="app" value="record"/>)"), std::string::npos);
    EXPECT_NE(res.body.find(R"(<Parameter name="CallSid" value="CA123"/>)"), std::string::npos);
    EXPECT_NE(res.body.find(R"(<Parameter name="From" value="&quot;Bob&quot; &lt;bob@x&gt;"/>)"),
              std::string::npos)
        << res.body;
    EXPECT_NE(res.body.find(R"(value="sip:a@b.com;x=1")"), std::string::npos);
    EXPECT_EQ(res.body.find("Other"), std::string::npos);
}

TEST_F(http_routes, twiml_rejects_a_malformed_form) {
    const auto res = http_request(server_->port(), "POST", "/twiml", "CallSid=%ZZ");
    EXPECT_EQ(res.status, 400);
}

TEST_F(http_routes, media_stream_without_upgrade_is_426) {
    const auto res = http_request(server_->port(), "GET", "/media-stream");
    EXPECT_EQ(res.status, 426);
    // RFC 9110 section 15.5.22: a 426 names the protocol to upgrade to.
    ASSERT_EQ(res.headers.count("upgrade"), 1U);
    EXPECT_EQ(res.headers.at("upgrade"), "websocket");
}

TEST_F(http_routes, websocket_upgrade_elsewhere_is_refused) {
    // The handshake a WebSocket client sends, to a path that is not /media-stream.
    const auto res = http_request(server_->port(), "GET", "/other", "",
                                  {{"Connection", "Upgrade"},
                                   {"Upgrade", "websocket"},
                                   {"Sec-WebSocket-Version", "13"},
                                   {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="}});
    EXPECT_EQ(res.status, 404);
    EXPECT_NE(res.body.find("/media-stream"), std::string::npos) << res.body;
    // And a real client's upgrade fails rather than opening a stream.
    EXPECT_THROW(ws_client(server_->port(), false, "/other"), std::exception);
}

TEST_F(http_routes, oversized_headers_get_431) {
    const auto res =
        http_request(server_->port(), "GET", "/healthz", "", {{"X-Big", std::string(20000, 'a')}});
    EXPECT_EQ(res.status, 431);
}

TEST_F(http_routes, oversized_body_gets_413) {
    const auto res = http_request(server_->port(), "POST", "/twiml", std::string(100000, 'a'));
    EXPECT_EQ(res.status, 413);
}

TEST_F(http_routes, metrics_are_prometheus_text) {
    http_request(server_->port(), "GET", "/healthz");
    const auto res = http_request(server_->port(), "GET", "/metrics");
    EXPECT_EQ(res.status, 200);
    EXPECT_NE(res.body.find("# TYPE callstream_streams_active gauge"), std::string::npos);
    EXPECT_NE(res.body.find(R"(callstream_http_requests_total{route="/healthz",status="200"})"),
              std::string::npos);
}

TEST(http_public_url, public_url_flag_wins_over_headers) {
    server_process server({"--public-url", "https://voice.example.org/"});
    const auto res = http_request(server.port(), "POST", "/twiml", "", {{"Host", "other.host"}});
    EXPECT_NE(res.body.find(R"(url="wss://voice.example.org/media-stream")"), std::string::npos)
        << res.body;
}

} // namespace
} // namespace callstream::testing
