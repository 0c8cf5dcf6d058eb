#pragma once
// State shared by every connection: configuration, counters, live sessions, and the hooks
// other parts of the server plug into (routes, upgrade checks).
//
// Built on the main thread before the network threads start; afterwards the config is
// read-only and the other members are thread-safe themselves.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "pipeline/dsp_pool.hpp"
#include "pipeline/processor_factory.hpp"
#include "pipeline/stream_pipeline.hpp"
#include "server/app/config.hpp"
#include "server/app/metrics.hpp"
#include "server/http/request_context.hpp"
#include "server/http/responses.hpp"
#include "server/media/session_registry.hpp"

namespace callstream::server {

class router;
class call_registry;
namespace bridge {
class bridge_service;
}
namespace monitor {
class monitor_hub;
}

// Runs before a WebSocket upgrade is accepted; a response refuses it (e.g. 403 bad signature).
using upgrade_check = std::function<std::optional<http_response>(request_context&)>;

struct server_context {
    config cfg;
    metrics stats;
    session_registry sessions;
    pipeline::processor_config processors;
    // How each stream's pipeline runs: inline, or on `dsp` workers when --dsp-threads > 0.
    std::unique_ptr<pipeline::dsp_pool> dsp;
    pipeline::pipeline_options pipeline;
    std::vector<upgrade_check> upgrade_checks;
    // Run first by Twilio's form webhooks (/twiml); a response refuses the request (e.g. 403).
    std::vector<upgrade_check> webhook_checks;
    // Recent calls: placed, reported by status callbacks, and the streams that ran for them.
    std::shared_ptr<call_registry> calls;
    std::shared_ptr<router> routes;
    // Cluster mode: "/i/{instance}/media-stream", the <Stream url> path that pins a call to
    // this instance (HAProxy's use-server), for TwiML that pre-warms a bridge here. Else empty.
    std::string pinned_stream_path;
    // Cluster mode (--redis-url) sets this; null otherwise.
    // SIGTERM first calls drain (network thread 0), which calls `finished` from any thread once
    // the streams have ended or --drain-timeout passed; the usual shutdown follows.
    std::function<void(std::function<void()> finished)> drain;
    // Upstreams for app=bridge (server/bridge/bridge_service.hpp); always set by the server.
    std::shared_ptr<bridge::bridge_service> bridge;
    // The live monitor (server/monitor/monitor_hub.hpp) with --monitor; null otherwise.
    std::shared_ptr<monitor::monitor_hub> monitor;
    // The public base URL for a request: --public-url, else X-Forwarded-Proto/-Host or Host.
    std::string public_base(const http_request& req, bool tls) const;
};

} // namespace callstream::server
