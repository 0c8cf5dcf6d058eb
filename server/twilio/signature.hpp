#pragma once
// X-Twilio-Signature: computing and validating Twilio's request signatures.
//
// Algorithm (Twilio's webhook security docs, twilio-node webhooks.ts):
//   data = URL exactly as Twilio requested it (scheme, host, optional port, path, whole query)
//        + for a form-encoded POST, each parameter as name+value, names sorted by byte order; a
//          repeated name contributes each distinct value once, values sorted.
//   signature = base64(HMAC-SHA1(key = auth token, data)).
// Twilio is inconsistent about ports, so validation accepts the URL without a port and the URL
// with one (":443" for https/wss, ":80" for http/ws when none was written). JSON-body webhooks
// carry `bodySHA256=<hex sha256 of the raw body>` in the query and sign the URL alone.
//
// Pure functions, callable from any thread; they allocate. Comparisons run in constant time
// (CRYPTO_memcmp) over the signature length. Nothing here logs: callers must not log tokens.

#include <string>
#include <string_view>
#include <vector>

#include "server/http/form.hpp"

namespace callstream::server {

// base64(HMAC-SHA1(auth_token, url + sorted params)). Used by tests and the Twilio stand-in.
std::string twilio_signature(std::string_view auth_token, std::string_view url,
                             const form_fields& params);

// The URL forms Twilio may have signed: without the port, then with it. A URL Boost.URL cannot
// parse yields just itself.
std::vector<std::string> twilio_url_variants(std::string_view url);

// The same URL with its scheme swapped https<->wss (http<->ws); other schemes unchanged. The
// WebSocket upgrade is signed with the wss:// URL written in TwiML, but some proxies and SDKs
// present https://, so the upgrade check tries both.
std::string twilio_swap_ws_scheme(std::string_view url);

// True when `signature` matches `url` (any port variant) and `params`.
bool twilio_validate(std::string_view auth_token, std::string_view signature, std::string_view url,
                     const form_fields& params);

// The WebSocket upgrade: no parameters; tries `url` and its https/wss twin, each port variant.
bool twilio_validate_upgrade(std::string_view auth_token, std::string_view signature,
                             std::string_view url);

// JSON-body form: the signature over the URL alone, and lower-case hex SHA-256 of `body` equal to
// the URL's bodySHA256 query parameter. False when the parameter is missing.
bool twilio_validate_with_body(std::string_view auth_token, std::string_view signature,
                               std::string_view url, std::string_view body);

// Lower-case hex SHA-256 of `data`.
std::string sha256_hex(std::string_view data);

// Constant-time equality for secrets of possibly different lengths (the length is not hidden).
bool constant_time_equal(std::string_view a, std::string_view b);

} // namespace callstream::server
