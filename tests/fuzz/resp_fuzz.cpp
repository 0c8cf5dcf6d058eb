// libFuzzer harness for codec::parse_resp, the reader of every byte Redis sends callstream.
// Properties: it never reads past its input nor crashes; a complete value consumed at most the
// input; every shorter prefix of a complete value is "incomplete" (never an error and never a
// different value), which is what lets the client feed it a socket's bytes as they arrive;
// bytes after the value change nothing; the value written back as RESP parses to itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "codec/resp.hpp"

namespace {

using namespace callstream::codec;

void write(std::string& out, const resp_value& v) {
    switch (v.type) {
    case resp_type::simple_string:
        out += "+" + v.text + "\r\n";
        break;
    case resp_type::error:
        out += "-" + v.text + "\r\n";
        break;
    case resp_type::integer:
        out += ":" + std::to_string(v.integer) + "\r\n";
        break;
    case resp_type::bulk_string:
        out += "$" + std::to_string(v.text.size()) + "\r\n" + v.text + "\r\n";
        break;
    case resp_type::null:
        out += "$-1\r\n";
        break;
    case resp_type::array:
        out += "*" + std::to_string(v.elements.size()) + "\r\n";
        for (const auto& e : v.elements) {
            write(out, e);
        }
        break;
    }
}

bool same(const resp_value& a, const resp_value& b) {
    if (a.type != b.type || a.text != b.text || a.integer != b.integer ||
        a.elements.size() != b.elements.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.elements.size(); ++i) {
        if (!same(a.elements[i], b.elements[i])) {
            return false;
        }
    }
    return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // A heap copy of exactly `size` bytes lets ASan catch any read past the input.
    const std::string copy(reinterpret_cast<const char*>(data), size);
    const std::string_view in(copy);
    resp_limits limits;
    limits.max_bulk_bytes = 1 << 16;
    limits.max_array_elements = 1 << 12;
    limits.max_line_bytes = 1 << 10;
    const auto r = parse_resp(in, limits);
    if (r.status == resp_status::error && r.error.empty()) {
        std::abort(); // an error must say what was wrong
    }
    if (r.status != resp_status::complete) {
        return 0;
    }
    if (r.consumed == 0 || r.consumed > size) {
        std::abort();
    }
    if (r.consumed < 2048) {
        for (std::size_t n = 0; n < r.consumed; ++n) {
            if (parse_resp(in.substr(0, n), limits).status != resp_status::incomplete) {
                std::abort();
            }
        }
    }
    const auto longer = parse_resp(std::string(in) + "+tail\r\n", limits);
    if (longer.status != resp_status::complete || longer.consumed != r.consumed ||
        !same(longer.value, r.value)) {
        std::abort();
    }
    std::string again;
    write(again, r.value);
    const auto back = parse_resp(again, limits);
    if (back.status != resp_status::complete || back.consumed != again.size() ||
        !same(back.value, r.value)) {
        std::abort();
    }
    return 0;
}
