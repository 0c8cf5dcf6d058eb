#include "codec/wav.hpp"

#include <algorithm>
#include <string>
#include <string_view>

namespace callstream::codec {
namespace {

constexpr std::uint16_t format_pcm = 0x0001;
constexpr std::uint16_t format_extensible = 0xFFFE;
// KSDATAFORMAT_SUBTYPE_PCM after its first two bytes (which hold the format tag, 0x0001).
constexpr std::array<std::uint8_t, 14> pcm_guid_tail = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                                        0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

std::uint16_t get_u16(const std::uint8_t* p) {
    return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}
std::uint32_t get_u32(const std::uint8_t* p) {
    return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16) |
           (std::uint32_t{p[3]} << 24);
}
void put_u16(std::uint8_t* p, std::uint32_t v) {
    p[0] = static_cast<std::uint8_t>(v);
    p[1] = static_cast<std::uint8_t>(v >> 8);
}
void put_u32(std::uint8_t* p, std::uint32_t v) {
    put_u16(p, v & 0xFFFF);
    put_u16(p + 2, v >> 16);
}
bool tag_is(const std::uint8_t* p, std::string_view tag) {
    return std::equal(tag.begin(), tag.end(), p,
                      [](char a, std::uint8_t b) { return static_cast<std::uint8_t>(a) == b; });
}
void put_tag(std::uint8_t* p, std::string_view tag) {
    std::transform(tag.begin(), tag.end(), p, [](char c) { return static_cast<std::uint8_t>(c); });
}

class wav_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "wav"; }
    std::string message(int ev) const override {
        switch (static_cast<wav_errc>(ev)) {
        case wav_errc::not_riff:
            return "not a RIFF file";
        case wav_errc::not_wave:
            return "RIFF file is not WAVE";
        case wav_errc::no_fmt_chunk:
            return "WAVE file has no fmt chunk before its data";
        case wav_errc::bad_fmt_chunk:
            return "WAVE fmt chunk is too short";
        case wav_errc::unsupported_format:
            return "WAVE format is not PCM";
        case wav_errc::unsupported_bits:
            return "WAVE sample size is not 16 bits";
        case wav_errc::unsupported_channels:
            return "WAVE channel count is not 1 or 2";
        case wav_errc::bad_rate:
            return "WAVE sample rate is 0";
        case wav_errc::bad_block_align:
            return "WAVE block alignment does not match the channels";
        case wav_errc::no_data_chunk:
            return "WAVE file has no data chunk";
        }
        return "unknown wav error";
    }
};

// Checks a "fmt " chunk body and fills channels/rate/extensible.
std::error_code parse_fmt(std::span<const std::uint8_t> body, wav_info& info) {
    if (body.size() < 16) {
        return wav_errc::bad_fmt_chunk;
    }
    const std::uint8_t* p = body.data();
    const std::uint16_t tag = get_u16(p);
    const std::uint16_t channels = get_u16(p + 2);
    const std::uint32_t rate_hz = get_u32(p + 4);
    const std::uint16_t block_align = get_u16(p + 12);
    const std::uint16_t bits = get_u16(p + 14);
    if (tag == format_extensible) {
        // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16) follow the 16 basic bytes.
        if (body.size() < 40 || get_u16(p + 16) < 22) {
            return wav_errc::bad_fmt_chunk;
        }
        const std::uint8_t* guid = p + 24;
        if (get_u16(guid) != format_pcm ||
            !std::equal(pcm_guid_tail.begin(), pcm_guid_tail.end(), guid + 2)) {
            return wav_errc::unsupported_format;
        }
        info.extensible = true;
    } else if (tag != format_pcm) {
        return wav_errc::unsupported_format;
    }
    if (bits != 16) {
        return wav_errc::unsupported_bits;
    }
    if (channels != 1 && channels != 2) {
        return wav_errc::unsupported_channels;
    }
    if (rate_hz == 0 || rate_hz > 0x7FFFFFFF) {
        return wav_errc::bad_rate;
    }
    if (block_align != 2 * channels) {
        return wav_errc::bad_block_align;
    }
    info.channels = channels;
    info.rate_hz = static_cast<int>(rate_hz);
    return {};
}

} // namespace

const std::error_category& wav_category() noexcept {
    static const wav_category_impl category;
    return category;
}

std::error_code make_error_code(wav_errc e) noexcept {
    return {static_cast<int>(e), wav_category()};
}

void wav_write_header(std::span<std::uint8_t, wav_header_bytes> out, int channels, int rate_hz,
                      std::uint64_t data_bytes) noexcept {
    const auto data =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(data_bytes, wav_max_data_bytes));
    const auto ch = static_cast<std::uint32_t>(channels);
    const auto rate = static_cast<std::uint32_t>(rate_hz);
    std::uint8_t* p = out.data();
    put_tag(p, "RIFF");
    put_u32(p + 4, 36 + data);
    put_tag(p + 8, "WAVE");
    put_tag(p + 12, "fmt ");
    put_u32(p + 16, 16);
    put_u16(p + 20, format_pcm);
    put_u16(p + 22, ch);
    put_u32(p + 24, rate);
    put_u32(p + 28, rate * ch * 2); // byte rate
    put_u16(p + 32, ch * 2);        // block align
    put_u16(p + 34, 16);            // bits per sample
    put_tag(p + 36, "data");
    put_u32(p + 40, data);
}

std::array<std::uint8_t, wav_header_bytes> wav_header(int channels, int rate_hz,
                                                      std::uint64_t data_bytes) noexcept {
    std::array<std::uint8_t, wav_header_bytes> header{};
    wav_write_header(header, channels, rate_hz, data_bytes);
    return header;
}

std::error_code wav_parse(std::span<const std::uint8_t> file, wav_info& info) noexcept {
    info = wav_info{};
    if (file.size() < 12 || !tag_is(file.data(), "RIFF")) {
        return wav_errc::not_riff;
    }
    if (!tag_is(file.data() + 8, "WAVE")) {
        return wav_errc::not_wave;
    }
    // The RIFF size is not trusted: crashed recordings leave it provisional. Chunks are walked
    // up to the end of the buffer instead.
    wav_info parsed;
    bool have_fmt = false;
    std::size_t pos = 12;
    while (file.size() - pos >= 8) {
        const std::uint8_t* header = file.data() + pos;
        const std::uint32_t size = get_u32(header + 4);
        const std::size_t body_pos = pos + 8;
        const std::size_t available = file.size() - body_pos;
        if (tag_is(header, "fmt ")) {
            if (size > available) {
                return wav_errc::bad_fmt_chunk;
            }
            if (const std::error_code ec = parse_fmt(file.subspan(body_pos, size), parsed)) {
                return ec;
            }
            have_fmt = true;
        } else if (tag_is(header, "data")) {
            if (!have_fmt) {
                return wav_errc::no_fmt_chunk;
            }
            const std::size_t frame_bytes = 2 * static_cast<std::size_t>(parsed.channels);
            const std::size_t present = std::min<std::size_t>(size, available);
            parsed.data = file.subspan(body_pos, present / frame_bytes * frame_bytes);
            parsed.declared_data_bytes = size;
            parsed.truncated = size > available;
            info = parsed;
            return {};
        }
        // Skip the chunk and its pad byte; a chunk running off the end ends the walk.
        const std::size_t skip = std::size_t{size} + (size & 1u);
        if (skip > available) {
            break;
        }
        pos = body_pos + skip;
    }
    return have_fmt ? wav_errc::no_data_chunk : wav_errc::no_fmt_chunk;
}

std::size_t wav_read_samples(std::span<const std::uint8_t> data,
                             std::span<std::int16_t> out) noexcept {
    const std::size_t n = std::min(data.size() / 2, out.size());
    for (std::size_t i = 0; i < n; ++i) {
        out[i] = static_cast<std::int16_t>(get_u16(data.data() + 2 * i));
    }
    return n;
}

} // namespace callstream::codec
