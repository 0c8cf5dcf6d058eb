#pragma once
// Hand-built JSON output: string escaping per RFC 8259, appended to a caller-owned std::string.
// Pure functions, any thread.

#include <string>
#include <string_view>

namespace callstream::server {

// Appends `s` with quotes, escaping '"', '\\' and control characters; other bytes pass through.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

} // namespace callstream::server
