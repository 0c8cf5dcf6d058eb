#pragma once
// Settings for placing calls and checking Twilio's signatures, from flags and the environment.
//
// Flags (each also read from the environment when the flag is absent):
//   --public-url URL          CALLSTREAM_PUBLIC_URL  public https base Twilio reaches us at
//   --api-token TOKEN         CALLSTREAM_API_TOKEN   bearer token for /make-call, /calls…
//   --twilio-from NUMBER      TWILIO_FROM            default caller ID / SIP From user
//   --twilio-api-base URL     TWILIO_API_BASE        default https://api.twilio.com
//   --twilio-ca-file PEM      (flag only)            CA bundle for the API (tests)
//   --twilio-timeout-ms MS    (flag only)            per request, default 10000
//   --no-verify-signatures                           accept unsigned Twilio requests
// Credentials, environment only (never flags: they would show in `ps`):
//   TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_API_KEY, TWILIO_API_SECRET.
//
// Read once at startup on the main thread; read-only afterwards, so any thread may read it.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "server/twilio_rest_client.hpp"

namespace callstream::server {

struct twilio_settings {
    std::string public_url; // without trailing '/', e.g. https://abc.ngrok-free.app
    std::string api_token;
    std::string default_from;
    std::string auth_token;             // for signatures; may be set without REST credentials
    bool verify_signatures_flag = true; // false with --no-verify-signatures
    bool rest_configured = false;       // account SID and a password are present
    twilio_rest_config rest;

    // Signatures are checked whenever an auth token is configured, unless turned off.
    bool verify_signatures() const { return verify_signatures_flag && !auth_token.empty(); }
    // wss://… of /media-stream, derived from public_url (https->wss, http->ws).
    std::string media_stream_url() const;
};

// Consumes one flag. `value` is the next argument (nullptr when there is none). Returns how many
// arguments were used (1 or 2), 0 when `flag` is not one of ours; throws std::runtime_error for a
// missing or bad value.
int parse_twilio_flag(std::string_view flag, const char* value, twilio_settings& settings);

// Fills what flags left empty from the environment (`getenv` is injectable for tests), then
// checks the result. Throws std::runtime_error with a message naming the flag or variable.
void finish_twilio_settings(twilio_settings& settings,
                            const std::function<const char*(const char*)>& getenv_fn);

// Usage lines for --help.
const char* twilio_flags_help();

} // namespace callstream::server
