#pragma once
// The calls room: calls as Twilio sees them (placed, ringing, completed) and the webhooks
// Twilio sends about them.
//   call_routes       /make-call, /calls, /status and the signature checks (this file)
//   call_registry     the recent calls and the streams that ran for them
//   webhook_routes    /twiml, the voice webhook
// May include server/app, server/http and server/twilio; never server/media (the media room
// reports stream starts and stops into call_registry, not the other way round).
//
// HTTP routes for placing and tracking calls, and the X-Twilio-Signature checks for the
// requests Twilio sends us.
//
//   POST /make-call                 bearer token; JSON in (make_call.hpp) -> 201 {call_sid,status}
//   POST /calls/{sid}/hangup        bearer token; Twilio Status=completed -> 200 {call_sid,status}
//   GET  /calls                     bearer token; {"calls":[…]} newest first
//   GET  /calls/{sid}               bearer token; one call, 404 when unknown
//   POST /status                    Twilio call status callbacks (signed) -> 204
// and, through server_context hooks, the signature check on /twiml (webhook_checks) and on the
// /media-stream WebSocket upgrade (upgrade_checks).
//
// Errors are JSON {"error": "...", "field": "..."} (field only for bad input): 400 bad input,
// 401 bad or missing bearer token, 403 bad Twilio signature, 404, 502 Twilio refused or could not
// be reached (with Twilio's code, message, more_info), 503 not configured, 504 Twilio timed out.
//
// Signatures are checked whenever an auth token is configured, unless --no-verify-signatures.
// The URL checked is the public base (--public-url, else X-Forwarded-*/Host) + the request
// target; for the upgrade, its wss:// form (and the https:// twin).
//
// Threading: one call_routes serves every network thread; handlers are coroutines that may run
// concurrently. It owns the Twilio REST client. Startup errors (bad API base, unreadable CA
// file, half-set API key) throw std::runtime_error from add_call_routes.

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/app/server_context.hpp"
#include "server/calls/call_registry.hpp"
#include "server/http/responses.hpp"
#include "server/twilio/rest_client.hpp"

namespace callstream::server {

class call_routes {
  public:
    call_routes(const config& cfg, std::shared_ptr<call_registry> registry);

    net::awaitable<http_response> make_call(request_context& ctx);
    net::awaitable<http_response> hangup(request_context& ctx);
    net::awaitable<http_response> status_callback(request_context& ctx);
    net::awaitable<http_response> list_calls(request_context& ctx);
    net::awaitable<http_response> get_call(request_context& ctx);

    // A response means "refuse with this" (403); nullopt means proceed (or checking is off).
    std::optional<http_response> check_webhook_signature(request_context& ctx) const;
    std::optional<http_response> check_upgrade_signature(request_context& ctx) const;

    bool verifies_signatures() const { return verify_signatures_; }
    twilio_rest_client* rest_client() { return rest_.get(); }

  private:
    std::optional<http_response> check_bearer(const http_request& req) const;

    std::string public_url_; // --public-url without trailing '/', may be empty
    std::string api_token_;
    std::string default_from_;
    std::string auth_token_;
    bool verify_signatures_ = false;
    std::shared_ptr<call_registry> registry_;
    std::unique_ptr<twilio_rest_client> rest_; // null without REST credentials
};

// Builds the REST client settings from the configuration: an API key (SK…) and secret when both
// are set, else the Account SID and auth token. Throws std::runtime_error on a half-set pair or
// a malformed Account SID.
twilio_rest_config twilio_rest_config_from(const config& cfg);

// Creates the registry and the routes, and installs the signature checks. Main thread, startup.
void add_call_routes(server_context& ctx);

} // namespace callstream::server
