#pragma once
// application/x-www-form-urlencoded encoding and decoding (the WHATWG rules Twilio uses).
//
// Pure functions, callable from any thread. A form is an ordered list of name/value pairs; a name
// may repeat (Twilio's StatusCallbackEvent is sent once per event). Values are decoded bytes, UTF-8
// in practice, never re-encoded on the way through.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::server {

struct form_param {
    std::string name;
    std::string value;
    bool operator==(const form_param&) const = default;
};
using form_params = std::vector<form_param>;

// Encodes one component: unreserved bytes (ALPHA DIGIT - . _ *) stay, space becomes '+', every
// other byte becomes %XX (upper-case hex). So '+' is %2B and '&' inside a SIP URI is %26.
void encode_form_component(std::string_view in, std::string& out);

// "a=1&b=2" with each name and value encoded as above, in the list's order.
std::string encode_form(const form_params& params);

// Decodes a body or query string. '+' is a space and %XX a byte. A pair without '=' has an empty
// value; empty pairs ("a=1&&b=2") are skipped. Returns nullopt on a malformed escape ("%G1", "%4").
std::optional<form_params> decode_form(std::string_view body);

// The first value of `name`, or nullptr.
const std::string* find_form_value(const form_params& params, std::string_view name);

} // namespace callstream::server
