// GET /healthz, GET /metrics, GET|POST /twiml.
#include "server/call_registry.hpp"
#include "server/form.hpp"
#include "server/router.hpp"
#include "server/twiml.hpp"

namespace callstream::server {
namespace {

net::awaitable<http_response> healthz(request_context& ctx) {
    co_return make_response(ctx.request, http::status::ok, "ok");
}

net::awaitable<http_response> metrics_route(request_context& ctx) {
    co_return make_response(ctx.request, http::status::ok, ctx.server.stats.render_prometheus(),
                            "text/plain; version=0.0.4; charset=utf-8");
}

// The voice webhook. Twilio posts the call's standard parameters as a form; CallSid, From and
// To travel on to the stream as <Parameter>s, and so does every query parameter (e.g. ?app=record)
// so a number's webhook URL can choose the processors.
net::awaitable<http_response> twiml(request_context& ctx) {
    for (const auto& check : ctx.server.webhook_checks) {
        if (auto refused = check(ctx)) {
            co_return std::move(*refused);
        }
    }
    std::vector<std::pair<std::string, std::string>> params;
    auto query = parse_form(ctx.query());
    if (!query) {
        co_return json_error(ctx.request, http::status::bad_request, "malformed query string");
    }
    for (auto& field : *query) {
        params.push_back(std::move(field));
    }
    if (ctx.request.method() == http::verb::post) {
        auto form = parse_form(ctx.request.body());
        if (!form) {
            co_return json_error(ctx.request, http::status::bad_request, "malformed form body");
        }
        for (const char* name : {"CallSid", "From", "To"}) {
            if (auto v = form_value(*form, name)) {
                params.emplace_back(name, std::string(*v));
            }
        }
        if (ctx.server.calls) {
            ctx.server.calls->on_webhook(*form); // an incoming call shows up in GET /calls
        }
    }
    const std::string url = media_stream_url(ctx.server.public_base(ctx.request, ctx.tls));
    co_return make_response(ctx.request, http::status::ok, connect_stream_twiml(url, params),
                            "text/xml; charset=utf-8");
}

} // namespace

void add_core_routes(router& r) {
    r.add(http::verb::get, "/healthz", healthz);
    r.add(http::verb::get, "/metrics", metrics_route);
    r.add(http::verb::get, "/twiml", twiml);
    r.add(http::verb::post, "/twiml", twiml);
}

std::string server_context::public_base(const http_request& req, bool tls) const {
    if (!cfg.public_url.empty()) {
        return cfg.public_url;
    }
    // Behind ngrok or a load balancer the original scheme and host arrive as X-Forwarded-*.
    std::string_view proto = req["X-Forwarded-Proto"];
    std::string_view host = req["X-Forwarded-Host"];
    if (host.empty()) {
        host = req[http::field::host];
    }
    if (proto.empty()) {
        proto = tls ? "https" : "http";
    }
    // A comma-separated chain of proxies: the first entry is the client-facing one.
    proto = proto.substr(0, proto.find(','));
    host = host.substr(0, host.find(','));
    return std::string(proto) + "://" + std::string(host);
}

} // namespace callstream::server
