#pragma once
// PCM16 WAV (RIFF/WAVE) header writing and parsing, in memory.
//
// Pure functions, callable from any thread; no I/O. Samples are 16-bit little-endian signed,
// interleaved when stereo. A frame is one sample per channel (block_align = 2 * channels).
//
// Writing: wav_write_header fills the canonical 44-byte header (RIFF, "fmt " with
// WAVE_FORMAT_PCM, "data"). A recorder writes it first with provisional sizes and rewrites it
// (or just the two size fields at wav_riff_size_offset / wav_data_size_offset) as data arrives.
// Write the provisional header with data_bytes = wav_max_data_bytes, not 0: if the process
// dies before the patch, wav_parse (and sox, with a warning) still read everything that reached
// the file, whereas a data size of 0 would be taken at its word.
//
// Parsing: wav_parse accepts RIFF/WAVE with a "fmt " chunk of WAVE_FORMAT_PCM or
// WAVE_FORMAT_EXTENSIBLE with the PCM sub-format, 16 bits, 1 or 2 channels, any non-zero rate.
// Unknown chunks (LIST, fact, ...) are skipped, honouring RIFF's pad byte after odd-sized chunks.
// A data size larger than the bytes present (a truncated or crashed recording) is accepted: the
// data is what is there, cut to whole frames, and `truncated` is set. The returned `data` span
// points into the caller's buffer and lives as long as it. Errors come as wav_errc codes.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace callstream::codec {

enum class wav_errc {
    not_riff = 1,         // shorter than 12 bytes or no "RIFF" tag
    not_wave,             // RIFF form type is not "WAVE"
    no_fmt_chunk,         // no "fmt " chunk before the data
    bad_fmt_chunk,        // "fmt " chunk too short or cut off
    unsupported_format,   // format tag not PCM (nor EXTENSIBLE with the PCM sub-format)
    unsupported_bits,     // bits per sample other than 16
    unsupported_channels, // channel count other than 1 or 2
    bad_rate,             // sample rate 0
    bad_block_align,      // block_align != 2 * channels
    no_data_chunk,        // no "data" chunk
};
const std::error_category& wav_category() noexcept;
std::error_code make_error_code(wav_errc e) noexcept;

inline constexpr std::size_t wav_header_bytes = 44;
inline constexpr std::size_t wav_riff_size_offset = 4;  // uint32 LE: 36 + data bytes
inline constexpr std::size_t wav_data_size_offset = 40; // uint32 LE: data bytes
// The largest data size a canonical header can state (RIFF size is 32-bit and counts 36 more).
inline constexpr std::uint32_t wav_max_data_bytes = 0xFFFFFFFFu - 36u;

// Fills `out` with the canonical header for PCM16 `channels` x `rate_hz` and `data_bytes` of
// sample data (clamped to wav_max_data_bytes). `channels` is 1 or 2 and `rate_hz` > 0.
void wav_write_header(std::span<std::uint8_t, wav_header_bytes> out, int channels, int rate_hz,
                      std::uint64_t data_bytes) noexcept;
std::array<std::uint8_t, wav_header_bytes> wav_header(int channels, int rate_hz,
                                                      std::uint64_t data_bytes) noexcept;

struct wav_info {
    int channels = 0;
    int rate_hz = 0;
    std::span<const std::uint8_t> data;    // whole frames of PCM16 LE, into the parsed buffer
    std::uint32_t declared_data_bytes = 0; // the data chunk's size field
    bool truncated = false;                // fewer bytes present than declared
    bool extensible = false;               // fmt was WAVE_FORMAT_EXTENSIBLE

    std::size_t frames() const noexcept {
        return channels > 0 ? data.size() / (2 * static_cast<std::size_t>(channels)) : 0;
    }
};

// Parses `file`; on error `info` is left default-constructed.
std::error_code wav_parse(std::span<const std::uint8_t> file, wav_info& info) noexcept;

// Converts `data` (PCM16 LE bytes) to samples; writes min(data.size() / 2, out.size()) samples
// and returns that count.
std::size_t wav_read_samples(std::span<const std::uint8_t> data,
                             std::span<std::int16_t> out) noexcept;

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::wav_errc> : std::true_type {};
