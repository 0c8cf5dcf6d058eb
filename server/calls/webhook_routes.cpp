// GET|POST /twiml: the voice webhook that answers a call with TwiML connecting it to /media-stream
// (or, in a cluster, to /i/{instance}/media-stream when this instance pre-warmed its bridge).
#include "server/calls/webhook_routes.hpp"

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/bridge/bridge_prewarm.hpp"
#include "server/calls/call_registry.hpp"
#include "server/http/form.hpp"
#include "server/http/router.hpp"
#include "server/twilio/create_call.hpp"
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
    twiml_parameters params;
    auto query = parse_form(ctx.query());
    if (!query) {
        co_return json_error(ctx.request, http::status::bad_request, "malformed query string");
    }
    // ?mode=fork&dial=TARGET: the call goes on to TARGET while both tracks are copied to us.
    std::string mode = "connect";
    std::string dial;
    for (auto& field : *query) {
        if (field.first == "mode") {
            mode = field.second;
        } else if (field.first == "dial") {
            dial = field.second;
        } else if (field.first == parameters_id_name) {
            co_return field_error(ctx.request, http::status::bad_request,
                                  std::string(parameters_id_name) + " is reserved by callstream",
                                  field.first);
        } else {
            params.push_back(std::move(field));
        }
    }
    if (mode != "connect" && mode != "fork") {
        co_return field_error(ctx.request, http::status::bad_request,
                              "mode must be connect or fork", "mode");
    }
    if (mode == "fork") {
        call_target_kind kind{};
        std::string why;
        if (dial.empty()) {
            co_return field_error(ctx.request, http::status::bad_request,
                                  "mode=fork needs dial: the number, sip: URI or client:identity "
                                  "to connect the caller to",
                                  "dial");
        }
        if (!parse_call_target(dial, kind, why)) {
            co_return field_error(ctx.request, http::status::bad_request,
                                  kind == call_target_kind::phone ? "dial must be " + why : why,
                                  "dial");
        }
    } else if (!dial.empty()) {
        co_return field_error(ctx.request, http::status::bad_request,
                              "dial only applies with mode=fork", "dial");
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
    const std::string base = ctx.server.public_base(ctx.request, ctx.tls);
    if (ctx.server.cfg.public_url.empty()) {
        // The host comes from the request (Host / X-Forwarded-Host): anything but host[:port]
        // would be written into the Stream URL and send Twilio somewhere else.
        const auto scheme_end = base.find("://");
        const std::string_view host =
            std::string_view(base).substr(scheme_end == std::string::npos ? 0 : scheme_end + 3);
        if (!is_host_port(host)) {
            co_return json_error(ctx.request, http::status::bad_request,
                                 "the Host (or X-Forwarded-Host) header must be host[:port]; "
                                 "or start callstream with --public-url");
        }
    }
    bool prewarmed = false;
    if (ctx.server.bridge) {
        // Open the call's upstream while the phone rings (server/bridge/bridge_prewarm.hpp).
        prewarmed = bridge::prewarm_for_twiml(*ctx.server.bridge, ctx.server.processors.default_app,
                                              params, co_await net::this_coro::executor);
    }
    // In a cluster, a call whose upstream waits here is pinned here (HAProxy's use-server).
    const std::string url = prewarmed && !ctx.server.pinned_stream_path.empty()
                                ? media_stream_url(base, ctx.server.pinned_stream_path)
                                : media_stream_url(base);
    const auto render = [&](const twiml_parameters& p) {
        return mode == "fork" ? fork_stream_twiml(url, p, dial) : connect_stream_twiml(url, p);
    };
    std::string body = render(params);
    if (ctx.server.calls && parameters_too_long_for_twiml(params)) {
        // Twilio would refuse these <Parameter>s: they stay with callstream (in a cluster in
        // Redis, for whichever instance takes the stream) and the TwiML carries their id.
        const std::string id = co_await async_put_parameters(
            ctx.server.calls->parameters(), params, call_parameters_ttl, net::use_awaitable);
        if (id.empty()) {
            co_return json_error(ctx.request, http::status::service_unavailable,
                                 "cannot keep the call's parameters: the parameter store is "
                                 "unavailable");
        }
        body = render({{std::string(parameters_id_name), id}});
    }
    co_return make_response(ctx.request, http::status::ok, std::move(body),
                            "text/xml; charset=utf-8");
}

} // namespace

void add_webhook_routes(router& r) {
    r.add(http::verb::get, "/twiml", twiml);
    r.add(http::verb::post, "/twiml", twiml);
}

} // namespace callstream::server
