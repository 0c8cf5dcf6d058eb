#pragma once
// One Twilio Media Stream over one WebSocket (plain or TLS).
//
// Threading: everything runs on the executor of the connection's io_context (one network
// thread); other threads reach a session only through media_session_handle, which posts.
// Lifetime: owned by its pending operations (the read coroutine and the write/close handlers
// hold shared_ptrs); the registry holds a weak_ptr.
//
// Per message: parse (simdjson) -> state machine -> base64 -> pipeline -> outbox -> one write
// in flight. The outbox is bounded in bytes; a peer that stops reading is closed with 1008.

#include <memory>

#include <boost/asio/awaitable.hpp>

#include "server/app/server_context.hpp"
#include "server/http/responses.hpp"

namespace callstream::server {

// Accepts the WebSocket upgrade in `req` on `stream` and serves the stream until it closes.
template <typename Stream>
net::awaitable<void> run_media_session(Stream stream, http_request req,
                                       std::shared_ptr<server_context> ctx);

} // namespace callstream::server
