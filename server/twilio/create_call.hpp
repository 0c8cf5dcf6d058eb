#pragma once
// POST /make-call: the JSON request, its validation, and the Twilio Calls API form it becomes.
//
// Request (JSON object; every field but `to` optional, unknown fields rejected):
//   to                      "+14155551212" (E.164) or "sip:user@host[:port][;transport=udp|tcp|tls]
//                           [;secure=true][?X-Header=value&…]" (< 255 characters)
//   from                    default from settings; E.164 for phone targets, [A-Za-z0-9+-_.] for SIP
//   byoc                    "BY" + 32 hex, phone targets only
//   sip_auth_username/_password   SIP targets only; a username needs a password
//   timeout                 integer seconds 1..600
//   record                  boolean
//   machine_detection       "Enable" | "DetectMessageEnd" (sent with AsyncAmd=true)
//   parameters              object of string -> string, each name+value < 500 characters;
//                           they become <Parameter>s of the <Stream> (start.customParameters)
//   status_callback_events  array of "initiated" | "ringing" | "answered" | "completed"
// Errors name the offending field so the caller can fix it before any call is paid for.
//
// Pure functions, callable from any thread.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http/form.hpp"

namespace callstream::server {

struct make_call_request {
    std::string to;
    bool to_is_sip = false;
    std::string from;
    std::string byoc;
    std::string sip_auth_username;
    std::string sip_auth_password;
    std::optional<long long> timeout_s;
    std::optional<bool> record;
    std::string machine_detection;
    std::vector<std::pair<std::string, std::string>> parameters; // in request order
    std::vector<std::string> status_callback_events;             // empty = all four
};

struct request_error {
    std::string field; // JSON field name; empty for the body as a whole
    std::string message;
};

// Parses and validates. `default_from` fills a missing `from`.
std::optional<make_call_request>
parse_make_call_request(std::string_view body, std::string_view default_from, request_error& error);

// Field validators, exposed for tests and for /twiml.
bool is_e164(std::string_view s);
bool is_sip_uri(std::string_view s, std::string& why); // `why` says what is wrong
bool is_sip_from_user(std::string_view s);
bool is_call_sid(std::string_view s); // CA + 32 hex

// Twilio's limit on inline TwiML; longer documents are fetched from /twiml instead.
inline constexpr std::size_t twiml_inline_max_chars = 4000;

// The Calls API form for `req`. `public_url` is the https base (no trailing '/'),
// `media_stream_url` the wss URL of /media-stream.
form_fields make_call_form(const make_call_request& req, std::string_view public_url,
                           std::string_view media_stream_url);

} // namespace callstream::server
