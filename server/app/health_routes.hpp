#pragma once
// GET /healthz ("ok" while the process serves) and GET /metrics (Prometheus text format 0.0.4).
//
// Added on the main thread at startup; handlers run on network threads.

#include "server/http/router.hpp"

namespace callstream::server {

void add_health_routes(router& r);

} // namespace callstream::server
