#pragma once
// JSON string escaping per RFC 8259 for hand-built JSON, appended to a caller-owned std::string.
// Pure functions, any thread. Bytes are copied as they are except '"', '\\' and control
// characters, which are escaped; the input is not checked for valid UTF-8 (callstream's strings
// come from parsed JSON or its own text). Appending allocates as std::string does; nothing fails.

#include <string>
#include <string_view>

namespace callstream::codec {

// Appends `s` with quotes, escaping '"', '\\' and control characters; other bytes pass through.
void append_json_string(std::string& out, std::string_view s);
std::string json_string(std::string_view s);

} // namespace callstream::codec
