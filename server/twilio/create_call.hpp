#pragma once
// POST /make-call: the JSON request, its validation, and the Twilio Calls API form it becomes.
//
// Request (JSON object; every field but `to` optional, unknown fields rejected). Each field's
// Twilio name and rule is listed in docs/calls.md; in short:
//   to                      E.164 "+14155551212", "client:identity" (<= 256 characters, no space,
//                           control, delimiter or unwise characters), or "sip:user@host[:port]
//                           [;transport=udp|tcp|tls][;secure=true][;region=us1|…]
//                           [?X-Header=value&User-to-User=hex…]" (< 255 characters)
//   from                    default from settings; E.164 for phone targets, [A-Za-z0-9+-_.] for
//                           SIP, E.164 or a client identity for client targets
//   byoc                    "BY" + 32 hex, phone targets only
//   sip_auth_username/_password   SIP targets only; a username needs a password
//   timeout                 integer seconds 1..600
//   time_limit              integer seconds 1..86400
//   send_digits             <= 32 of 0-9 # * w (not with machine_detection: Twilio ignores it)
//   caller_id, call_reason  caller ID for SIP/client calls; branded-call reason (<= 255)
//   record                  boolean; recording_channels, recording_track, trim,
//                           recording_status_callback(+_event) need record: true
//   machine_detection       "Enable" | "DetectMessageEnd" (sent with AsyncAmd=true), tuned by
//                           machine_detection_timeout (3..59 s), _speech_threshold (1000..6000
//                           ms), _speech_end_threshold (500..5000 ms), _silence_timeout
//                           (2000..10000 ms)
//   parameters              object of string -> string, each name+value < 500 characters;
//                           they reach the stream as start.customParameters
//   status_callback_events  non-empty array of "initiated" | "ringing" | "answered" | "completed"
//   mode, dial              "connect" (default: the call talks to callstream) or "fork": the
//                           callee is connected to `dial` (a target like `to`) and both tracks
//                           are copied to callstream, receive-only
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

enum class call_target_kind { phone, sip, client };

struct make_call_request {
    std::string to;
    call_target_kind to_kind = call_target_kind::phone;
    bool to_is_sip = false; // to_kind == sip
    std::string from;
    std::string byoc;
    std::string sip_auth_username;
    std::string sip_auth_password;
    std::optional<long long> timeout_s;
    std::optional<bool> record;
    std::string machine_detection;
    std::vector<std::pair<std::string, std::string>> parameters; // in request order
    std::vector<std::string> status_callback_events;             // the four unless given
    std::string send_digits;
    std::optional<long long> time_limit_s;
    std::string caller_id;
    std::string call_reason;
    // Twilio's own recording of the call (record: true)
    std::string recording_channels; // mono | dual
    std::string recording_track;    // inbound | outbound | both
    std::string recording_status_callback;
    std::vector<std::string> recording_status_callback_events;
    std::string trim; // trim-silence | do-not-trim
    // Answering machine detection tuning (machine_detection set)
    std::optional<long long> machine_detection_timeout_s;
    std::optional<long long> machine_detection_speech_threshold_ms;
    std::optional<long long> machine_detection_speech_end_threshold_ms;
    std::optional<long long> machine_detection_silence_timeout_ms;
    // mode: "fork" connects the callee to `dial` and copies both tracks to us, receive-only
    bool fork = false;
    std::string dial;
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
bool is_call_sid(std::string_view s);        // CA + 32 hex
bool is_client_identity(std::string_view s); // Twilio Client name, without "client:"
// A host name (labels of letters, digits, '-'; no '_', which Twilio refuses in callback URLs),
// an IPv4 address or a [IPv6] reference; with is_host_port, an optional :1..65535 after it.
bool is_host_name(std::string_view host);
bool is_host_port(std::string_view host_port);
// A call target: E.164, client:identity or a sip: URI, as `to` and `dial` take it.
bool parse_call_target(std::string_view s, call_target_kind& kind, std::string& why);

// Twilio's limit on inline TwiML (the Twiml form field), in characters.
inline constexpr std::size_t twiml_inline_max_chars = 4000;

// The TwiML the placed call runs: <Connect><Stream> or, for mode "fork", <Start><Stream
// track="both_tracks"> and <Dial>, carrying `stream_parameters`.
std::string
make_call_twiml(const make_call_request& req, std::string_view media_stream_url,
                const std::vector<std::pair<std::string, std::string>>& stream_parameters);

// The Calls API form for `req` with `twiml` inline. `public_url` is the https base (no
// trailing '/') that status callbacks go to.
form_fields make_call_form(const make_call_request& req, std::string_view public_url,
                           std::string twiml);

} // namespace callstream::server
