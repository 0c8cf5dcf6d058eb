#pragma once
// Appends a JSON string literal (with quotes) for UTF-8 `text`: escapes '"', '\\' and control
// characters (RFC 8259 §7). Pure, any thread.

#include <string>
#include <string_view>

namespace callstream::server {

inline void json_quote(std::string& out, std::string_view text) {
    static constexpr char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char ch : text) {
        const auto c = static_cast<unsigned char>(ch);
        if (ch == '"' || ch == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (ch == '\t') {
            out += "\\t";
        } else if (c < 0x20) {
            out += "\\u00";
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0F]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

inline std::string json_quote(std::string_view text) {
    std::string out;
    json_quote(out, text);
    return out;
}

} // namespace callstream::server
