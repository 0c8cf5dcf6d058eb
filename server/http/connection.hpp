#pragma once
// One accepted TCP connection: TLS detection (when a certificate is configured), HTTP/1.1
// keep-alive request loop, and hand-over to a media session on a /media-stream upgrade.
//
// Runs as a coroutine on the io_context the socket was accepted onto.

#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/app/server_context.hpp"

namespace callstream::server {

net::awaitable<void> run_connection(net::ip::tcp::socket socket,
                                    std::shared_ptr<server_context> ctx,
                                    std::shared_ptr<net::ssl::context> tls);

} // namespace callstream::server
