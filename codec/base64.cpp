#include "codec/base64.hpp"

#include <array>

namespace callstream::codec {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::uint8_t invalid = 0xFF;
constexpr std::uint8_t pad = 0xFE;

constexpr std::array<std::uint8_t, 256> make_decode_table() {
    std::array<std::uint8_t, 256> table{};
    table.fill(invalid);
    for (std::uint8_t i = 0; i < 64; ++i) {
        table[static_cast<unsigned char>(alphabet[i])] = i;
    }
    table['='] = pad;
    return table;
}
constexpr auto decode_table = make_decode_table();

class base64_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "base64"; }
    std::string message(int ev) const override {
        switch (static_cast<base64_errc>(ev)) {
        case base64_errc::bad_length:
            return "base64 length is not a multiple of 4";
        case base64_errc::bad_character:
            return "invalid base64 character";
        case base64_errc::bad_padding:
            return "invalid base64 padding";
        case base64_errc::output_too_small:
            return "base64 output buffer too small";
        }
        return "unknown base64 error";
    }
};

} // namespace

const std::error_category& base64_category() noexcept {
    static const base64_category_impl category;
    return category;
}

std::error_code make_error_code(base64_errc e) noexcept {
    return {static_cast<int>(e), base64_category()};
}

// Two output characters per 12 input bits from one table: a 20 ms frame (160 bytes) is encoded
// with 2 loads per 3 bytes instead of 4 shifts and lookups.
struct pair_table {
    std::array<std::array<char, 2>, 4096> pairs{};
    constexpr pair_table() {
        for (std::size_t i = 0; i < 4096; ++i) {
            pairs[i] = {alphabet[i >> 6], alphabet[i & 63]};
        }
    }
};
constexpr pair_table encode_pairs;

std::size_t base64_encode(std::span<const std::uint8_t> in, char* out) noexcept {
    const std::uint8_t* p = in.data();
    std::size_t n = in.size();
    char* o = out;
    for (; n >= 3; n -= 3, p += 3) {
        const std::uint32_t v = (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | p[2];
        const auto& hi = encode_pairs.pairs[v >> 12];
        const auto& lo = encode_pairs.pairs[v & 0xFFF];
        o[0] = hi[0];
        o[1] = hi[1];
        o[2] = lo[0];
        o[3] = lo[1];
        o += 4;
    }
    if (n > 0) {
        const std::uint32_t v =
            (std::uint32_t{p[0]} << 16) | (n == 2 ? std::uint32_t{p[1]} << 8 : 0);
        *o++ = alphabet[v >> 18];
        *o++ = alphabet[(v >> 12) & 63];
        *o++ = n == 2 ? alphabet[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    return static_cast<std::size_t>(o - out);
}

std::string base64_encode(std::span<const std::uint8_t> in) {
    std::string out(base64_encoded_size(in.size()), '\0');
    base64_encode(in, out.data());
    return out;
}

std::error_code base64_decode(std::string_view in, std::span<std::uint8_t> out,
                              std::size_t& written) noexcept {
    written = 0;
    if (in.size() % 4 != 0) {
        return base64_errc::bad_length;
    }
    if (in.empty()) {
        return {};
    }
    // Padding may only close the last quantum: "xx==" or "xxx=".
    std::size_t padding = 0;
    if (in.back() == '=') {
        padding = in[in.size() - 2] == '=' ? 2 : 1;
    }
    const std::size_t size = in.size() / 4 * 3 - padding;
    if (size > out.size()) {
        return base64_errc::output_too_small;
    }
    const auto* p = reinterpret_cast<const unsigned char*>(in.data());
    std::uint8_t* o = out.data();
    const std::size_t full_quanta = in.size() / 4 - (padding ? 1 : 0);
    for (std::size_t q = 0; q < full_quanta; ++q, p += 4) {
        const std::uint32_t a = decode_table[p[0]], b = decode_table[p[1]], c = decode_table[p[2]],
                            d = decode_table[p[3]];
        // Any invalid or pad byte has its top bit set, so one test covers all four.
        if ((a | b | c | d) & 0x80) {
            return (a == pad || b == pad || c == pad || d == pad) ? base64_errc::bad_padding
                                                                  : base64_errc::bad_character;
        }
        const std::uint32_t v = (a << 18) | (b << 12) | (c << 6) | d;
        *o++ = static_cast<std::uint8_t>(v >> 16);
        *o++ = static_cast<std::uint8_t>(v >> 8);
        *o++ = static_cast<std::uint8_t>(v);
    }
    if (padding) {
        const std::uint32_t a = decode_table[p[0]], b = decode_table[p[1]];
        const std::uint32_t c = padding == 2 ? 0 : decode_table[p[2]];
        if ((a | b | c) & 0x80) {
            return (a == pad || b == pad || c == pad) ? base64_errc::bad_padding
                                                      : base64_errc::bad_character;
        }
        const std::uint32_t v = (a << 18) | (b << 12) | (c << 6);
        // Canonical encodings leave the bits below the last byte at zero (RFC 4648 §3.5).
        if ((padding == 2 && (v & 0xFFFF) != 0) || (padding == 1 && (v & 0xFF) != 0)) {
            return base64_errc::bad_padding;
        }
        *o++ = static_cast<std::uint8_t>(v >> 16);
        if (padding == 1) {
            *o++ = static_cast<std::uint8_t>(v >> 8);
        }
    }
    written = size;
    return {};
}

} // namespace callstream::codec
