#include "codec/g711.hpp"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace callstream::codec {
namespace {

// The four reference functions follow ITU-T G.191 (g711.c) step for step.
constexpr std::uint8_t ulaw_compress(std::int16_t sample) {
    const int x = sample;
    // One's complement magnitude of the 14-bit sample, plus the μ-law bias of 33.
    int absno = (x < 0 ? ((~x) >> 2) : (x >> 2)) + 33;
    if (absno > 0x1FFF) {
        absno = 0x1FFF;
    }
    int segno = 1;
    for (int i = absno >> 6; i != 0; i >>= 1) {
        ++segno;
    }
    const int high_nibble = 0x8 - segno;
    const int low_nibble = 0xF - ((absno >> segno) & 0xF);
    int code = (high_nibble << 4) | low_nibble;
    if (x >= 0) {
        code |= 0x80;
    }
    return static_cast<std::uint8_t>(code);
}

constexpr std::int16_t ulaw_expand(std::uint8_t code) {
    const int sign = code < 0x80 ? -1 : 1;
    const int inverted = ~code;
    const int exponent = (inverted >> 4) & 0x7;
    const int mantissa = inverted & 0xF;
    const int step = 4 << (exponent + 1);
    return static_cast<std::int16_t>(sign *
                                     ((0x80 << exponent) + step * mantissa + step / 2 - 4 * 33));
}

constexpr std::uint8_t alaw_compress(std::int16_t sample) {
    const int x = sample;
    int ix = x < 0 ? ((~x) >> 4) : (x >> 4);
    if (ix > 15) {
        int iexp = 1;
        while (ix > 16 + 15) {
            ix >>= 1;
            ++iexp;
        }
        ix -= 16;
        ix += iexp << 4;
    }
    if (x >= 0) {
        ix |= 0x80;
    }
    return static_cast<std::uint8_t>(ix ^ 0x55);
}

constexpr std::int16_t alaw_expand(std::uint8_t code) {
    const int ix = (code ^ 0x55) & 0x7F;
    const int iexp = ix >> 4;
    int mant = ix & 0xF;
    if (iexp > 0) {
        mant += 16;
    }
    mant = (mant << 4) + 0x8;
    if (iexp > 1) {
        mant <<= iexp - 1;
    }
    return static_cast<std::int16_t>(code > 127 ? mant : -mant);
}

template <std::size_t N, typename F> constexpr auto make_table(F f) {
    std::array<decltype(f(0)), N> table{};
    for (std::size_t i = 0; i < N; ++i) {
        table[i] = f(i);
    }
    return table;
}

} // namespace

// Every input that shares a table index maps to the same code, because the reference algorithm
// drops exactly those low bits; so the tables equal the reference for all 65,536 samples.
namespace detail {
constexpr std::array<std::int16_t, 256> ulaw_decode_table =
    make_table<256>([](std::size_t c) { return ulaw_expand(static_cast<std::uint8_t>(c)); });
constexpr std::array<std::int16_t, 256> alaw_decode_table =
    make_table<256>([](std::size_t c) { return alaw_expand(static_cast<std::uint8_t>(c)); });
constexpr std::array<std::uint8_t, 4096> alaw_encode_table = make_table<4096>([](std::size_t i) {
    return alaw_compress(static_cast<std::int16_t>(static_cast<std::uint16_t>(i << 4)));
});
} // namespace detail

std::uint8_t ulaw_compress_reference(std::int16_t sample) noexcept {
    return ulaw_compress(sample);
}
std::int16_t ulaw_expand_reference(std::uint8_t code) noexcept {
    return ulaw_expand(code);
}
std::uint8_t alaw_compress_reference(std::int16_t sample) noexcept {
    return alaw_compress(sample);
}
std::int16_t alaw_expand_reference(std::uint8_t code) noexcept {
    return alaw_expand(code);
}

void ulaw_decode(std::span<const std::uint8_t> in, std::span<std::int16_t> out) noexcept {
    const std::size_t n = std::min(in.size(), out.size());
    std::size_t i = 0;
#if defined(__SSE2__)
    // G.191's expansion on eight codes per register: with the code inverted, the magnitude is
    // ((mantissa << 3) + 0x84 << exponent) - 0x84. SSE2 has no per-lane shift, so 2^exponent is
    // made as a float (its exponent field) and converted back, and the shift is a multiply.
    const __m128i zero = _mm_setzero_si128();
    const __m128i all_ones = _mm_set1_epi16(0xFF);
    const __m128i low_nibble = _mm_set1_epi16(0x0F);
    const __m128i seven = _mm_set1_epi16(7);
    const __m128i bias = _mm_set1_epi16(0x84);
    const __m128i float_one = _mm_set1_epi32(127);
    const __m128i sign_bit = _mm_set1_epi16(0x80);
    const auto decode8 = [&](__m128i codes) {
        const __m128i inverted = _mm_xor_si128(codes, all_ones);
        const __m128i exponent = _mm_and_si128(_mm_srli_epi16(inverted, 4), seven);
        const __m128i mantissa = _mm_and_si128(inverted, low_nibble);
        const auto power = [&](__m128i e) {
            return _mm_cvttps_epi32(
                _mm_castsi128_ps(_mm_slli_epi32(_mm_add_epi32(e, float_one), 23)));
        };
        const __m128i scale = _mm_packs_epi32(power(_mm_unpacklo_epi16(exponent, zero)),
                                              power(_mm_unpackhi_epi16(exponent, zero)));
        const __m128i magnitude = _mm_sub_epi16(
            _mm_mullo_epi16(_mm_add_epi16(_mm_slli_epi16(mantissa, 3), bias), scale), bias);
        // Codes under 0x80 are negative: negate by (m ^ -1) - (-1).
        const __m128i negative = _mm_cmpeq_epi16(_mm_and_si128(codes, sign_bit), zero);
        return _mm_sub_epi16(_mm_xor_si128(magnitude, negative), negative);
    };
    for (; i + 16 <= n; i += 16) {
        const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(&in[i]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[i]),
                         decode8(_mm_unpacklo_epi8(bytes, zero)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[i + 8]),
                         decode8(_mm_unpackhi_epi8(bytes, zero)));
    }
#endif
    for (; i < n; ++i) {
        out[i] = ulaw_to_linear(in[i]);
    }
}
void ulaw_encode(std::span<const std::int16_t> in, std::span<std::uint8_t> out) noexcept {
    const std::size_t n = std::min(in.size(), out.size());
    std::size_t i = 0;
#if defined(__SSE2__)
    // linear_to_ulaw() on eight samples per register, sixteen codes per store (every x86-64 has
    // SSE2): a 20 ms frame is ten passes.
    const __m128i bias = _mm_set1_epi16(33);
    const __m128i top = _mm_set1_epi16(0x1FFF);
    const __m128i base = _mm_set1_epi32(0x8BF);
    const __m128i sign_bit = _mm_set1_epi16(0x80);
    const __m128i zero = _mm_setzero_si128();
    const auto encode8 = [&](const std::int16_t* p) {
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
        const __m128i negative = _mm_srai_epi16(x, 15);
        const __m128i magnitude = _mm_srai_epi16(_mm_xor_si128(x, negative), 2);
        const __m128i biased = _mm_min_epi16(_mm_add_epi16(magnitude, bias), top);
        const auto low7 = [&](__m128i v) {
            const __m128i bits = _mm_castps_si128(_mm_cvtepi32_ps(v));
            return _mm_sub_epi32(base, _mm_srli_epi32(bits, 19));
        };
        const __m128i codes = _mm_packs_epi32(low7(_mm_unpacklo_epi16(biased, zero)),
                                              low7(_mm_unpackhi_epi16(biased, zero)));
        return _mm_or_si128(codes, _mm_andnot_si128(negative, sign_bit));
    };
    for (; i + 16 <= n; i += 16) {
        const __m128i bytes = _mm_packus_epi16(encode8(&in[i]), encode8(&in[i + 8]));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(&out[i]), bytes);
    }
#endif
    for (; i < n; ++i) {
        out[i] = linear_to_ulaw(in[i]);
    }
}
void alaw_decode(std::span<const std::uint8_t> in, std::span<std::int16_t> out) noexcept {
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i] = alaw_to_linear(in[i]);
    }
}
void alaw_encode(std::span<const std::int16_t> in, std::span<std::uint8_t> out) noexcept {
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i] = linear_to_alaw(in[i]);
    }
}

} // namespace callstream::codec
