#pragma once
// RIFF/WAVE in memory: the recorder's PCM16 header, a strict PCM16 parser, and a tolerant decoder
// for prompts. One chunk walk serves both readers.
//
// Pure functions, callable from any thread; no I/O. Samples are little-endian, interleaved
// when stereo. A frame is one sample per channel (block_align = bytes per sample * channels).
//
// The header the recorder writes (pipeline/recording/recording_writer.cpp): the canonical
// 44-byte header (RIFF, "fmt " with WAVE_FORMAT_PCM, 16 bits, 2 channels, 8000 Hz, "data"),
// written first with data_bytes = 0, then, every flush (250 ms), the data written so far is
// appended and the whole header is rewritten in place with the true sizes (pwrite at offset 0).
// A file killed between flushes thus states a data size that matches what it holds up to the
// last flush; bytes appended after it (a torn flush) are beyond the stated size and are not
// read. wav_parse also reads files whose data size runs past the end (other recorders write
// wav_max_data_bytes provisionally): the data is what is there, cut to whole frames, and
// `truncated` is set.
//
// wav_parse: RIFF/WAVE with a "fmt " chunk of WAVE_FORMAT_PCM or WAVE_FORMAT_EXTENSIBLE with
// the PCM sub-format, 16 bits, 1 or 2 channels, any non-zero rate. Unknown chunks (LIST, fact,
// ...) are skipped, honouring RIFF's pad byte after odd-sized chunks. The returned `data` span
// points into the caller's buffer and lives as long as it.
// wav_decode: everything a prompt may come in (PCM 8/16/24/32-bit, IEEE float 32/64, μ-law,
// A-law; plain or EXTENSIBLE; any channel count) decoded to floats in [-1, 1]; a data size of
// 0 or past the end of the file (an unfinished recording) is taken to the end of the file.
// Errors come as wav_errc codes in the "wav" category; on error the output is left empty.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>
#include <vector>

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
    bad_channels,         // wav_decode: channel count 0
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

// Parses `file` strictly as PCM16 mono or stereo; on error `info` is left default-constructed.
std::error_code wav_parse(std::span<const std::uint8_t> file, wav_info& info) noexcept;

// Decoded audio as interleaved floats in [-1, 1] (samples.size() / channels frames).
struct wav_audio {
    int channels = 0;
    int rate_hz = 0;
    std::vector<float> samples;
};

// Decodes any PCM, float, μ-law or A-law WAV (see above); on error `out` is left empty.
std::error_code wav_decode(std::span<const std::uint8_t> file, wav_audio& out);

// Converts `data` (PCM16 LE bytes) to samples; writes min(data.size() / 2, out.size()) samples
// and returns that count.
std::size_t wav_read_samples(std::span<const std::uint8_t> data,
                             std::span<std::int16_t> out) noexcept;

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::wav_errc> : std::true_type {};
