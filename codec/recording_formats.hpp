#pragma once
// A tolerant RIFF/WAVE reader for prompts: any PCM width, float, μ-law and A-law, decoded to
// floats. codec/wav.hpp (PCM16 only) writes the recorder's headers.
//
// Pure functions on memory, callable from any thread. Candidate to fold into codec/wav.hpp.

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace callstream::codec {

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
