#pragma once
// The little WAV knowledge the recorder and the prompt player need: a canonical PCM16 header to
// write, and a tolerant RIFF/WAVE reader for prompts.
//
// Pure functions on memory, callable from any thread. Overlaps with codec/wav.hpp (written in
// parallel); the two should be merged into one WAV module.

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace callstream::codec {

inline constexpr std::size_t wav_pcm16_header_bytes = 44;
// Byte offsets of the two size fields a growing recording patches.
inline constexpr std::size_t wav_riff_size_offset = 4;
inline constexpr std::size_t wav_data_size_offset = 40;

// A canonical 44-byte RIFF/WAVE header for little-endian PCM16 with `data_bytes` of samples.
std::array<std::uint8_t, wav_pcm16_header_bytes>
make_wav_pcm16_header(std::uint16_t channels, std::uint32_t rate_hz,
                      std::uint32_t data_bytes) noexcept;

// Decoded WAV audio as interleaved floats in [-1, 1].
struct wav_file_audio {
    std::uint16_t channels = 0;
    std::uint32_t rate_hz = 0;
    std::vector<float> samples; // interleaved, samples.size() / channels frames
};

// Reads PCM 8/16/24/32-bit, IEEE float 32/64, μ-law and A-law (plain or WAVE_FORMAT_EXTENSIBLE).
// A data chunk whose size is 0 or runs past the end of the file (a recording that was never
// finalised) is taken to the end of the file. Returns an error text, empty on success.
std::string parse_wav_file(std::span<const std::uint8_t> file, wav_file_audio& out);

} // namespace callstream::codec
