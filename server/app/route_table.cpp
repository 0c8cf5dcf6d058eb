#include "server/app/route_table.hpp"

#include "server/app/health_routes.hpp"
#include "server/calls/call_routes.hpp"
#include "server/calls/webhook_routes.hpp"
#include "server/media/stream_routes.hpp"
#include "server/monitor/monitor_routes.hpp"

namespace callstream::server {

void add_all_routes(server_context& ctx) {
    add_health_routes(*ctx.routes);
    add_webhook_routes(*ctx.routes);
    add_call_routes(ctx);
    add_stream_routes(ctx);
    monitor::add_monitor_routes(ctx); // only with --monitor
}

} // namespace callstream::server
