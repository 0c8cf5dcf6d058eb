#include "codec/recording_formats.hpp"

#include <cstring>

#include "codec/g711.hpp"

namespace callstream::codec {

namespace {

std::uint16_t get_u16(const std::uint8_t* p) noexcept {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t get_u32(const std::uint8_t* p) noexcept {
    return static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 8) |
           (static_cast<std::uint32_t>(p[2]) << 16) | (static_cast<std::uint32_t>(p[3]) << 24);
}

constexpr std::uint16_t format_pcm = 1;
constexpr std::uint16_t format_float = 3;
constexpr std::uint16_t format_alaw = 6;
constexpr std::uint16_t format_ulaw = 7;
constexpr std::uint16_t format_extensible = 0xFFFE;

} // namespace

std::string parse_wav_file(std::span<const std::uint8_t> file, wav_file_audio& out) {
    if (file.size() < 12 || std::memcmp(file.data(), "RIFF", 4) != 0 ||
        std::memcmp(file.data() + 8, "WAVE", 4) != 0) {
        return "not a RIFF/WAVE file";
    }
    std::uint16_t format = 0;
    std::uint16_t bits = 0;
    bool have_fmt = false;
    std::size_t pos = 12;
    while (pos + 8 <= file.size()) {
        const std::uint8_t* chunk = file.data() + pos;
        std::size_t size = get_u32(chunk + 4);
        const std::size_t body = pos + 8;
        if (std::memcmp(chunk, "fmt ", 4) == 0) {
            if (size < 16 || body + size > file.size()) {
                return "truncated fmt chunk";
            }
            format = get_u16(chunk + 8);
            out.channels = get_u16(chunk + 10);
            out.rate_hz = get_u32(chunk + 12);
            bits = get_u16(chunk + 22);
            if (format == format_extensible && size >= 40) {
                // The first two bytes of the sub-format GUID are the plain format tag.
                format = get_u16(chunk + 32);
            }
            have_fmt = true;
        } else if (std::memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt) {
                return "data chunk before fmt chunk";
            }
            // An unfinished recording: take what is there.
            if (size == 0 || body + size > file.size()) {
                size = file.size() - body;
            }
            if (out.channels == 0 || out.rate_hz == 0) {
                return "bad channel count or rate";
            }
            const std::uint8_t* p = chunk + 8;
            const std::size_t bytes_per_sample = bits / 8u;
            if (bytes_per_sample == 0) {
                return "bad bits per sample";
            }
            const std::size_t n = size / bytes_per_sample / out.channels * out.channels;
            out.samples.resize(n);
            for (std::size_t i = 0; i < n; ++i, p += bytes_per_sample) {
                float v = 0.0f;
                if (format == format_pcm && bits == 8) {
                    v = (static_cast<float>(p[0]) - 128.0f) / 128.0f;
                } else if (format == format_pcm && bits == 16) {
                    v = static_cast<float>(static_cast<std::int16_t>(get_u16(p))) / 32768.0f;
                } else if (format == format_pcm && bits == 24) {
                    const auto u = static_cast<std::uint32_t>(p[0] | (p[1] << 8) | (p[2] << 16))
                                   << 8;
                    v = static_cast<float>(static_cast<std::int32_t>(u)) / 2147483648.0f;
                } else if (format == format_pcm && bits == 32) {
                    v = static_cast<float>(static_cast<std::int32_t>(get_u32(p))) / 2147483648.0f;
                } else if (format == format_float && bits == 32) {
                    std::memcpy(&v, p, 4);
                } else if (format == format_float && bits == 64) {
                    double d = 0;
                    std::memcpy(&d, p, 8);
                    v = static_cast<float>(d);
                } else if (format == format_ulaw && bits == 8) {
                    v = static_cast<float>(ulaw_to_linear(p[0])) / 32768.0f;
                } else if (format == format_alaw && bits == 8) {
                    v = static_cast<float>(alaw_to_linear(p[0])) / 32768.0f;
                } else {
                    return "unsupported WAV format " + std::to_string(format) + " with " +
                           std::to_string(bits) + " bits";
                }
                out.samples[i] = v;
            }
            return {};
        }
        pos = body + size + (size & 1u); // chunks are word aligned
    }
    return "no data chunk";
}

} // namespace callstream::codec
