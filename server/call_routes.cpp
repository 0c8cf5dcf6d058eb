#include "server/call_routes.hpp"

#include <iostream>

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/verb.hpp>
#include <boost/url/parse.hpp>

#include "server/form_codec.hpp"
#include "server/json_quote.hpp"
#include "server/make_call.hpp"
#include "server/twilio_signature.hpp"

// gcc 12 reports a false -Wmismatched-new-delete on Asio's awaitable frame allocator (gcc bug
// 109224, fixed in gcc 13): the frame's operator new and delete are a matching pair.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {

namespace http = boost::beast::http;

namespace {

constexpr std::size_t status_body_max_bytes = 64 * 1024;

// "/calls/CA…/hangup" -> {"CA…", "hangup"}; "/calls/CA…" -> {"CA…", ""}.
struct calls_path {
    bool matches = false;
    std::string_view sid;
    std::string_view action;
};

calls_path split_calls_path(std::string_view path) {
    constexpr std::string_view prefix = "/calls/";
    if (path.substr(0, prefix.size()) != prefix) {
        return {};
    }
    std::string_view rest = path.substr(prefix.size());
    const auto slash = rest.find('/');
    calls_path out;
    out.matches = true;
    out.sid = rest.substr(0, slash);
    out.action = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    return out;
}

std::string_view path_of(std::string_view target) {
    return target.substr(0, target.find('?'));
}

http_response json_response(const http_request& req, http::status status, std::string body) {
    http_response res{status, req.version()};
    res.set(http::field::content_type, "application/json");
    res.set(http::field::cache_control, "no-store");
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

std::string twilio_error_json(std::string_view what, const call_result& r) {
    std::string body = "{\"error\":";
    json_quote(body, what);
    if (r.error_code != 0) {
        body += ",\"code\":" + std::to_string(r.error_code);
    }
    body += ",\"message\":";
    json_quote(body, r.error_message);
    if (!r.more_info.empty()) {
        body += ",\"more_info\":";
        json_quote(body, r.more_info);
    }
    body += ",\"twilio_status\":" + std::to_string(r.http_status) + "}";
    return body;
}

// Maps a failed REST result to our answer: Twilio errors and unreachable -> 502, timeout -> 504.
http_response rest_failure(const http_request& req, const call_result& r, std::string_view what) {
    switch (r.outcome) {
    case twilio_outcome::twilio_error:
        return json_response(req, http::status::bad_gateway, twilio_error_json(what, r));
    case twilio_outcome::timeout:
        return api_error(req, 504, "Twilio did not answer in time: " + r.detail);
    case twilio_outcome::connect_failed:
        return api_error(req, 502, "cannot reach Twilio: " + r.detail);
    default:
        return api_error(req, 502, "bad response from Twilio: " + r.detail);
    }
}

} // namespace

http_response api_error(const http_request& req, unsigned status, std::string_view message,
                        std::string_view field) {
    std::string body = "{\"error\":";
    json_quote(body, message);
    if (!field.empty()) {
        body += ",\"field\":";
        json_quote(body, field);
    }
    body += "}";
    return json_response(req, static_cast<http::status>(status), std::move(body));
}

call_routes::call_routes(twilio_settings settings, call_registry& registry, log_fn log)
    : settings_(std::move(settings)), registry_(registry), log_(std::move(log)) {
    if (settings_.rest_configured) {
        rest_ = std::make_unique<twilio_rest_client>(settings_.rest);
    }
}

call_routes::~call_routes() = default;

void call_routes::log(std::string_view line) const {
    if (log_) {
        log_(line);
    } else {
        std::clog << "callstream: " << line << '\n';
    }
}

bool call_routes::owns(const http_request& req) {
    const std::string_view path = path_of(req.target());
    if (path == "/make-call" || path == "/status" || path == "/calls") {
        return true;
    }
    return split_calls_path(path).matches;
}

boost::asio::awaitable<http_response> call_routes::handle(const http_request& req) {
    const std::string_view path = path_of(req.target());
    const auto method = req.method();
    if (path == "/make-call") {
        if (method != http::verb::post) {
            co_return api_error(req, 405, "use POST /make-call");
        }
        co_return co_await make_call(req);
    }
    if (path == "/status") {
        if (method != http::verb::post) {
            co_return api_error(req, 405, "use POST /status");
        }
        co_return status_callback(req);
    }
    if (path == "/calls") {
        if (method != http::verb::get) {
            co_return api_error(req, 405, "use GET /calls");
        }
        co_return list_calls(req);
    }
    const calls_path cp = split_calls_path(path);
    if (cp.matches && cp.action == "hangup") {
        if (method != http::verb::post) {
            co_return api_error(req, 405, "use POST /calls/{CallSid}/hangup");
        }
        co_return co_await hangup(req, std::string(cp.sid));
    }
    if (cp.matches && cp.action.empty()) {
        if (method != http::verb::get) {
            co_return api_error(req, 405, "use GET /calls/{CallSid}");
        }
        co_return get_call(req, cp.sid);
    }
    co_return api_error(req, 404, "no such route");
}

std::optional<http_response> call_routes::check_bearer(const http_request& req) const {
    if (settings_.api_token.empty()) {
        return api_error(req, 503,
                         "this endpoint is disabled until an API token is configured: set "
                         "CALLSTREAM_API_TOKEN or pass --api-token, then send "
                         "'Authorization: Bearer <token>'");
    }
    const std::string_view header = req[http::field::authorization];
    constexpr std::string_view scheme = "bearer ";
    bool scheme_ok = header.size() > scheme.size();
    for (std::size_t i = 0; scheme_ok && i < scheme.size(); ++i) {
        scheme_ok = std::tolower(static_cast<unsigned char>(header[i])) == scheme[i];
    }
    // Constant time over the token so a mismatch position leaks nothing.
    if (!scheme_ok || !constant_time_equal(header.substr(scheme.size()), settings_.api_token)) {
        auto res = api_error(req, 401, "missing or wrong bearer token");
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

std::string call_routes::public_base(const http_request& req) const {
    if (!settings_.public_url.empty()) {
        return settings_.public_url;
    }
    // Without --public-url, trust the Host header (ngrok and most proxies pass it through).
    return "https://" + std::string(req[http::field::host]);
}

std::optional<http_response> call_routes::check_webhook_signature(const http_request& req) const {
    if (!settings_.verify_signatures()) {
        return std::nullopt;
    }
    const std::string url = public_base(req) + std::string(req.target());
    const std::string_view signature = req["X-Twilio-Signature"];
    bool ok = false;
    if (req.target().find("bodySHA256=") != std::string_view::npos) {
        ok = twilio_validate_with_body(settings_.auth_token, signature, url, req.body());
    } else {
        form_params params;
        const std::string_view content_type = req[http::field::content_type];
        if (req.method() == http::verb::post &&
            content_type.substr(0, 33) == "application/x-www-form-urlencoded") {
            auto decoded = decode_form(req.body());
            if (decoded) {
                params = std::move(*decoded);
            }
        }
        ok = twilio_validate(settings_.auth_token, signature, url, params);
    }
    if (ok) {
        return std::nullopt;
    }
    log(std::string("refused ") + std::string(req.method_string()) + " " +
        std::string(path_of(req.target())) + ": X-Twilio-Signature " +
        (signature.empty() ? "missing" : "does not match") + " for " + url);
    return api_error(req, 403, "X-Twilio-Signature validation failed");
}

std::optional<http_response> call_routes::check_upgrade_signature(const http_request& req) const {
    if (!settings_.verify_signatures()) {
        return std::nullopt;
    }
    std::string url = public_base(req) + std::string(req.target());
    url = twilio_swap_ws_scheme(url); // https://… -> wss://…, as written in our TwiML
    const std::string_view signature = req["X-Twilio-Signature"];
    if (twilio_validate_upgrade(settings_.auth_token, signature, url)) {
        return std::nullopt;
    }
    log(std::string("refused WebSocket upgrade of ") + std::string(path_of(req.target())) +
        ": X-Twilio-Signature " + (signature.empty() ? "missing" : "does not match") + " for " +
        url);
    return api_error(req, 403, "X-Twilio-Signature validation failed");
}

std::string call_routes::twiml_for(const http_request& req) {
    std::vector<std::pair<std::string, std::string>> parameters;
    const std::string_view target = req.target();
    if (const auto q = target.find('?'); q != std::string_view::npos) {
        if (auto query = decode_form(target.substr(q + 1))) {
            for (auto& p : *query) {
                parameters.emplace_back(std::move(p.name), std::move(p.value));
            }
        }
    }
    if (req.method() == http::verb::post) {
        if (auto form = decode_form(req.body())) {
            const std::string* sid = find_form_value(*form, "CallSid");
            if (sid != nullptr && is_call_sid(*sid)) {
                status_update u;
                u.call_sid = *sid;
                for (auto& [name, field] : {std::pair<const char*, std::string*>{"To", &u.to},
                                            {"From", &u.from},
                                            {"Direction", &u.direction}}) {
                    if (const std::string* v = find_form_value(*form, name)) {
                        *field = *v;
                    }
                }
                registry_.on_status(u);
            }
        }
    }
    std::string ws_url = twilio_swap_ws_scheme(public_base(req)) + "/media-stream";
    if (settings_.public_url.empty() && ws_url.rfind("wss://", 0) != 0) {
        ws_url = "wss://" + std::string(req[http::field::host]) + "/media-stream";
    }
    return stream_twiml(ws_url, parameters);
}

boost::asio::awaitable<http_response> call_routes::make_call(const http_request& req) {
    if (auto refused = check_bearer(req)) {
        co_return std::move(*refused);
    }
    if (settings_.public_url.empty()) {
        co_return api_error(req, 503,
                            "/make-call needs --public-url (or CALLSTREAM_PUBLIC_URL): the "
                            "https URL Twilio reaches this server at, e.g. "
                            "https://abc123.ngrok-free.app");
    }
    if (!rest_) {
        co_return api_error(req, 503,
                            "/make-call needs Twilio credentials: set TWILIO_ACCOUNT_SID and "
                            "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)");
    }
    request_error error;
    auto call = parse_make_call_request(req.body(), settings_.default_from, error);
    if (!call) {
        co_return api_error(req, 400, error.message, error.field);
    }
    const form_params form =
        make_call_form(*call, settings_.public_url, settings_.media_stream_url());
    const call_result result = co_await rest_->create_call(form);
    if (result.outcome != twilio_outcome::ok) {
        log("POST /make-call to " + call->to + " failed: " +
            (result.outcome == twilio_outcome::twilio_error
                 ? "Twilio " + std::to_string(result.http_status) + " code " +
                       std::to_string(result.error_code) + " " + result.error_message
                 : result.detail));
        co_return rest_failure(req, result, "Twilio refused the call");
    }
    registry_.on_call_created(result.call_sid, call->to, call->from, result.status);
    log("placed call " + result.call_sid + " to " + call->to);
    std::string body = "{\"call_sid\":";
    json_quote(body, result.call_sid);
    body += ",\"status\":";
    json_quote(body, result.status);
    body += "}";
    co_return json_response(req, http::status::created, std::move(body));
}

boost::asio::awaitable<http_response> call_routes::hangup(const http_request& req,
                                                          std::string call_sid) {
    if (auto refused = check_bearer(req)) {
        co_return std::move(*refused);
    }
    if (!is_call_sid(call_sid)) {
        co_return api_error(req, 400, "CallSid must be CA followed by 32 hex digits", "call_sid");
    }
    if (!rest_) {
        co_return api_error(req, 503,
                            "hangup needs Twilio credentials: set TWILIO_ACCOUNT_SID and "
                            "TWILIO_AUTH_TOKEN (or TWILIO_API_KEY and TWILIO_API_SECRET)");
    }
    const call_result result = co_await rest_->hangup(call_sid);
    if (result.outcome != twilio_outcome::ok) {
        co_return rest_failure(req, result, "Twilio refused the hangup");
    }
    status_update u;
    u.call_sid = call_sid;
    registry_.on_status(u); // make sure the call is listed
    std::string body = "{\"call_sid\":";
    json_quote(body, result.call_sid);
    body += ",\"status\":";
    json_quote(body, result.status);
    body += "}";
    co_return json_response(req, http::status::ok, std::move(body));
}

http_response call_routes::status_callback(const http_request& req) {
    if (auto refused = check_webhook_signature(req)) {
        return std::move(*refused);
    }
    if (req.body().size() > status_body_max_bytes) {
        return api_error(req, 413, "status callback body too large");
    }
    auto form = decode_form(req.body());
    if (!form) {
        return api_error(req, 400, "malformed form body");
    }
    const std::string* sid = find_form_value(*form, "CallSid");
    if (sid == nullptr || !is_call_sid(*sid)) {
        return api_error(req, 400, "CallSid must be CA followed by 32 hex digits", "CallSid");
    }
    status_update u;
    u.call_sid = *sid;
    for (auto& [name, field] : {std::pair<const char*, std::string*>{"CallStatus", &u.call_status},
                                {"SequenceNumber", &u.sequence_number},
                                {"To", &u.to},
                                {"From", &u.from},
                                {"Direction", &u.direction},
                                {"AnsweredBy", &u.answered_by},
                                {"SipResponseCode", &u.sip_response_code},
                                {"CallDuration", &u.call_duration}}) {
        if (const std::string* v = find_form_value(*form, name)) {
            *field = *v;
        }
    }
    registry_.on_status(u);
    http_response res{http::status::no_content, req.version()};
    res.keep_alive(req.keep_alive());
    res.prepare_payload();
    return res;
}

http_response call_routes::list_calls(const http_request& req) const {
    if (auto refused = check_bearer(req)) {
        return std::move(*refused);
    }
    std::string body = "{\"calls\":[";
    bool first = true;
    for (const auto& call : registry_.recent()) {
        if (!first) {
            body += ",";
        }
        first = false;
        body += call_record_json(call);
    }
    body += "]}";
    return json_response(req, http::status::ok, std::move(body));
}

http_response call_routes::get_call(const http_request& req, std::string_view call_sid) const {
    if (auto refused = check_bearer(req)) {
        return std::move(*refused);
    }
    if (!is_call_sid(call_sid)) {
        return api_error(req, 400, "CallSid must be CA followed by 32 hex digits", "call_sid");
    }
    const auto call = registry_.find(call_sid);
    if (!call) {
        return api_error(req, 404, "no such call");
    }
    return json_response(req, http::status::ok, call_record_json(*call));
}

} // namespace callstream::server
