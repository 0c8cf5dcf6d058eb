#pragma once
// Routes beyond the core ones (/make-call, /calls, /status, /streams/{sid}/...), and the
// upgrade checks they bring. Called once while the server is built.

#include "server/server_context.hpp"

namespace callstream::server {

void add_extra_routes(server_context& ctx);

} // namespace callstream::server
