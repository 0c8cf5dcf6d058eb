#pragma once
// One outbound WebSocket to an upstream application: ws:// or wss:// (OpenSSL driven directly,
// server/app/tls_socket.hpp: peer certificate and host-name verification, SNI), request headers
// from configuration, an optional subprotocol, a connect deadline covering DNS, TCP, TLS and the
// WebSocket handshake, a limit on each message read, and a bounded write queue with one write in
// flight. RFC 6455 framing is callstream's own (codec/websocket_frame.hpp, server frames read,
// client frames masked with a fresh key each), the opening handshake
// server/bridge/upstream_handshake: a read takes everything the socket holds and handles every
// frame in it; messages queued in one pass of the event loop go out in one gather write at its end
// (server/app/write_batch.hpp). An open ws:// connection is read through the thread's own epoll
// set (server/app/polled_reads.hpp) rather than Asio's reactor.
//
// Threading: everything runs on the executor given to create() (the call's network thread, an
// io_context's executor: any other executor fails the socket at once with label bad_url);
// public methods must be called there. Events are delivered there too, to a weak_ptr: a socket
// whose owner is gone closes quietly. The socket never blocks its thread, and a misbehaving
// upstream can only ever cost its own call.
//
// Lifetime: held by shared_ptr by its owner, by its pending operations and, while an open ws://
// connection is read through the epoll set, by that set; close() starts the close handshake
// (bounded by the connect timeout) and the object dies when the last of them lets go.
//
// Errors arrive once, as on_upstream_closed(label, detail), with label one of: bad_url,
// resolve_failed, connect_failed, connect_timeout, tls_failed, handshake_failed,
// bad_subprotocol, too_big, upstream_closed, upstream_lost, slow_upstream.

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>

#include "pipeline/warm_lines.hpp"

namespace callstream::server::bridge {

class upstream_socket_events {
  public:
    virtual ~upstream_socket_events() = default;
    virtual void on_upstream_open() = 0;
    // `data` is followed by at least SIMDJSON_PADDING readable bytes; valid during the call.
    virtual void on_upstream_message(bool text, std::string_view data) = 0;
    virtual void on_upstream_closed(std::string_view label, std::string detail) = 0;
    // The upstream's close frame (code 1005 when it carried none), just before
    // on_upstream_closed("upstream_closed", …) says the same in words. For receivers that keep
    // the code itself (the load generator's per-call report); the bridge needs only the label.
    virtual void on_upstream_close_frame(std::uint16_t /*code*/, std::string_view /*reason*/) {}
};

struct upstream_target {
    std::string url; // ws://… or wss://…
    std::vector<std::pair<std::string, std::string>> headers;
    std::string subprotocol; // empty: none requested
    std::chrono::milliseconds connect_timeout{5000};
    std::size_t max_message_bytes = 256 * 1024;
    std::size_t max_outbox_bytes = 1024 * 1024;
    // Write each message when it is sent instead of with the rest of the event loop's pass
    // (server/app/write_batch.hpp): for a client that times its sends (bench/load), where the
    // pass's other writes would count in its round trips. A bridge batches.
    bool write_at_once = false;
};

class upstream_socket {
  public:
    virtual ~upstream_socket() = default;
    // Starts connecting; events follow. `tls` is used for wss:// (must outlive the socket).
    static std::shared_ptr<upstream_socket> create(boost::asio::any_io_executor executor,
                                                   upstream_target target,
                                                   std::shared_ptr<boost::asio::ssl::context> tls,
                                                   std::weak_ptr<upstream_socket_events> events);
    // Queues one message (text or binary). Before open it waits in the queue.
    virtual void send(std::string data, bool text) = 0;
    // An empty string with capacity left by a message already written (or a plain empty one):
    // fill it and send() it, and a call in steady state does not allocate per message.
    virtual std::string take_buffer() = 0;
    // Closes (normal closure) after the queued messages; no further events.
    virtual void close() = 0;
    virtual bool open() const noexcept = 0;
    // Bytes queued or being written and not yet taken by the socket: above zero when a
    // message is sent, the one before is still waiting (a slow peer, or a full send buffer).
    virtual std::size_t queued_bytes() const noexcept = 0;
    // Changes who receives events (pre-warm adoption); same thread.
    virtual void set_events(std::weak_ptr<upstream_socket_events> events) = 0;
    // The lines the events receiver touches per message, which it fills in: prefetched with
    // the socket's own before each read (pipeline/warm_lines.hpp). Owned by the socket, so a
    // read still pending after the receiver is gone reads no freed list. Same thread.
    virtual pipeline::warm_lines& receiver_lines() = 0;
    virtual boost::asio::any_io_executor executor() const = 0;
};

// The client TLS context for wss:// upstreams: TLS 1.2+, verify_peer against `ca_file` (PEM) or
// the system store. Throws std::runtime_error naming the file when it cannot be loaded.
std::shared_ptr<boost::asio::ssl::context> make_upstream_tls_context(const std::string& ca_file);

struct parsed_ws_url {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target; // path and query, at least "/"
    std::string error;  // empty on success
};
parsed_ws_url parse_ws_url(std::string_view url);

} // namespace callstream::server::bridge
