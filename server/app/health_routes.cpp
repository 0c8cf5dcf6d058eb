#include "server/app/health_routes.hpp"

#include "server/app/server_context.hpp"
#include "server/bridge/bridge_service.hpp"

namespace callstream::server {
namespace {

net::awaitable<http_response> healthz(request_context& ctx) {
    co_return make_response(ctx.request, http::status::ok, "ok");
}

net::awaitable<http_response> metrics_route(request_context& ctx) {
    std::string body = ctx.server.stats.render_prometheus();
    if (ctx.server.bridge) {
        ctx.server.bridge->stats().render(body);
    }
    co_return make_response(ctx.request, http::status::ok, std::move(body),
                            "text/plain; version=0.0.4; charset=utf-8");
}

} // namespace

void add_health_routes(router& r) {
    r.add(http::verb::get, "/healthz", healthz);
    r.add(http::verb::get, "/metrics", metrics_route);
}

} // namespace callstream::server
