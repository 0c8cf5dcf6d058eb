#pragma once
// ITU-T G.711 μ-law and A-law, bit-exact with the ITU-T G.191 reference implementation.
//
// Pure functions, callable from any thread. Scalar decoding and A-law encoding are table lookups;
// μ-law encoding is computed (below), and the μ-law span forms compute sixteen samples a pass
// with SSE2 (g711.cpp). Samples are 16-bit linear PCM; μ-law uses the top 14 bits and A-law the
// top 13, as G.191 does. μ-law 0x7F (negative zero) decodes to 0, which encodes back as 0xFF:
// the only byte that does not survive a round trip.
// One byte per sample at any rate (Twilio: 8 kHz, 160 bytes per 20 ms frame). Buffers are the
// caller's; the span versions convert min(in, out) samples. Nothing can fail; nothing allocates.

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>
#include <span>

namespace callstream::codec {

namespace detail {
extern const std::array<std::int16_t, 256> ulaw_decode_table;
extern const std::array<std::int16_t, 256> alaw_decode_table;
extern const std::array<std::uint8_t, 4096> alaw_encode_table; // indexed by the top 12 bits
} // namespace detail

inline std::int16_t ulaw_to_linear(std::uint8_t code) noexcept {
    return detail::ulaw_decode_table[code];
}
inline std::int16_t alaw_to_linear(std::uint8_t code) noexcept {
    return detail::alaw_decode_table[code];
}
// G.191's μ-law encoding without its loop or a table: for the biased 14-bit magnitude (33 to
// 8191, exact in a float) the float's exponent is G.191's segment and the four bits after the
// leading one its mantissa, so bits >> 19 is (exponent + 127) << 4 | mantissa, and the code's
// low seven bits are 0x8BF minus that. Why no table: its 16 KiB are 256 cache lines, gone from
// the cache by a stream's next frame when a thread serves hundreds of calls. ulaw_encode() does
// the same eight samples to a register.
inline std::uint8_t linear_to_ulaw(std::int16_t sample) noexcept {
    const int negative = sample < 0 ? -1 : 0;
    const int biased = std::min(((sample ^ negative) >> 2) + 33, 0x1FFF);
    const auto bits = std::bit_cast<std::uint32_t>(static_cast<float>(biased));
    return static_cast<std::uint8_t>((0x8BF - static_cast<int>(bits >> 19)) | (~negative & 0x80));
}
inline std::uint8_t linear_to_alaw(std::int16_t sample) noexcept {
    return detail::alaw_encode_table[static_cast<std::uint16_t>(sample) >> 4];
}

// Span forms: `out` must be at least as long as `in`.
void ulaw_decode(std::span<const std::uint8_t> in, std::span<std::int16_t> out) noexcept;
void ulaw_encode(std::span<const std::int16_t> in, std::span<std::uint8_t> out) noexcept;
void alaw_decode(std::span<const std::uint8_t> in, std::span<std::int16_t> out) noexcept;
void alaw_encode(std::span<const std::int16_t> in, std::span<std::uint8_t> out) noexcept;

// The reference algorithms the tables are built from (G.191 ulaw_compress/expand,
// alaw_compress/expand), kept for tests that check the tables and linear_to_ulaw against them.
std::uint8_t ulaw_compress_reference(std::int16_t sample) noexcept;
std::int16_t ulaw_expand_reference(std::uint8_t code) noexcept;
std::uint8_t alaw_compress_reference(std::int16_t sample) noexcept;
std::int16_t alaw_expand_reference(std::uint8_t code) noexcept;

} // namespace callstream::codec
