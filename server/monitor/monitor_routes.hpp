#pragma once
// The monitor's HTTP side: GET /monitor (the page) and GET /monitor/{file} (its CSS, JavaScript
// modules and AudioWorklet processors, from monitor_assets), and POST /monitor/token, which
// trades the API bearer token for a short-lived monitor token ({"token":…,"expires_in":s}).
// Added only with --monitor; without it every /monitor path is 404 like any unknown path.
//
// Threading: handlers run on the request's network thread and only read immutable state.
// Errors: 401/503 from the bearer check (server/http/bearer_auth.hpp), 404 unknown file.

#include <memory>

#include "server/app/server_context.hpp"

namespace callstream::server::monitor {

// Does nothing while ctx.monitor is null (no --monitor).
void add_monitor_routes(server_context& ctx);

} // namespace callstream::server::monitor
