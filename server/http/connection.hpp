#pragma once
// The http room: HTTP/1.1 plumbing every route shares, and nothing about Twilio or media.
//   connection        one accepted socket: TLS detection, the keep-alive request loop, upgrades
//   router            method + path pattern -> coroutine handler; request_context per request
//   responses, form   response builders, form encoding; bearer_auth for the control routes
// May include server/app (context, config, log, metrics) and two entry points of other rooms:
// the media room's run_media_session() (connection.cpp) and twilio/signature's
// constant_time_equal (bearer_auth.cpp); never server/calls.
//
// One accepted TCP connection: TLS detection (when a certificate is configured), HTTP/1.1
// keep-alive request loop, and hand-over to a media session on a /media-stream upgrade.
//
// Threading: runs as a coroutine on the io_context the socket was accepted onto; owns the
// socket. Limits: --http-header-bytes (431), --http-body-bytes (413), the whole request within
// --handshake-timeout. Errors: a bad request gets a 4xx and the connection closes; nothing
// escapes the coroutine.

#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/app/server_context.hpp"

namespace callstream::server {

// Serves `socket` until the peer closes or the server shuts down. `tls` is null when no
// certificate is configured (plain HTTP/WebSocket only).
net::awaitable<void> run_connection(net::ip::tcp::socket socket,
                                    std::shared_ptr<server_context> ctx,
                                    std::shared_ptr<net::ssl::context> tls);

} // namespace callstream::server
