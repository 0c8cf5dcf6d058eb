#include "codec/wav.hpp"

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "codec/g711.hpp"

namespace callstream::codec {
namespace {

constexpr std::uint16_t format_pcm = 0x0001;
constexpr std::uint16_t format_float = 0x0003;
constexpr std::uint16_t format_alaw = 0x0006;
constexpr std::uint16_t format_ulaw = 0x0007;
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
        case wav_errc::bad_channels:
            return "WAVE channel count is 0";
        }
        return "unknown wav error";
    }
};

// What a "fmt " chunk says, before either reader decides whether it can read it.
struct wav_format {
    std::uint16_t tag = 0; // the plain tag, or the EXTENSIBLE sub-format's
    std::uint16_t channels = 0;
    std::uint32_t rate_hz = 0;
    std::uint16_t block_align = 0;
    std::uint16_t bits = 0;
    bool extensible = false;
    bool extension_complete = false; // EXTENSIBLE with its 24 extra bytes (cbSize >= 22)
    bool standard_guid = false;      // the sub-format is a KSDATAFORMAT_SUBTYPE_* GUID
};

// Where the chunks are. `data` is what the file holds of the data chunk (its declared size
// cut to the bytes present).
struct wav_chunks {
    wav_format format;
    std::size_t data_pos = 0;
    std::uint32_t declared_data_bytes = 0;
    std::size_t data_present = 0;
};

std::error_code parse_fmt(std::span<const std::uint8_t> body, wav_format& f) {
    if (body.size() < 16) {
        return wav_errc::bad_fmt_chunk;
    }
    const std::uint8_t* p = body.data();
    f.tag = get_u16(p);
    f.channels = get_u16(p + 2);
    f.rate_hz = get_u32(p + 4);
    f.block_align = get_u16(p + 12);
    f.bits = get_u16(p + 14);
    if (f.tag == format_extensible) {
        f.extensible = true;
        // cbSize(2) validBits(2) channelMask(4) subFormat GUID(16) follow the 16 basic bytes;
        // the GUID's first two bytes are the plain format tag.
        if (body.size() >= 40) {
            const std::uint8_t* guid = p + 24;
            f.tag = get_u16(guid);
            f.extension_complete = get_u16(p + 16) >= 22;
            f.standard_guid = std::equal(pcm_guid_tail.begin(), pcm_guid_tail.end(), guid + 2);
        }
    }
    return {};
}

// The one chunk walk. The RIFF size is not trusted: crashed recordings leave it provisional, so
// chunks are walked up to the end of the buffer instead.
std::error_code walk_chunks(std::span<const std::uint8_t> file, wav_chunks& out) {
    if (file.size() < 12 || !tag_is(file.data(), "RIFF")) {
        return wav_errc::not_riff;
    }
    if (!tag_is(file.data() + 8, "WAVE")) {
        return wav_errc::not_wave;
    }
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
            if (const std::error_code ec = parse_fmt(file.subspan(body_pos, size), out.format)) {
                return ec;
            }
            have_fmt = true;
        } else if (tag_is(header, "data")) {
            if (!have_fmt) {
                return wav_errc::no_fmt_chunk;
            }
            out.data_pos = body_pos;
            out.declared_data_bytes = size;
            out.data_present = std::min<std::size_t>(size, available);
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
    wav_chunks c;
    if (const std::error_code ec = walk_chunks(file, c)) {
        return ec;
    }
    const wav_format& f = c.format;
    if (f.extensible && !f.extension_complete) {
        return wav_errc::bad_fmt_chunk;
    }
    if (f.tag != format_pcm || (f.extensible && !f.standard_guid)) {
        return wav_errc::unsupported_format;
    }
    if (f.bits != 16) {
        return wav_errc::unsupported_bits;
    }
    if (f.channels != 1 && f.channels != 2) {
        return wav_errc::unsupported_channels;
    }
    if (f.rate_hz == 0 || f.rate_hz > 0x7FFFFFFF) {
        return wav_errc::bad_rate;
    }
    if (f.block_align != 2 * f.channels) {
        return wav_errc::bad_block_align;
    }
    const std::size_t frame_bytes = 2 * std::size_t{f.channels};
    info.channels = f.channels;
    info.rate_hz = static_cast<int>(f.rate_hz);
    info.extensible = f.extensible;
    info.data = file.subspan(c.data_pos, c.data_present / frame_bytes * frame_bytes);
    info.declared_data_bytes = c.declared_data_bytes;
    info.truncated = c.declared_data_bytes > file.size() - c.data_pos;
    return {};
}

std::error_code wav_decode(std::span<const std::uint8_t> file, wav_audio& out) {
    out = wav_audio{};
    wav_chunks c;
    if (const std::error_code ec = walk_chunks(file, c)) {
        return ec;
    }
    const wav_format& f = c.format;
    if (f.channels == 0) {
        return wav_errc::bad_channels;
    }
    if (f.rate_hz == 0 || f.rate_hz > 0x7FFFFFFF) {
        return wav_errc::bad_rate;
    }
    const bool known =
        (f.tag == format_pcm && (f.bits == 8 || f.bits == 16 || f.bits == 24 || f.bits == 32)) ||
        (f.tag == format_float && (f.bits == 32 || f.bits == 64)) ||
        ((f.tag == format_ulaw || f.tag == format_alaw) && f.bits == 8);
    if (!known) {
        return f.tag == format_pcm || f.tag == format_float ? wav_errc::unsupported_bits
                                                            : wav_errc::unsupported_format;
    }
    // An unfinished recording (size 0 or past the end): take what is there.
    std::size_t size = c.data_present;
    if (c.declared_data_bytes == 0 || c.declared_data_bytes > file.size() - c.data_pos) {
        size = file.size() - c.data_pos;
    }
    const std::size_t bytes_per_sample = f.bits / 8u;
    const std::size_t n = size / bytes_per_sample / f.channels * f.channels;
    std::vector<float> samples(n);
    const std::uint8_t* p = file.data() + c.data_pos;
    for (std::size_t i = 0; i < n; ++i, p += bytes_per_sample) {
        float v = 0.0f;
        if (f.tag == format_pcm && f.bits == 8) {
            v = (static_cast<float>(p[0]) - 128.0f) / 128.0f;
        } else if (f.tag == format_pcm && f.bits == 16) {
            v = static_cast<float>(static_cast<std::int16_t>(get_u16(p))) / 32768.0f;
        } else if (f.tag == format_pcm && f.bits == 24) {
            const auto u = static_cast<std::uint32_t>(p[0] | (p[1] << 8) | (p[2] << 16)) << 8;
            v = static_cast<float>(static_cast<std::int32_t>(u)) / 2147483648.0f;
        } else if (f.tag == format_pcm) {
            v = static_cast<float>(static_cast<std::int32_t>(get_u32(p))) / 2147483648.0f;
        } else if (f.tag == format_float && f.bits == 32) {
            std::memcpy(&v, p, 4);
        } else if (f.tag == format_float) {
            double d = 0;
            std::memcpy(&d, p, 8);
            v = static_cast<float>(d);
        } else if (f.tag == format_ulaw) {
            v = static_cast<float>(ulaw_to_linear(p[0])) / 32768.0f;
        } else {
            v = static_cast<float>(alaw_to_linear(p[0])) / 32768.0f;
        }
        samples[i] = v;
    }
    out.channels = f.channels;
    out.rate_hz = static_cast<int>(f.rate_hz);
    out.samples = std::move(samples);
    return {};
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
