#include "server/routes.hpp"

#include "server/call_routes.hpp"
#include "server/stream_routes.hpp"

namespace callstream::server {

void add_extra_routes(server_context& ctx) {
    add_call_routes(ctx);
    add_stream_routes(ctx);
}

} // namespace callstream::server
