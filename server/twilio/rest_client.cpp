#include "server/twilio/rest_client.hpp"

#include <span>
#include <stdexcept>

// gcc 12 reports a false -Wmismatched-new-delete on Asio's awaitable frame allocator (gcc bug
// 109224, fixed in gcc 13): the frame's operator new and delete are a matching pair.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/url/parse.hpp>
#include <simdjson.h>

#include "codec/base64.hpp"
#include "server/app/version.hpp"

namespace callstream::server {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);
constexpr std::uint64_t response_body_limit_bytes = 1 << 20;

// A request that failed this way on a reused connection never reached Twilio's application: the
// server closed the idle connection under us. Safe to send again on a fresh connection.
bool is_stale_connection_error(const beast::error_code& ec) {
    return ec == http::error::end_of_stream || ec == asio::error::eof ||
           ec == asio::error::connection_reset || ec == asio::error::broken_pipe ||
           ec == asio::ssl::error::stream_truncated;
}

bool is_ip_literal(const std::string& host) {
    beast::error_code ec;
    asio::ip::make_address(host, ec);
    return !ec;
}

} // namespace

bool parse_twilio_json(std::string_view body, call_result& out) {
    simdjson::padded_string padded(body);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS) {
        return false;
    }
    simdjson::ondemand::object object;
    if (doc.get_object().get(object) != simdjson::SUCCESS) {
        return false;
    }
    // Fields are read in document order (ondemand is forward-only); unknown ones are skipped.
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key) != simdjson::SUCCESS) {
            return false;
        }
        simdjson::ondemand::value value;
        if (field.value().get(value) != simdjson::SUCCESS) {
            return false;
        }
        simdjson::ondemand::json_type type;
        if (value.type().get(type) != simdjson::SUCCESS) {
            return false;
        }
        std::string_view text;
        const bool is_string = type == simdjson::ondemand::json_type::string &&
                               value.get_string().get(text) == simdjson::SUCCESS;
        if (key == "sid" && is_string) {
            out.call_sid = text;
        } else if (key == "status" && is_string) {
            out.status = text; // the call's status; in error JSON "status" is the HTTP number
        } else if (key == "message" && is_string) {
            out.error_message = text;
        } else if (key == "more_info" && is_string) {
            out.more_info = text;
        } else if (key == "code" && type == simdjson::ondemand::json_type::number) {
            std::int64_t code = 0;
            if (value.get_int64().get(code) == simdjson::SUCCESS) {
                out.error_code = code;
            }
        }
    }
    return true;
}

struct twilio_rest_client::connection {
    connection(const asio::any_io_executor& executor, asio::ssl::context& tls)
        : stream(executor, tls), idle_timer(executor) {}
    beast::ssl_stream<beast::tcp_stream> stream;
    // While parked, a wait on this timer owns the connection (see park()).
    asio::steady_timer idle_timer;
};

// Parking: the idle slot holds only a weak_ptr; the strong reference lives in the handler of a
// pending wait on the connection's own executor. So the connection closes itself after
// idle_keep, and if its io_context is destroyed first, it is destroyed with that context's
// pending handlers, never after it (a socket must not outlive its io_context).
void twilio_rest_client::park(std::shared_ptr<connection> conn) {
    std::lock_guard lock(mutex_);
    if (!idle_.expired()) {
        return; // one idle connection is enough; this one closes as `conn` goes away
    }
    idle_ = conn;
    conn->idle_timer.expires_after(idle_keep);
    conn->idle_timer.async_wait([keep = conn](const beast::error_code&) {});
}

std::shared_ptr<twilio_rest_client::connection> twilio_rest_client::take_idle() {
    std::shared_ptr<connection> conn;
    {
        std::lock_guard lock(mutex_);
        conn = idle_.lock();
        idle_.reset();
    }
    if (conn) {
        conn->idle_timer.cancel(); // its handler runs later and drops the parked reference
    }
    return conn;
}

twilio_rest_client::twilio_rest_client(twilio_rest_config config)
    : config_(std::move(config)), tls_(asio::ssl::context::tls_client) {
    auto url = boost::urls::parse_absolute_uri(config_.api_base);
    if (!url || url->scheme() != "https" || url->host().empty()) {
        throw std::runtime_error("--twilio-api-base must be an https:// URL, got '" +
                                 config_.api_base + "'");
    }
    host_ = url->host_address();
    port_ = url->has_port() ? std::string(url->port()) : "443";
    host_header_ = url->has_port() ? host_ + ":" + port_ : host_;
    if (url->host_type() == boost::urls::host_type::ipv6) {
        host_header_ = "[" + host_ + "]" + (url->has_port() ? ":" + port_ : "");
    }

    tls_.set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                     asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 |
                     asio::ssl::context::no_tlsv1_1);
    tls_.set_verify_mode(asio::ssl::verify_peer);
    beast::error_code ec;
    if (config_.ca_file.empty()) {
        tls_.set_default_verify_paths(ec);
    } else {
        tls_.load_verify_file(config_.ca_file, ec);
    }
    if (ec) {
        throw std::runtime_error(
            "cannot load CA certificates" +
            (config_.ca_file.empty() ? std::string() : " from '" + config_.ca_file + "'") + ": " +
            ec.message());
    }

    const std::string user_pass = config_.credentials.username + ":" + config_.credentials.password;
    authorization_ =
        "Basic " + codec::base64_encode(std::span<const std::uint8_t>(
                       reinterpret_cast<const std::uint8_t*>(user_pass.data()), user_pass.size()));
}

twilio_rest_client::~twilio_rest_client() = default;

std::size_t twilio_rest_client::connections_opened() const {
    std::lock_guard lock(mutex_);
    return connections_opened_;
}

namespace {
// Built outside the coroutines: gcc 12 cannot keep string-literal temporaries in a coroutine frame.
std::string calls_path(const std::string& account_sid, const std::string& call_sid) {
    std::string path = "/2010-04-01/Accounts/" + account_sid + "/Calls";
    path += call_sid.empty() ? std::string(".json") : "/" + call_sid + ".json";
    return path;
}
std::string hangup_body() {
    return form_encode(form_fields{{"Status", "completed"}});
}
} // namespace

asio::awaitable<call_result> twilio_rest_client::create_call(const form_fields& params) {
    std::string target = calls_path(config_.credentials.account_sid, {});
    std::string body = form_encode(params);
    co_return co_await post_form(std::move(target), std::move(body));
}

asio::awaitable<call_result> twilio_rest_client::hangup(std::string call_sid) {
    std::string target = calls_path(config_.credentials.account_sid, call_sid);
    co_return co_await post_form(std::move(target), hangup_body());
}

asio::awaitable<call_result> twilio_rest_client::post_form(std::string target, std::string body) {
    const auto executor = co_await asio::this_coro::executor;

    http::request<http::string_body> req{http::verb::post, target, 11};
    req.set(http::field::host, host_header_);
    req.set(http::field::user_agent, std::string("callstream/") + version);
    req.set(http::field::authorization, authorization_);
    req.set(http::field::accept, "application/json");
    req.set(http::field::content_type, "application/x-www-form-urlencoded");
    req.keep_alive(true);
    req.body() = std::move(body);
    req.prepare_payload();

    call_result result;
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::shared_ptr<connection> conn = take_idle();
        const bool reused = conn != nullptr;
        const auto deadline = std::chrono::steady_clock::now() + config_.timeout;

        if (!reused) {
            tcp::resolver resolver(executor);
            auto [rec, endpoints] = co_await resolver.async_resolve(host_, port_, use_tuple);
            if (rec) {
                result.outcome = twilio_outcome::connect_failed;
                result.detail = "cannot resolve " + host_ + ": " + rec.message();
                co_return result;
            }
            conn = std::make_shared<connection>(executor, tls_);
            {
                std::lock_guard lock(mutex_);
                ++connections_opened_;
            }
            auto& tcp_layer = beast::get_lowest_layer(conn->stream);
            tcp_layer.expires_at(deadline);
            auto [cec, endpoint] = co_await tcp_layer.async_connect(endpoints, use_tuple);
            if (cec) {
                result.outcome = cec == beast::error::timeout ? twilio_outcome::timeout
                                                              : twilio_outcome::connect_failed;
                result.detail = "cannot connect to " + host_header_ + ": " + cec.message();
                co_return result;
            }
            // SNI must name a host, never an address (RFC 6066 §3).
            if (!is_ip_literal(host_) &&
                SSL_set_tlsext_host_name(conn->stream.native_handle(), host_.c_str()) != 1) {
                result.outcome = twilio_outcome::connect_failed;
                result.detail = "cannot set TLS server name";
                co_return result;
            }
            conn->stream.set_verify_callback(asio::ssl::host_name_verification(host_));
            auto [hec] =
                co_await conn->stream.async_handshake(asio::ssl::stream_base::client, use_tuple);
            if (hec) {
                result.outcome = hec == beast::error::timeout ? twilio_outcome::timeout
                                                              : twilio_outcome::connect_failed;
                result.detail = "TLS handshake with " + host_header_ + " failed: " + hec.message();
                co_return result;
            }
        }

        auto& tcp_layer = beast::get_lowest_layer(conn->stream);
        tcp_layer.expires_at(deadline);
        auto [wec, written] = co_await http::async_write(conn->stream, req, use_tuple);
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.body_limit(response_body_limit_bytes);
        beast::error_code ec = wec;
        if (!ec) {
            auto [rec, read] = co_await http::async_read(conn->stream, buffer, parser, use_tuple);
            ec = rec;
        }
        if (ec) {
            tcp_layer.close();
            if (reused && attempt == 0 && !parser.got_some() && is_stale_connection_error(ec)) {
                continue; // the idle connection had been closed by the server: try a fresh one
            }
            result.outcome = ec == beast::error::timeout ? twilio_outcome::timeout
                                                         : twilio_outcome::bad_response;
            result.detail =
                (ec == beast::error::timeout ? "no response from " : "request to ") + host_header_ +
                (ec == beast::error::timeout ? " within the timeout" : " failed: " + ec.message());
            co_return result;
        }

        auto res = parser.release();
        result.http_status = res.result_int();
        if (res.keep_alive()) {
            tcp_layer.expires_never();
            park(std::move(conn));
        }
        const bool parsed = parse_twilio_json(res.body(), result);
        if (res.result_int() >= 200 && res.result_int() < 300) {
            if (parsed && !result.call_sid.empty()) {
                result.outcome = twilio_outcome::ok;
            } else {
                result.outcome = twilio_outcome::bad_response;
                result.detail = "Twilio answered " + std::to_string(result.http_status) +
                                " without a call resource";
            }
        } else {
            result.outcome = twilio_outcome::twilio_error;
            result.status.clear();
            if (!parsed || result.error_message.empty()) {
                result.error_message = "Twilio answered HTTP " + std::to_string(result.http_status);
            }
        }
        co_return result;
    }
    result.outcome = twilio_outcome::bad_response;
    result.detail = "request to " + host_header_ + " failed twice";
    co_return result;
}

} // namespace callstream::server
