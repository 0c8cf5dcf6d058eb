#include "server/media/media_session.hpp"

#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>

#include "server/media/twilio_stream.hpp"
#include "server/media/websocket_transport.hpp"

namespace callstream::server {

template <typename Stream>
net::awaitable<void> run_media_session(Stream stream, beast::flat_buffer pending, http_request req,
                                       std::shared_ptr<server_context> ctx) {
    auto handler = std::make_unique<twilio_stream>(ctx);
    co_await run_websocket_transport(std::move(stream), std::move(pending), std::move(req),
                                     std::move(ctx), std::move(handler));
}

template net::awaitable<void> run_media_session<beast::tcp_stream>(beast::tcp_stream,
                                                                   beast::flat_buffer, http_request,
                                                                   std::shared_ptr<server_context>);
template net::awaitable<void>
    run_media_session<beast::ssl_stream<beast::tcp_stream>>(beast::ssl_stream<beast::tcp_stream>,
                                                            beast::flat_buffer, http_request,
                                                            std::shared_ptr<server_context>);

} // namespace callstream::server
