#pragma once
// The monitor's two WebSockets, both authorised by a monitor token in the query string
// (?token=, from POST /monitor/token), checked before the upgrade is accepted:
//   /monitor/events              a snapshot of every running call at most 10 times a second
//                                (monitor_hub), text JSON
//   /monitor/listen/{streamSid}  both legs of one call as they pass: binary messages of frames,
//                                each a 16-byte header (u8 leg 0 caller / 1 outbound, u8 0,
//                                u16 bytes, u32 sequence, f64 capture time in unix ms; little
//                                endian) and 20 ms of 8 kHz μ-law; one text message first
//                                ({"type":"listen",…}). One listener per call.
// Both also answer at /i/{instance}/monitor/…: HAProxy routes that form to the named instance,
// so the page reaches the instance that holds a call (docs/cluster.md).
// Every listen-in is logged: monitor_listen_started (call, stream, remote address) and
// monitor_listen_ended (the same and how long, how many frames).
//
// Threading: each socket runs on its connection's network thread; the hub reaches an events
// socket through watcher::offer (posts). A listener polls its stream's tap every 20 ms, so a
// listened call pays one ring push per frame and the others nothing.
// Errors: 404 without --monitor or for an unknown stream, 401 for a missing, forged or expired
// token (no data is sent), 409 when the call already has a listener.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>

#include "server/app/server_context.hpp"
#include "server/http/responses.hpp"

namespace callstream::server::monitor {

bool is_monitor_socket_path(std::string_view path);

// nullopt: accept the upgrade; else the refusal to send.
std::optional<http_response> check_monitor_upgrade(request_context& rc);

// Accepts the upgrade in `req` and serves the socket until it closes. Instantiated for
// beast::tcp_stream and beast::ssl_stream<beast::tcp_stream>.
template <typename Stream>
net::awaitable<void> run_monitor_socket(Stream stream, http_request req,
                                        std::shared_ptr<server_context> ctx, std::string remote);

} // namespace callstream::server::monitor
