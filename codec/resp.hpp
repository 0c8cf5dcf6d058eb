#pragma once
// RESP2, the Redis serialization protocol: parsing one reply and encoding one command.
//
// Pure functions, callable from any thread; no I/O. The parser reads a prefix of `in`, never
// past it, and says whether a whole value is there (complete), more bytes are needed
// (incomplete: call again with the same bytes plus what arrived since) or the bytes are not
// RESP (error, with the reason). Hostile input cannot make it allocate beyond `limits` or
// recurse deeper than `limits.max_depth`. RESP3 types are refused (callstream never sends HELLO).

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::codec {

enum class resp_type { simple_string, error, integer, bulk_string, array, null };

struct resp_value {
    resp_type type = resp_type::null;
    std::string text;                 // simple_string, error and bulk_string
    std::int64_t integer = 0;         // integer
    std::vector<resp_value> elements; // array

    bool is_error() const noexcept { return type == resp_type::error; }
    bool is_null() const noexcept { return type == resp_type::null; }
};

struct resp_limits {
    std::size_t max_bulk_bytes = 64u << 20;    // one bulk string
    std::size_t max_array_elements = 1u << 20; // one array
    std::size_t max_depth = 8;                 // arrays within arrays
    std::size_t max_line_bytes = 64u << 10;    // a type line (+, -, :, $, *) before its CRLF
};

enum class resp_status { complete, incomplete, error };

struct resp_parse_result {
    resp_status status = resp_status::incomplete;
    std::size_t consumed = 0; // bytes of `in` the value used (complete only)
    resp_value value;         // complete only
    std::string error;        // error only: what was wrong, for the log
};

// Parses the first value in `in`.
resp_parse_result parse_resp(std::string_view in, const resp_limits& limits = {});

// Appends a command as RESP: an array of bulk strings ("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n").
void append_resp_command(std::string& out, std::span<const std::string> args);

// The value as a reply line for logs and tests: "OK", "(integer) 3", "(nil)", "ERR ...",
// arrays as "[a, b]".
std::string resp_to_string(const resp_value& value);

} // namespace callstream::codec
