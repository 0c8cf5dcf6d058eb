#include "codec/resp.hpp"

#include <charconv>

namespace callstream::codec {
namespace {

struct parser {
    std::string_view in;
    const resp_limits& limits;
    std::size_t pos = 0;
    std::string error;

    // A line up to CRLF starting at pos; false when the CRLF has not arrived yet.
    bool line(std::string_view& out) {
        const auto end = in.find("\r\n", pos);
        if (end == std::string_view::npos) {
            return false;
        }
        out = in.substr(pos, end - pos);
        pos = end + 2;
        return true;
    }

    bool fail(std::string why) {
        error = std::move(why);
        return false;
    }

    bool to_int(std::string_view s, std::int64_t& v) {
        const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        return ec == std::errc{} && ptr == s.data() + s.size() && !s.empty();
    }

    // Parses one value at pos. Returns false with error empty when more bytes are needed,
    // false with error set when the input is not RESP.
    bool value(resp_value& out, std::size_t depth) {
        if (pos >= in.size()) {
            return false;
        }
        const char kind = in[pos++];
        std::string_view text;
        if (!line(text)) {
            // A line that never ends would grow the reader's buffer without bound.
            if (in.size() - pos > limits.max_line_bytes + 1) { // + 1: a CR may be waiting
                return fail("line of over " + std::to_string(limits.max_line_bytes) +
                            " bytes without CRLF");
            }
            return false;
        }
        if (text.size() > limits.max_line_bytes) {
            return fail("line of over " + std::to_string(limits.max_line_bytes) + " bytes");
        }
        switch (kind) {
        case '+':
        case '-':
            out.type = kind == '+' ? resp_type::simple_string : resp_type::error;
            out.text = std::string(text);
            return true;
        case ':':
            out.type = resp_type::integer;
            if (!to_int(text, out.integer)) {
                return fail("bad integer '" + std::string(text.substr(0, 32)) + "'");
            }
            return true;
        case '$': {
            std::int64_t n = 0;
            if (!to_int(text, n) || n < -1) {
                return fail("bad bulk length '" + std::string(text.substr(0, 32)) + "'");
            }
            if (n == -1) {
                out.type = resp_type::null;
                return true;
            }
            if (static_cast<std::uint64_t>(n) > limits.max_bulk_bytes) {
                return fail("bulk string of " + std::to_string(n) + " bytes is over the limit");
            }
            const auto size = static_cast<std::size_t>(n);
            if (in.size() - pos < size + 2) {
                return false;
            }
            if (in.substr(pos + size, 2) != "\r\n") {
                return fail("bulk string not followed by CRLF");
            }
            out.type = resp_type::bulk_string;
            out.text = std::string(in.substr(pos, size));
            pos += size + 2;
            return true;
        }
        case '*': {
            std::int64_t n = 0;
            if (!to_int(text, n) || n < -1) {
                return fail("bad array length '" + std::string(text.substr(0, 32)) + "'");
            }
            if (n == -1) {
                out.type = resp_type::null;
                return true;
            }
            if (static_cast<std::uint64_t>(n) > limits.max_array_elements) {
                return fail("array of " + std::to_string(n) + " elements is over the limit");
            }
            if (depth >= limits.max_depth) {
                return fail("arrays nested deeper than " + std::to_string(limits.max_depth));
            }
            out.type = resp_type::array;
            // Every element takes at least 3 bytes ("+\r\n"): reserve no more than the bytes
            // at hand could hold, so a huge announced count cannot allocate up front.
            out.elements.reserve(std::min(static_cast<std::size_t>(n), (in.size() - pos) / 3 + 1));
            for (std::int64_t i = 0; i < n; ++i) {
                resp_value element;
                if (!value(element, depth + 1)) {
                    return false;
                }
                out.elements.push_back(std::move(element));
            }
            return true;
        }
        default:
            return fail(std::string("unknown RESP type byte 0x") +
                        "0123456789abcdef"[(kind >> 4) & 0xF] + "0123456789abcdef"[kind & 0xF]);
        }
    }
};

} // namespace

resp_parse_result parse_resp(std::string_view in, const resp_limits& limits) {
    parser p{in, limits, 0, {}};
    resp_parse_result result;
    if (p.value(result.value, 0)) {
        result.status = resp_status::complete;
        result.consumed = p.pos;
        return result;
    }
    result.value = {};
    if (!p.error.empty()) {
        result.status = resp_status::error;
        result.error = std::move(p.error);
    }
    return result;
}

void append_resp_command(std::string& out, std::span<const std::string> args) {
    out += '*';
    out += std::to_string(args.size());
    out += "\r\n";
    for (const auto& a : args) {
        out += '$';
        out += std::to_string(a.size());
        out += "\r\n";
        out += a;
        out += "\r\n";
    }
}

std::string resp_to_string(const resp_value& value) {
    switch (value.type) {
    case resp_type::simple_string:
    case resp_type::error:
    case resp_type::bulk_string:
        return value.text;
    case resp_type::integer:
        return "(integer) " + std::to_string(value.integer);
    case resp_type::null:
        return "(nil)";
    case resp_type::array: {
        std::string out = "[";
        for (std::size_t i = 0; i < value.elements.size(); ++i) {
            out += (i ? ", " : "") + resp_to_string(value.elements[i]);
        }
        return out + "]";
    }
    }
    return {};
}

} // namespace callstream::codec
