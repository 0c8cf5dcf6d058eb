#pragma once
// HTTP routes for placing and tracking calls, and the X-Twilio-Signature gate for the routes
// Twilio calls us on.
//
//   POST /make-call                 bearer token; JSON in (see make_call.hpp) -> 201
//   {call_sid,status} POST /calls/{CallSid}/hangup    bearer token; Twilio Status=completed -> 200
//   GET  /calls                     bearer token; {"calls":[…]} newest first
//   GET  /calls/{CallSid}           bearer token; one call, 404 when unknown
//   POST /status                    Twilio status callbacks (signed) -> 204
// Errors are JSON {"error": "...", "field": "..."} (field only for bad input): 400 bad input,
// 401 bad/missing bearer token, 403 bad Twilio signature, 404, 405, 413, 502 Twilio refused or
// unreachable (with Twilio's code/message/more_info), 503 not configured, 504 Twilio timed out.
//
// Threading: one call_routes serves every network thread; handlers are coroutines that may run
// concurrently on any executor. It owns the Twilio REST client (and its idle connection), so it
// must be destroyed before the io_contexts it ran on. The registry is shared with the media
// sessions (on_stream_started/on_stream_stopped).

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include "server/call_registry.hpp"
#include "server/twilio_config.hpp"
#include "server/twilio_rest_client.hpp"

namespace callstream::server {

using http_request = boost::beast::http::request<boost::beast::http::string_body>;
using http_response = boost::beast::http::response<boost::beast::http::string_body>;

class call_routes {
  public:
    using log_fn = std::function<void(std::string_view line)>;

    // Throws std::runtime_error at startup (bad API base URL, unreadable CA file).
    call_routes(twilio_settings settings, call_registry& registry, log_fn log = {});
    ~call_routes();

    // True when `req`'s method and path are served by handle().
    static bool owns(const http_request& req);
    boost::asio::awaitable<http_response> handle(const http_request& req);

    // The signature gate for requests other routes serve. Returns the 403 to send when the
    // request must be refused, nullopt when it may proceed (also when checking is off).
    // Form webhooks (/twiml, /status): URL = public URL + target, form body parameters, or the
    // bodySHA256 form when the query carries it.
    std::optional<http_response> check_webhook_signature(const http_request& req) const;
    // The /media-stream WebSocket upgrade: the wss:// URL (and its https:// twin), no parameters.
    std::optional<http_response> check_upgrade_signature(const http_request& req) const;

    // TwiML for an incoming-call webhook (/twiml): <Connect><Stream> to our /media-stream with
    // the request's query parameters as <Parameter>s. Records the call (CallSid/From/To form
    // fields) in the registry when present.
    std::string twiml_for(const http_request& req);

    const twilio_settings& settings() const { return settings_; }
    call_registry& registry() { return registry_; }
    twilio_rest_client* rest_client() { return rest_.get(); }

  private:
    boost::asio::awaitable<http_response> make_call(const http_request& req);
    boost::asio::awaitable<http_response> hangup(const http_request& req, std::string call_sid);
    http_response status_callback(const http_request& req);
    http_response list_calls(const http_request& req) const;
    http_response get_call(const http_request& req, std::string_view call_sid) const;
    std::optional<http_response> check_bearer(const http_request& req) const;
    std::string public_base(const http_request& req) const;
    void log(std::string_view line) const;

    twilio_settings settings_;
    call_registry& registry_;
    log_fn log_;
    std::unique_ptr<twilio_rest_client> rest_; // null without REST credentials
};

// {"error": message[, "field": field]} with `status`.
http_response api_error(const http_request& req, unsigned status, std::string_view message,
                        std::string_view field = {});

} // namespace callstream::server
