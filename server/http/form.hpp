#pragma once
// application/x-www-form-urlencoded: decoding request bodies and query strings, encoding
// requests to Twilio. Pure functions, any thread.

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callstream::server {

using form_fields = std::vector<std::pair<std::string, std::string>>;

// Decodes "a=1&b=x+y%21". Returns nullopt on a malformed %-escape.
std::optional<form_fields> parse_form(std::string_view body);
// Percent-decodes one component ('+' means space when `plus_is_space`).
std::optional<std::string> url_decode(std::string_view s, bool plus_is_space = true);
// Encodes for a form body: unreserved characters kept, space as '+', the rest %XX.
std::string form_encode(const form_fields& fields);
std::string url_encode(std::string_view s);

// The first value of `name`, if any.
std::optional<std::string_view> form_value(const form_fields& fields, std::string_view name);

} // namespace callstream::server
