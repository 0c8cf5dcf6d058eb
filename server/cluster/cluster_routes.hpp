#pragma once
// Cluster mode's answers for calls held by any instance. Wraps the routes of server/calls and
// server/media (which answer for this instance alone) so that:
//   GET  /calls                     this instance's calls plus every other instance's live ones,
//                                   each with "instance"
//   GET  /calls/{sid}               the call from whichever instance holds it
//   POST /calls/{sid}/hangup        reaches the owner, which ends the call (Twilio REST when
//                                   configured; it also closes the media stream, 1000)
//   POST /streams/{sid}/play|clear  reach the owner
// A request for a call held here is answered here without Redis. Otherwise: the owner's answer
// (status and body as it gave them), 404 when no instance holds the call or stream, 504 when the
// owner does not answer within 2 s, 503 naming Redis when Redis is unreachable. The bearer token
// is checked before anything is forwarded; every instance must share it.
//
// Startup only (main thread); the handlers run on network threads and on the cluster thread.

#include <memory>

#include "server/app/server_context.hpp"

namespace callstream::server {

class cluster_node;

void add_cluster_routes(server_context& ctx, std::shared_ptr<cluster_node> node);

} // namespace callstream::server
