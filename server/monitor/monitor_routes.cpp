#include "server/monitor/monitor_routes.hpp"

#include "server/http/bearer_auth.hpp"
#include "server/http/router.hpp"
#include "server/monitor/monitor_hub.hpp"

namespace callstream::server::monitor {
namespace {

http_response serve(const http_request& req, const asset& a) {
    auto res = make_response(req, http::status::ok, a.body, a.content_type);
    // The page fetches nothing from elsewhere; say so to the browser as well.
    res.set("Content-Security-Policy",
            "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
            "style-src 'self'; script-src 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set(http::field::cache_control, "no-cache");
    return res;
}

} // namespace

void add_monitor_routes(server_context& ctx) {
    if (!ctx.monitor) {
        return;
    }
    auto& r = *ctx.routes;
    auto hub = ctx.monitor; // the routes keep the assets alive
    r.add(http::verb::get, "/monitor", [hub](request_context& c) -> net::awaitable<http_response> {
        co_return serve(c.request, *hub->assets().find("index.html"));
    });
    r.add(http::verb::get, "/monitor/{file}",
          [hub](request_context& c) -> net::awaitable<http_response> {
              const auto name = c.path_param("file");
              if (const asset* a = hub->assets().find(name)) {
                  co_return serve(c.request, *a);
              }
              if (name == "events" || name == "listen") {
                  auto res = json_error(c.request, http::status::upgrade_required,
                                        "/monitor/" + std::string(name) +
                                            " is a WebSocket endpoint (?token= from POST "
                                            "/monitor/token)");
                  res.set(http::field::upgrade, "websocket");
                  co_return res;
              }
              co_return json_error(c.request, http::status::not_found,
                                   "no monitor file " + std::string(name));
          });
    r.add(http::verb::post, "/monitor/token",
          [](request_context& c) -> net::awaitable<http_response> {
              if (auto refused = check_bearer_token(c.request, c.server.cfg.api_token)) {
                  co_return std::move(*refused);
              }
              const auto& tokens = c.server.monitor->tokens();
              const std::string body =
                  "{\"token\":\"" + tokens.issue(std::chrono::system_clock::now()) +
                  "\",\"expires_in\":" + std::to_string(tokens.ttl().count()) + "}";
              auto res = make_response(c.request, http::status::ok, body, "application/json");
              res.set(http::field::cache_control, "no-store");
              co_return res;
          });
}

} // namespace callstream::server::monitor
