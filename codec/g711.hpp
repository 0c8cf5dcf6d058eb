#pragma once
// ITU-T G.711 μ-law and A-law, bit-exact with the ITU-T G.191 reference implementation.
//
// Table-driven pure functions, callable from any thread. Samples are 16-bit linear PCM; μ-law
// uses the top 14 bits and A-law the top 13, as G.191 does. μ-law 0x7F (negative zero) decodes
// to 0, which encodes back as 0xFF: the only byte that does not survive a round trip.
// One byte per sample at any rate (Twilio: 8 kHz, 160 bytes per 20 ms frame). Buffers are the
// caller's; the span versions convert min(in, out) samples. Nothing can fail; nothing allocates.

#include <array>
#include <cstdint>
#include <span>

namespace callstream::codec {

namespace detail {
extern const std::array<std::int16_t, 256> ulaw_decode_table;
extern const std::array<std::int16_t, 256> alaw_decode_table;
extern const std::array<std::uint8_t, 16384> ulaw_encode_table; // indexed by the top 14 bits
extern const std::array<std::uint8_t, 4096> alaw_encode_table;  // indexed by the top 12 bits
} // namespace detail

inline std::int16_t ulaw_to_linear(std::uint8_t code) noexcept {
    return detail::ulaw_decode_table[code];
}
inline std::int16_t alaw_to_linear(std::uint8_t code) noexcept {
    return detail::alaw_decode_table[code];
}
inline std::uint8_t linear_to_ulaw(std::int16_t sample) noexcept {
    return detail::ulaw_encode_table[static_cast<std::uint16_t>(sample) >> 2];
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
// alaw_compress/expand), kept for tests that check the tables against them.
std::uint8_t ulaw_compress_reference(std::int16_t sample) noexcept;
std::int16_t ulaw_expand_reference(std::uint8_t code) noexcept;
std::uint8_t alaw_compress_reference(std::int16_t sample) noexcept;
std::int16_t alaw_expand_reference(std::uint8_t code) noexcept;

} // namespace callstream::codec
