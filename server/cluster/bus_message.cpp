#include "server/cluster/bus_message.hpp"

#include <array>
#include <charconv>

namespace callstream::server {
namespace {

// Splits the first N lines off `text`; the rest (possibly empty, possibly with newlines) is the
// body. False when fewer than N newlines are there.
template <std::size_t N>
bool split_lines(std::string_view text, std::array<std::string_view, N>& lines,
                 std::string_view& body) {
    for (auto& line : lines) {
        const auto nl = text.find('\n');
        if (nl == std::string_view::npos) {
            return false;
        }
        line = text.substr(0, nl);
        text.remove_prefix(nl + 1);
    }
    body = text;
    return true;
}

template <typename Int> bool to_number(std::string_view s, Int& out) {
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && ptr == s.data() + s.size() && !s.empty();
}

} // namespace

std::string encode_bus_request(const bus_request& r) {
    return "req\n" + std::to_string(r.id) + "\n" + r.from + "\n" + r.method + "\n" + r.target +
           "\n" + r.authorization + "\n" + r.body;
}

std::string encode_bus_response(const bus_response& r) {
    return "res\n" + std::to_string(r.id) + "\n" + std::to_string(r.status) + "\n" +
           r.content_type + "\n" + r.body;
}

std::optional<bus_request> decode_bus_request(std::string_view text) {
    std::array<std::string_view, 6> f;
    std::string_view body;
    bus_request r;
    if (!split_lines(text, f, body) || f[0] != "req" || !to_number(f[1], r.id) || f[2].empty() ||
        f[3].empty() || f[4].empty() || f[4].front() != '/') {
        return std::nullopt;
    }
    r.from = f[2];
    r.method = f[3];
    r.target = f[4];
    r.authorization = f[5];
    r.body = body;
    return r;
}

std::optional<bus_response> decode_bus_response(std::string_view text) {
    std::array<std::string_view, 4> f;
    std::string_view body;
    bus_response r;
    if (!split_lines(text, f, body) || f[0] != "res" || !to_number(f[1], r.id) ||
        !to_number(f[2], r.status) || r.status < 100 || r.status > 599) {
        return std::nullopt;
    }
    r.content_type = f[3];
    r.body = body;
    return r;
}

} // namespace callstream::server
