#pragma once
// Every HTTP route callstream serves (/healthz, /metrics, /twiml, /make-call, /calls, /status,
// /streams/{sid}/...), and the upgrade and webhook checks they bring. Called once, on the main
// thread, while the server is built; throws std::runtime_error on a bad configuration.

#include "server/app/server_context.hpp"

namespace callstream::server {

void add_all_routes(server_context& ctx);

} // namespace callstream::server
