#pragma once
// The media room: one Twilio Media Stream per WebSocket, and what other threads may ask of it.
//   websocket_transport  accept, the always-pending reader, the bounded outbox, idle and close
//                        timers (templated on the socket type), RFC 6455 framing via codec/
//   websocket_upgrade    the opening handshake's checks and its 101 response
//   twilio_stream        the Twilio protocol state machine, the pipeline, registries, metrics
//   stream_transport     the interface between the two (a fork or bridged stream plugs in here)
//   session_registry     live sessions by streamSid, for control routes and shutdown
//   stream_routes        HTTP control of a live stream (/streams/...)
// May include server/app, server/http, server/twilio, server/calls (the call registry) and
// pipeline/; nothing here includes server/bridge or server/cluster.
//
// Threading: a session runs on the executor of its connection's io_context (one network
// thread); other threads reach it only through media_session_handle, which posts.
// Per message: parse (simdjson) -> state machine -> base64 -> pipeline -> outbox -> one write
// in flight. The outbox is bounded in bytes; a peer that stops reading is closed with 1008.

#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "server/app/server_context.hpp"
#include "server/http/responses.hpp"

namespace callstream::server {

// Accepts the WebSocket upgrade in `req` on `stream` and serves one Twilio stream until it
// closes; `pending` is what the HTTP reader read past the request. Instantiated for
// beast::tcp_stream and beast::ssl_stream<beast::tcp_stream>; returns when the session's read side
// ends (its write and close handlers may outlive it briefly).
template <typename Stream>
net::awaitable<void> run_media_session(Stream stream, beast::flat_buffer pending, http_request req,
                                       std::shared_ptr<server_context> ctx);

} // namespace callstream::server
