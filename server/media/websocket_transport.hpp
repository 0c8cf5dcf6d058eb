#pragma once
// The WebSocket half of a media session: accepts the upgrade, keeps one read always pending,
// writes a bounded outbox with one write in flight, pings a quiet peer and cuts off a dead one,
// and closes with a deadline. RFC 6455 framing is callstream's own (codec/websocket_frame.hpp):
// each read takes what the socket holds and every complete frame in it is handled before the
// next read; each write gathers every message queued since the last one (up to 32 messages or
// 256 KiB) into one system call. What the messages mean is the stream_handler's business
// (twilio_stream for Twilio Media Streams).
//
// Threading: everything runs on the executor of the connection's io_context (one network
// thread); other threads reach the session only through media_session_handle (it posts) or a
// cross_thread_wakeup() callable.
// Ownership: the session owns `handler`; the session itself is owned by the coroutine this
// returns until reading ends (the read handler, do_read/on_read, runs on that), then by its
// pending operations (write, timer and close handlers hold shared_ptrs).
// Per frame: one read handler (no coroutine frame), the socket and timers on the concrete
// io_context executor (ws and wss), counters on this thread's metrics shard, payloads unmasked in
// place in a 64 KiB read buffer, and an outbox ring that reuses its strings (no allocation in
// the steady state). While a plain (ws) session is live its descriptor is read through the
// thread's own epoll set (server/app/polled_reads.hpp), not Asio's reactor; it goes back to
// Asio for a write that must wait for room, for the close and for the teardown.
// Limits (from config): messages over --max-message-bytes are refused with 1009 (from the frame
// header, before the payload is read); a violation of RFC 6455 closes with 1002 (1007 for text
// that is not UTF-8); a binary message closes with 1003; an outbox over --outbox-bytes closes
// with 1008; no bytes from the peer for --idle-timeout (after a ping at half of it) cuts the TCP
// connection; the upgrade response, and a close handshake, that do not finish in
// --handshake-timeout cut it too. A peer's close is echoed with its code; after our close
// frame we send FIN (TLS: close_notify) and read until the peer's before closing the socket.
// TLS: after the upgrade's request the session goes on over the bare socket through OpenSSL
// directly (server/app/tls_socket.hpp); a record that fails authentication ends the stream as
// a vanished peer would, and no other.
// Backpressure: after each message the handler may hold reading (stream_handler::
// reading_paused); the socket is then left unread, re-checked every 5 ms.
// Errors: none escape; each ending is recorded as one close_reason and handed to on_closed.

#include <memory>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>

#include "server/app/server_context.hpp"
#include "server/http/responses.hpp"
#include "server/media/stream_transport.hpp"

namespace callstream::server {

// Accepts the WebSocket upgrade in `req` on `stream` and runs `handler` over it until the
// session ends. `pending` holds what the HTTP reader read past the request (the first frames,
// if the client sent them before the 101). Instantiated for beast::tcp_stream and
// beast::ssl_stream<beast::tcp_stream> (whose TLS session is taken over, see above).
template <typename Stream>
net::awaitable<void> run_websocket_transport(Stream stream, beast::flat_buffer pending,
                                             http_request req, std::shared_ptr<server_context> ctx,
                                             std::unique_ptr<stream_handler> handler);

} // namespace callstream::server
