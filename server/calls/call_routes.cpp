#include "server/calls/call_routes.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>

#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/url/parse.hpp>

#include "codec/json_string.hpp"
#include "server/app/log.hpp"
#include "server/bridge/bridge_prewarm.hpp"
#include "server/bridge/bridge_service.hpp"
#include "server/calls/status_sequencer.hpp"
#include "server/http/bearer_auth.hpp"
#include "server/http/form.hpp"
#include "server/http/router.hpp"
#include "server/twilio/create_call.hpp"
#include "server/twilio/signature.hpp"
#include "server/twilio/twiml.hpp"

// gcc 12 reports a false -Wmismatched-new-delete on Asio's awaitable frame allocator (gcc bug
// 109224, fixed in gcc 13): the frame's operator new and delete are a matching pair.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {
namespace {

constexpr std::string_view form_content_type = "application/x-www-form-urlencoded";

http_response json_ok(const http_request& req, http::status status, std::string body) {
    auto res = make_response(req, status, std::move(body), "application/json");
    res.set(http::field::cache_control, "no-store");
    return res;
}

std::string call_json(const call_result& r) {
    std::string body = "{\"call_sid\":";
    codec::append_json_string(body, r.call_sid);
    body += ",\"status\":";
    codec::append_json_string(body, r.status);
    body += "}";
    return body;
}

// Maps a failed REST result: Twilio errors and unreachable -> 502, timeout -> 504.
http_response rest_failure(const http_request& req, const call_result& r, std::string_view what) {
    if (r.outcome == twilio_outcome::twilio_error) {
        std::string body = "{\"error\":";
        codec::append_json_string(body, what);
        if (r.error_code != 0) {
            body += ",\"code\":" + std::to_string(r.error_code);
        }
        body += ",\"message\":";
        codec::append_json_string(body, r.error_message);
        if (!r.more_info.empty()) {
            body += ",\"more_info\":";
            codec::append_json_string(body, r.more_info);
        }
        body += ",\"twilio_status\":" + std::to_string(r.http_status) + "}";
        return json_ok(req, http::status::bad_gateway, std::move(body));
    }
    if (r.outcome == twilio_outcome::timeout) {
        return json_error(req, http::status::gateway_timeout,
                          "Twilio did not answer in time: " + r.detail);
    }
    if (r.outcome == twilio_outcome::connect_failed) {
        return json_error(req, http::status::bad_gateway, "cannot reach Twilio: " + r.detail);
    }
    return json_error(req, http::status::bad_gateway, "bad response from Twilio: " + r.detail);
}

bool is_form(const http_request& req) {
    const std::string_view type = req[http::field::content_type];
    return type.substr(0, form_content_type.size()) == form_content_type;
}

// The public base without a trailing '/', so base + target never has "//".
std::string signed_base(request_context& ctx) {
    std::string base = ctx.server.public_base(ctx.request, ctx.tls);
    while (!base.empty() && base.back() == '/') {
        base.pop_back();
    }
    return base;
}

std::string log_signature_state(std::string_view signature) {
    return signature.empty() ? "missing" : "mismatch";
}

} // namespace

twilio_rest_config twilio_rest_config_from(const config& cfg) {
    if (cfg.api_key.empty() != cfg.api_secret.empty()) {
        throw std::runtime_error("set both TWILIO_API_KEY and TWILIO_API_SECRET, or neither");
    }
    if (!cfg.account_sid.empty() &&
        (cfg.account_sid.size() != 34 || cfg.account_sid.rfind("AC", 0) != 0 ||
         !std::all_of(cfg.account_sid.begin() + 2, cfg.account_sid.end(),
                      [](unsigned char c) { return std::isxdigit(c) != 0; }))) {
        throw std::runtime_error("TWILIO_ACCOUNT_SID must be AC followed by 32 hex digits");
    }
    twilio_rest_config rest;
    rest.api_base = cfg.twilio_api_base;
    rest.ca_file = cfg.twilio_ca_file;
    rest.timeout = cfg.twilio_timeout;
    rest.credentials.account_sid = cfg.account_sid;
    // Twilio recommends API keys for REST; the auth token still signs webhooks either way.
    rest.credentials.username = cfg.api_key.empty() ? cfg.account_sid : cfg.api_key;
    rest.credentials.password = cfg.api_key.empty() ? cfg.auth_token : cfg.api_secret;
    return rest;
}

call_routes::call_routes(const config& cfg, std::shared_ptr<call_registry> registry)
    : public_url_(cfg.public_url), api_token_(cfg.api_token), default_from_(cfg.twilio_from),
      auth_token_(cfg.auth_token),
      verify_signatures_(cfg.verify_signatures && !cfg.auth_token.empty()),
      registry_(std::move(registry)) {
    while (!public_url_.empty() && public_url_.back() == '/') {
        public_url_.pop_back();
    }
    auto rest = twilio_rest_config_from(cfg);
    if (!rest.credentials.account_sid.empty() && !rest.credentials.password.empty()) {
        rest_ = std::make_unique<twilio_rest_client>(std::move(rest));
    }
}

std::optional<http_response> call_routes::check_bearer(const http_request& req) const {
    return check_bearer_token(req, api_token_);
}

std::optional<http_response> call_routes::check_webhook_signature(request_context& ctx) const {
    if (!verify_signatures_) {
        return std::nullopt;
    }
    const auto& req = ctx.request;
    const std::string url = signed_base(ctx) + std::string(req.target());
    const std::string_view signature = req["X-Twilio-Signature"];
    bool ok = false;
    if (ctx.query().find("bodySHA256=") != std::string_view::npos) {
        ok = twilio_validate_with_body(auth_token_, signature, url, req.body());
    } else {
        form_fields params;
        if (req.method() == http::verb::post && is_form(req)) {
            if (auto decoded = parse_form(req.body())) {
                params = std::move(*decoded);
            }
        }
        ok = twilio_validate(auth_token_, signature, url, params);
    }
    if (ok) {
        return std::nullopt;
    }
    log(log_level::warn, "twilio_signature_rejected",
        {{"path", ctx.path()},
         {"signature", log_signature_state(signature)},
         {"url", url},
         {"remote", ctx.remote}});
    return json_error(req, http::status::forbidden, "X-Twilio-Signature validation failed");
}

std::optional<http_response> call_routes::check_upgrade_signature(request_context& ctx) const {
    if (!verify_signatures_) {
        return std::nullopt;
    }
    const auto& req = ctx.request;
    // Twilio signs the wss:// URL written in our TwiML (always wss, as media_stream_url()
    // writes it, even when the base we see is plain http behind a proxy); the https:// twin is
    // tried as well.
    std::string url = signed_base(ctx) + std::string(req.target());
    if (const auto scheme_end = url.find("://"); scheme_end != std::string::npos) {
        url.replace(0, scheme_end, "wss");
    }
    const std::string_view signature = req["X-Twilio-Signature"];
    if (twilio_validate_upgrade(auth_token_, signature, url)) {
        return std::nullopt;
    }
    log(log_level::warn, "twilio_signature_rejected",
        {{"path", ctx.path()},
         {"signature", log_signature_state(signature)},
         {"url", url},
         {"remote", ctx.remote}});
    return json_error(req, http::status::forbidden, "X-Twilio-Signature validation failed");
}

net::awaitable<http_response> call_routes::make_call(request_context& ctx) {
    const auto& req = ctx.request;
    if (auto refused = check_bearer(req)) {
        co_return std::move(*refused);
    }
    if (public_url_.empty()) {
        co_return json_error(req, http::status::service_unavailable,
                             "/make-call needs --public-url (or CALLSTREAM_PUBLIC_URL): the "
                             "https URL Twilio reaches this server at, e.g. "
                             "https://abc123.ngrok-free.app");
    }
    if (!rest_) {
        co_return json_error(req, http::status::service_unavailable,
                             "/make-call needs Twilio credentials: set TWILIO_ACCOUNT_SID and "
                             "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)");
    }
    request_error error;
    auto call = parse_make_call_request(req.body(), default_from_, error);
    if (!call) {
        co_return field_error(req, http::status::bad_request, error.message, error.field);
    }
    // Parameters travel inline while the TwiML fits Twilio's 4,000 characters; beyond that they
    // stay here under an id and the stream gets them back when it starts.
    // A bridged call's upstream opens on this instance as soon as Twilio has the call (below);
    // in a cluster its stream is pinned here (HAProxy's use-server).
    const bool prewarm = ctx.server.bridge &&
                         bridge::wants_prewarm(*ctx.server.bridge,
                                               ctx.server.processors.default_app, call->parameters);
    const std::string stream_url =
        prewarm && !ctx.server.pinned_stream_path.empty()
            ? media_stream_url(public_url_, ctx.server.pinned_stream_path)
            : media_stream_url(public_url_);
    std::string twiml = make_call_twiml(*call, stream_url, call->parameters);
    std::string parameter_id;
    if (twiml.size() > twiml_inline_max_chars) {
        parameter_id = co_await async_put_parameters(registry_->parameters(), call->parameters,
                                                     call_parameters_ttl, net::use_awaitable);
        if (parameter_id.empty()) {
            co_return json_error(req, http::status::service_unavailable,
                                 "cannot keep the call's parameters: the parameter store is "
                                 "unavailable");
        }
        twiml =
            make_call_twiml(*call, stream_url, {{std::string(parameters_id_name), parameter_id}});
    }
    if (twiml.size() > twiml_inline_max_chars) {
        // Only a very long --public-url gets here: nothing the request could shorten.
        registry_->parameters().discard(parameter_id);
        co_return json_error(req, http::status::internal_server_error,
                             "the call's TwiML would be " + std::to_string(twiml.size()) +
                                 " characters, over Twilio's 4000: shorten --public-url");
    }
    const form_fields form = make_call_form(*call, public_url_, std::move(twiml));
    const call_result result = co_await rest_->create_call(form);
    if (result.outcome != twilio_outcome::ok) {
        if (!parameter_id.empty()) {
            registry_->parameters().discard(parameter_id);
        }
        log(log_level::warn, "make_call_failed",
            {{"to", call->to},
             {"twilio_status", result.http_status},
             {"code", result.error_code},
             {"message", result.error_message},
             {"detail", result.detail}});
        co_return rest_failure(req, result, "Twilio refused the call");
    }
    registry_->on_call_created(result.call_sid, call->to, call->from, result.status);
    if (prewarm) {
        // Twilio now dials: the upstream's handshake overlaps the ringing (BRIDGE.md §1.1.6).
        bridge::prewarm_call(*ctx.server.bridge, ctx.server.processors.default_app, result.call_sid,
                             call->parameters, co_await net::this_coro::executor);
    }
    log(log_level::info, "call_placed",
        {{"call_sid", result.call_sid},
         {"to", call->to},
         {"status", result.status},
         {"mode", call->fork ? "fork" : "connect"},
         {"parameters", parameter_id.empty() ? "inline" : "stored"}});
    co_return json_ok(req, http::status::created, call_json(result));
}

net::awaitable<http_response> call_routes::hangup(request_context& ctx) {
    const auto& req = ctx.request;
    if (auto refused = check_bearer(req)) {
        co_return std::move(*refused);
    }
    const std::string call_sid(ctx.path_param("sid"));
    if (!is_call_sid(call_sid)) {
        co_return field_error(req, http::status::bad_request,
                              "the call SID must be CA followed by 32 hex digits", "sid");
    }
    if (!rest_) {
        co_return json_error(req, http::status::service_unavailable,
                             "hangup needs Twilio credentials: set TWILIO_ACCOUNT_SID and "
                             "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)");
    }
    const call_result result = co_await rest_->hangup(call_sid);
    if (result.outcome != twilio_outcome::ok) {
        co_return rest_failure(req, result, "Twilio refused the hangup");
    }
    log(log_level::info, "call_hangup", {{"call_sid", call_sid}, {"status", result.status}});
    // Twilio ends the call and then its stream; closing the call's streams here as well frees
    // them at once and shows the caller's side the end without waiting for Twilio's stop.
    if (const auto call = registry_->find(call_sid)) {
        for (const auto& s : call->streams) {
            if (auto session = s.stopped ? nullptr : ctx.server.sessions.find(s.stream_sid)) {
                session->post_close(1000, "call hung up");
            }
        }
    }
    co_return json_ok(req, http::status::ok, call_json(result));
}

net::awaitable<http_response> call_routes::status_callback(request_context& ctx) {
    const auto& req = ctx.request;
    if (auto refused = check_webhook_signature(ctx)) {
        co_return std::move(*refused);
    }
    auto form = parse_form(req.body());
    if (!form) {
        co_return field_error(req, http::status::bad_request, "malformed form body", "");
    }
    const auto sid = form_value(*form, "CallSid");
    if (!sid || !is_call_sid(*sid)) {
        co_return field_error(req, http::status::bad_request,
                              "CallSid must be CA followed by 32 hex digits", "CallSid");
    }
    status_update u;
    u.call_sid = *sid;
    const std::pair<const char*, std::string*> fields[] = {
        {"CallStatus", &u.call_status},
        {"SequenceNumber", &u.sequence_number},
        {"To", &u.to},
        {"From", &u.from},
        {"Direction", &u.direction},
        {"AnsweredBy", &u.answered_by},
        {"SipResponseCode", &u.sip_response_code},
        {"CallDuration", &u.call_duration}};
    for (const auto& [name, field] : fields) {
        if (const auto v = form_value(*form, name)) {
            *field = *v;
        }
    }
    const std::string received_status = u.call_status;
    const std::string received_sequence = u.sequence_number;
    bool newest = true;
    if (auto* sequencer = registry_->sequencer(); sequencer != nullptr) {
        // In a cluster the callbacks of one call reach several instances: the newest status
        // cluster-wide is what this one records (server/calls/status_sequencer.hpp).
        auto ordered = co_await async_order_status(*sequencer, u, net::use_awaitable);
        u = std::move(ordered.update);
        newest = ordered.newest;
    }
    const bool applied = registry_->on_status(u) && newest;
    log(log_level::info, "call_status",
        {{"call_sid", u.call_sid},
         {"status", received_status},
         {"sequence", received_sequence},
         {"applied", applied ? "yes" : "no"}});
    http_response res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    co_return res;
}

net::awaitable<http_response> call_routes::list_calls(request_context& ctx) {
    if (auto refused = check_bearer(ctx.request)) {
        co_return std::move(*refused);
    }
    std::string body = "{\"calls\":[";
    bool first = true;
    for (const auto& call : registry_->recent()) {
        body += first ? "" : ",";
        first = false;
        body += call_record_json(call);
    }
    body += "]}";
    co_return json_ok(ctx.request, http::status::ok, std::move(body));
}

net::awaitable<http_response> call_routes::get_call(request_context& ctx) {
    if (auto refused = check_bearer(ctx.request)) {
        co_return std::move(*refused);
    }
    const std::string_view sid = ctx.path_param("sid");
    if (!is_call_sid(sid)) {
        co_return field_error(ctx.request, http::status::bad_request,
                              "the call SID must be CA followed by 32 hex digits", "sid");
    }
    const auto call = registry_->find(sid);
    if (!call) {
        co_return json_error(ctx.request, http::status::not_found, "no such call");
    }
    std::string body = call_record_json(*call);
    if (ctx.server.bridge) {
        // The call's upstream and its state, while the call has a bridge.
        if (auto b = ctx.server.bridge->describe(std::string(sid));
            !b.empty() && !body.empty() && body.back() == '}') {
            body.pop_back();
            body += ",\"bridge\":" + b + "}";
        }
    }
    co_return json_ok(ctx.request, http::status::ok, std::move(body));
}

void add_call_routes(server_context& ctx) {
    if (const auto& url = ctx.cfg.public_url; !url.empty()) {
        auto parsed = boost::urls::parse_absolute_uri(url);
        if (!parsed || (parsed->scheme() != "https" && parsed->scheme() != "http") ||
            parsed->host().empty() || parsed->has_query() || parsed->has_fragment()) {
            throw std::runtime_error(
                "--public-url must look like https://host[:port][/prefix], got '" + url + "'");
        }
        // Twilio refuses callback URLs whose host has an underscore (or is no host name at all).
        if (!is_host_name(parsed->encoded_host())) {
            throw std::runtime_error("--public-url host '" + std::string(parsed->encoded_host()) +
                                     "' is not a valid host name (letters, digits, '-', '.'; "
                                     "Twilio refuses '_')");
        }
        // Media Streams connect only to wss on 443: a stream URL on another port never connects.
        if (parsed->has_port() && parsed->port() != "443") {
            log(log_level::warn, "public_url_port",
                {{"port", std::string(parsed->port())},
                 {"reason", "Twilio Media Streams connect to wss on port 443 only"}});
        }
    }
    ctx.calls = std::make_shared<call_registry>();
    auto routes = std::make_shared<call_routes>(ctx.cfg, ctx.calls);
    if (!routes->verifies_signatures()) {
        log(log_level::warn, "twilio_signatures_off",
            {{"reason",
              ctx.cfg.auth_token.empty() ? "no TWILIO_AUTH_TOKEN" : "--no-verify-signatures"}});
    }
    auto& r = *ctx.routes;
    r.add(http::verb::post, "/make-call",
          [routes](request_context& c) { return routes->make_call(c); });
    r.add(http::verb::post, "/calls/{sid}/hangup",
          [routes](request_context& c) { return routes->hangup(c); });
    r.add(http::verb::get, "/calls",
          [routes](request_context& c) { return routes->list_calls(c); });
    r.add(http::verb::get, "/calls/{sid}",
          [routes](request_context& c) { return routes->get_call(c); });
    r.add(http::verb::post, "/status",
          [routes](request_context& c) { return routes->status_callback(c); });
    ctx.webhook_checks.push_back(
        [routes](request_context& c) { return routes->check_webhook_signature(c); });
    ctx.upgrade_checks.push_back(
        [routes](request_context& c) { return routes->check_upgrade_signature(c); });
}

} // namespace callstream::server
