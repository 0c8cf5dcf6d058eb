#include "codec/base64.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CALLSTREAM_BASE64_SSSE3 1
#endif

namespace callstream::codec {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr std::uint8_t invalid = 0xFF;
constexpr std::uint8_t pad = 0xFE;

// A character's sextet, or invalid, or pad; computed, not looked up (see the encoder's note).
constexpr std::uint8_t decode_char(unsigned char c) noexcept {
    if (c >= 'A' && c <= 'Z') {
        return static_cast<std::uint8_t>(c - 'A');
    }
    if (c >= 'a' && c <= 'z') {
        return static_cast<std::uint8_t>(c - 'a' + 26);
    }
    if (c >= '0' && c <= '9') {
        return static_cast<std::uint8_t>(c - '0' + 52);
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return c == '=' ? pad : invalid;
}

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

namespace {

// No tables beyond the 64-byte alphabet (one cache line): with hundreds of calls on a network
// thread, a call's next frame finds any table out of the caches again (an 8 KiB encode table,
// 128 lines, was most of the encoder's time on a cold cache).
#if defined(CALLSTREAM_BASE64_SSSE3)
// Asked once, at start-up. A call made before this initialiser has run (from another file's
// static initialiser) reads false and takes the plain code, which gives the same bytes.
#if defined(__SSSE3__)
constexpr bool have_ssse3 = true;
#else
const bool have_ssse3 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3") != 0;
}();
#endif

// 12 bytes (of the 16 loaded) to 16 characters. Wojciech Muła and Daniel Lemire, "Faster Base64
// Encoding and Decoding Using AVX2 Instructions" (2018), in its 128-bit form: a shuffle puts each
// 3-byte group's bytes in two 16-bit lanes, two multiplies shift the four sextets into bytes,
// and one 16-entry shuffle maps each sextet's range (A-Z, a-z, 0-9, +, /) to its offset.
__attribute__((target("ssse3"))) __m128i encode_12(const std::uint8_t* p) noexcept {
    __m128i in = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    in = _mm_shuffle_epi8(in, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    const __m128i s0_s2 =
        _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    const __m128i s1_s3 =
        _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
    const __m128i sextets = _mm_or_si128(s0_s2, s1_s3);
    // Range index: 0 for 26..51, 1..12 for 52..63, 13 for 0..25.
    __m128i range = _mm_subs_epu8(sextets, _mm_set1_epi8(51));
    const __m128i below_26 = _mm_cmpgt_epi8(_mm_set1_epi8(26), sextets);
    range = _mm_or_si128(range, _mm_and_si128(below_26, _mm_set1_epi8(13)));
    const __m128i offsets =
        _mm_setr_epi8('a' - 26, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52, '0' - 52,
                      '0' - 52, '0' - 52, '0' - 52, '0' - 52, '+' - 62, '/' - 63, 'A', 0, 0);
    return _mm_add_epi8(sextets, _mm_shuffle_epi8(offsets, range));
}

// Encodes while 16 bytes can be loaded; returns the bytes consumed (a multiple of 12).
__attribute__((target("ssse3"))) std::size_t encode_ssse3(const std::uint8_t* p, std::size_t n,
                                                          char* o) noexcept {
    std::size_t done = 0;
    for (; n - done >= 16; done += 12, o += 16) {
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o), encode_12(p + done));
    }
    return done;
}

// 16 characters to 12 bytes (written as 16: the caller leaves room), or false when any of them
// is outside the alphabet ('=' included), for the scalar code to find and report. The same
// paper: two 16-entry shuffles by the low and high nibble classify each character (their AND is
// non-zero outside the alphabet), a third gives the offset from character to sextet by range,
// and two multiply-adds pack four sextets into three bytes.
__attribute__((target("ssse3"))) bool decode_16(const char* p, std::uint8_t* o) noexcept {
    const __m128i in = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m128i nibble = _mm_set1_epi8(0x0F);
    const __m128i hi_nibbles = _mm_and_si128(_mm_srli_epi32(in, 4), nibble);
    const __m128i lo_nibbles = _mm_and_si128(in, nibble);
    const __m128i by_lo =
        _mm_shuffle_epi8(_mm_setr_epi8(0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11,
                                       0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A),
                         lo_nibbles);
    const __m128i by_hi =
        _mm_shuffle_epi8(_mm_setr_epi8(0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10,
                                       0x10, 0x10, 0x10, 0x10, 0x10, 0x10),
                         hi_nibbles);
    if (_mm_movemask_epi8(_mm_cmpgt_epi8(_mm_and_si128(by_lo, by_hi), _mm_setzero_si128())) != 0) {
        return false;
    }
    // '/' shares its high nibble with '+' but not its offset: it takes the entry before.
    const __m128i is_slash = _mm_cmpeq_epi8(in, _mm_set1_epi8('/'));
    const __m128i offset =
        _mm_shuffle_epi8(_mm_setr_epi8(0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0),
                         _mm_add_epi8(is_slash, hi_nibbles));
    const __m128i sextets = _mm_add_epi8(in, offset);
    // 00aaaaaa 00bbbbbb 00cccccc 00dddddd -> 12-bit pairs -> 24-bit groups, then byte order.
    const __m128i pairs = _mm_maddubs_epi16(sextets, _mm_set1_epi32(0x01400140));
    const __m128i groups = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000));
    const __m128i bytes = _mm_shuffle_epi8(
        groups, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), bytes);
    return true;
}

// Decodes whole 16-character blocks of `chars` characters (no padding among them) while 16
// bytes fit in `room`; stops at the first block with a character outside the alphabet. Returns
// the characters consumed (a multiple of 16).
__attribute__((target("ssse3"))) std::size_t
decode_ssse3(const char* p, std::size_t chars, std::uint8_t* o, std::size_t room) noexcept {
    std::size_t done = 0;
    for (; chars - done >= 16 && room >= 16; done += 16, o += 12, room -= 12) {
        if (!decode_16(p + done, o)) {
            break;
        }
    }
    return done;
}
#endif

} // namespace

std::size_t base64_encode(std::span<const std::uint8_t> in, char* out) noexcept {
    const std::uint8_t* p = in.data();
    std::size_t n = in.size();
    char* o = out;
#if defined(CALLSTREAM_BASE64_SSSE3)
    if (n >= 16 && have_ssse3) {
        const std::size_t done = encode_ssse3(p, n, o);
        p += done;
        n -= done;
        o += done / 3 * 4;
    }
#endif
    for (; n >= 3; n -= 3, p += 3) {
        const std::uint32_t v = (std::uint32_t{p[0]} << 16) | (std::uint32_t{p[1]} << 8) | p[2];
        o[0] = alphabet[v >> 18];
        o[1] = alphabet[(v >> 12) & 63];
        o[2] = alphabet[(v >> 6) & 63];
        o[3] = alphabet[v & 63];
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
    std::size_t full_quanta = in.size() / 4 - (padding ? 1 : 0);
#if defined(CALLSTREAM_BASE64_SSSE3)
    if (full_quanta >= 4 && have_ssse3) {
        const std::size_t done = decode_ssse3(in.data(), full_quanta * 4, o, out.size());
        p += done;
        o += done / 4 * 3;
        full_quanta -= done / 4;
    }
#endif
    for (std::size_t q = 0; q < full_quanta; ++q, p += 4) {
        const std::uint32_t a = decode_char(p[0]), b = decode_char(p[1]), c = decode_char(p[2]),
                            d = decode_char(p[3]);
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
        const std::uint32_t a = decode_char(p[0]), b = decode_char(p[1]);
        const std::uint32_t c = padding == 2 ? 0 : decode_char(p[2]);
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
