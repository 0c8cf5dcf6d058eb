#include "codec/g711.hpp"

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
constexpr std::array<std::uint8_t, 16384> ulaw_encode_table = make_table<16384>([](std::size_t i) {
    return ulaw_compress(static_cast<std::int16_t>(static_cast<std::uint16_t>(i << 2)));
});
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
    for (std::size_t i = 0; i < in.size(); ++i) {
        out[i] = ulaw_to_linear(in[i]);
    }
}
void ulaw_encode(std::span<const std::int16_t> in, std::span<std::uint8_t> out) noexcept {
    for (std::size_t i = 0; i < in.size(); ++i) {
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
