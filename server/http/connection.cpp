#include "server/http/connection.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket/rfc6455.hpp>

#include "server/app/log.hpp"
#include "server/http/router.hpp"
#include "server/media/media_session.hpp"
#include "server/monitor/monitor_socket.hpp"

namespace callstream::server {
namespace {

namespace websocket = beast::websocket;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

struct connection_count {
    metrics& stats;
    explicit connection_count(metrics& m) : stats(m) {
        stats.connections_active.fetch_add(1, std::memory_order_relaxed);
    }
    ~connection_count() { stats.connections_active.fetch_sub(1, std::memory_order_relaxed); }
    connection_count(const connection_count&) = delete;
    connection_count& operator=(const connection_count&) = delete;
};

// "/media-stream", or "/i/{instance}/media-stream": the form a cluster's TwiML uses to pin a
// stream to the instance that took the webhook (HAProxy routes on the instance segment; any
// instance serves it, should the pinned one be gone).
bool is_media_stream_path(std::string_view path) {
    constexpr std::string_view tail = "/media-stream";
    if (path == tail) {
        return true;
    }
    if (path.substr(0, 3) != "/i/" || path.size() <= 3 + tail.size() ||
        path.substr(path.size() - tail.size()) != tail) {
        return false;
    }
    const auto instance = path.substr(3, path.size() - 3 - tail.size());
    return !instance.empty() && instance.find('/') == std::string_view::npos;
}

// Decides whether a WebSocket upgrade may proceed; a response means "refused".
std::optional<http_response> check_upgrade(request_context& rc) {
    auto& ctx = rc.server;
    if (monitor::is_monitor_socket_path(rc.path())) {
        return monitor::check_monitor_upgrade(rc); // its own token; not a media stream
    }
    if (!is_media_stream_path(rc.path())) {
        return json_error(rc.request, http::status::not_found,
                          "WebSocket endpoint is /media-stream");
    }
    if (static_cast<std::size_t>(ctx.stats.streams_active.load(std::memory_order_relaxed)) >=
        ctx.cfg.max_streams) {
        ctx.stats.streams_refused.fetch_add(1, std::memory_order_relaxed);
        log(log_level::warn, "stream_refused_capacity", {{"max_streams", ctx.cfg.max_streams}});
        auto res = json_error(rc.request, http::status::service_unavailable,
                              "at capacity: --max-streams reached");
        res.set(http::field::retry_after, "1");
        return res;
    }
    for (const auto& check : ctx.upgrade_checks) {
        if (auto refused = check(rc)) {
            return refused;
        }
    }
    return std::nullopt;
}

template <typename Stream>
net::awaitable<void> serve_http(Stream stream, beast::flat_buffer buffer,
                                std::shared_ptr<server_context> ctx, bool tls, std::string remote) {
    const auto& cfg = ctx->cfg;
    bool keep_alive = true;
    while (keep_alive) {
        http::request_parser<http::string_body> parser;
        parser.header_limit(static_cast<std::uint32_t>(cfg.http_header_bytes));
        parser.body_limit(cfg.http_body_bytes);
        // The whole request must arrive within the handshake timeout: a client trickling
        // headers a byte at a time (slow-loris) is cut off when it expires.
        beast::get_lowest_layer(stream).expires_after(cfg.handshake_timeout);
        auto [ec, bytes] = co_await http::async_read(stream, buffer, parser, use_nothrow);
        if (ec) {
            std::optional<http::status> status;
            if (ec == http::error::header_limit) {
                status = http::status::request_header_fields_too_large;
            } else if (ec == http::error::body_limit) {
                status = http::status::payload_too_large;
            } else if (ec != http::error::end_of_stream && ec != beast::error::timeout &&
                       ec != net::error::eof && ec != net::error::connection_reset &&
                       ec != net::error::operation_aborted) {
                status = http::status::bad_request;
            }
            if (status) {
                http_request dummy{http::verb::get, "/", 11};
                dummy.keep_alive(false);
                auto res = json_error(dummy, *status, ec.message());
                co_await http::async_write(stream, res, use_nothrow);
                ctx->stats.count_http("invalid", res.result_int());
            }
            break;
        }
        http_request req = parser.release();
        request_context rc{req, tls, remote, *ctx, {}};
        if (websocket::is_upgrade(req)) {
            if (auto refused = check_upgrade(rc)) {
                refused->keep_alive(false);
                co_await http::async_write(stream, *refused, use_nothrow);
                ctx->stats.count_http("/media-stream", refused->result_int());
                break;
            }
            if (monitor::is_monitor_socket_path(rc.path())) {
                ctx->stats.count_http("/monitor", 101);
                beast::get_lowest_layer(stream).expires_never();
                co_await monitor::run_monitor_socket(std::move(stream), std::move(req), ctx,
                                                     std::move(remote));
                co_return;
            }
            ctx->stats.count_http("/media-stream", 101);
            // From here the WebSocket stream keeps its own timeouts.
            beast::get_lowest_layer(stream).expires_never();
            co_await run_media_session(std::move(stream), std::move(buffer), std::move(req), ctx);
            co_return;
        }
        http_response res;
        if (is_media_stream_path(rc.path())) {
            res = json_error(req, http::status::upgrade_required,
                             "/media-stream is a WebSocket endpoint");
            res.set(http::field::upgrade, "websocket");
        } else {
            res = co_await ctx->routes->dispatch(rc);
        }
        keep_alive = res.keep_alive();
        auto [write_ec, written] = co_await http::async_write(stream, res, use_nothrow);
        if (write_ec) {
            co_return;
        }
    }
    // Orderly end of the connection: TLS close_notify under a deadline, or a TCP FIN.
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        beast::error_code ignored;
        stream.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    } else {
        beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(5));
        co_await stream.async_shutdown(use_nothrow);
    }
}

} // namespace

net::awaitable<void> run_connection(net::ip::tcp::socket socket,
                                    std::shared_ptr<server_context> ctx,
                                    std::shared_ptr<net::ssl::context> tls) {
    const connection_count counted(ctx->stats);
    beast::error_code ec;
    const auto endpoint = socket.remote_endpoint(ec);
    std::string remote =
        ec ? std::string("unknown")
           : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    socket.set_option(net::ip::tcp::no_delay(true), ec);
    beast::tcp_stream stream(std::move(socket));
    beast::flat_buffer buffer;
    if (tls) {
        // One port serves both: sniff the first bytes for a TLS ClientHello.
        stream.expires_after(ctx->cfg.handshake_timeout);
        auto [detect_ec, is_tls] = co_await beast::async_detect_ssl(stream, buffer, use_nothrow);
        if (detect_ec) {
            co_return;
        }
        if (is_tls) {
            beast::ssl_stream<beast::tcp_stream> ssl(std::move(stream), *tls);
            auto [hs_ec, used] = co_await ssl.async_handshake(net::ssl::stream_base::server,
                                                              buffer.data(), use_nothrow);
            if (hs_ec) {
                log(log_level::debug, "tls_handshake_failed",
                    {{"remote", remote}, {"error", hs_ec.message()}});
                co_return;
            }
            buffer.consume(used);
            co_await serve_http(std::move(ssl), std::move(buffer), ctx, true, std::move(remote));
            co_return;
        }
    }
    co_await serve_http(std::move(stream), std::move(buffer), ctx, false, std::move(remote));
}

} // namespace callstream::server
