// GET|POST /twiml: the voice webhook that answers a call with TwiML connecting it to /media-stream.
#include "server/calls/webhook_routes.hpp"

#include <boost/asio/this_coro.hpp>

#include "server/bridge/bridge_prewarm.hpp"
#include "server/calls/call_registry.hpp"
#include "server/http/form.hpp"
#include "server/http/router.hpp"
#include "server/twilio/twiml.hpp"

namespace callstream::server {
namespace {

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
    if (ctx.server.bridge) {
        // Open the call's upstream while the phone rings (server/bridge/bridge_prewarm.hpp).
        bridge::prewarm_for_twiml(*ctx.server.bridge, ctx.server.processors.default_app, params,
                                  co_await net::this_coro::executor);
    }
    const std::string url = media_stream_url(ctx.server.public_base(ctx.request, ctx.tls));
    co_return make_response(ctx.request, http::status::ok, connect_stream_twiml(url, params),
                            "text/xml; charset=utf-8");
}

} // namespace

void add_webhook_routes(router& r) {
    r.add(http::verb::get, "/twiml", twiml);
    r.add(http::verb::post, "/twiml", twiml);
}

} // namespace callstream::server
