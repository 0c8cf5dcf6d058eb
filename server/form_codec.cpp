#include "server/form_codec.hpp"

namespace callstream::server {
namespace {

bool is_unreserved(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '*';
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

bool decode_component(std::string_view in, std::string& out) {
    out.clear();
    out.reserve(in.size());
    for (std::size_t i = 0; i < in.size(); ++i) {
        const char c = in[i];
        if (c == '+') {
            out.push_back(' ');
        } else if (c == '%') {
            if (i + 2 >= in.size()) {
                return false;
            }
            const int hi = hex_value(in[i + 1]);
            const int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            out.push_back(static_cast<char>(hi * 16 + lo));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return true;
}

} // namespace

void encode_form_component(std::string_view in, std::string& out) {
    static constexpr char hex[] = "0123456789ABCDEF";
    for (const char ch : in) {
        const auto c = static_cast<unsigned char>(ch);
        if (is_unreserved(c)) {
            out.push_back(ch);
        } else if (c == ' ') {
            out.push_back('+');
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0F]);
        }
    }
}

std::string encode_form(const form_params& params) {
    std::string out;
    for (const auto& p : params) {
        if (!out.empty()) {
            out.push_back('&');
        }
        encode_form_component(p.name, out);
        out.push_back('=');
        encode_form_component(p.value, out);
    }
    return out;
}

std::optional<form_params> decode_form(std::string_view body) {
    form_params params;
    while (!body.empty()) {
        const auto amp = body.find('&');
        const std::string_view pair = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view{} : body.substr(amp + 1);
        if (pair.empty()) {
            continue;
        }
        const auto eq = pair.find('=');
        form_param p;
        if (!decode_component(pair.substr(0, eq), p.name)) {
            return std::nullopt;
        }
        if (eq != std::string_view::npos && !decode_component(pair.substr(eq + 1), p.value)) {
            return std::nullopt;
        }
        params.push_back(std::move(p));
    }
    return params;
}

const std::string* find_form_value(const form_params& params, std::string_view name) {
    for (const auto& p : params) {
        if (p.name == name) {
            return &p.value;
        }
    }
    return nullptr;
}

} // namespace callstream::server
