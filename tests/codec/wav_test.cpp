#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/wav.hpp"
#include "tests/codec/sox_helpers.hpp"

namespace {

namespace codec = callstream::codec;
namespace test = callstream::test;
using codec::wav_errc;

std::uint32_t u32_at(const std::vector<std::uint8_t>& b, std::size_t at) {
    return std::uint32_t{b[at]} | (std::uint32_t{b[at + 1]} << 8) |
           (std::uint32_t{b[at + 2]} << 16) | (std::uint32_t{b[at + 3]} << 24);
}
void put_u32(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) {
        b[at + static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(v >> (8 * i));
    }
}
void put_u16(std::vector<std::uint8_t>& b, std::size_t at, std::uint32_t v) {
    b[at] = static_cast<std::uint8_t>(v);
    b[at + 1] = static_cast<std::uint8_t>(v >> 8);
}
void append(std::vector<std::uint8_t>& b, const std::string& s) {
    b.insert(b.end(), s.begin(), s.end());
}
void append_u32(std::vector<std::uint8_t>& b, std::uint32_t v) {
    b.resize(b.size() + 4);
    put_u32(b, b.size() - 4, v);
}

// A 440 Hz tone as interleaved PCM16 (same tone in both channels, the second one halved).
std::vector<std::int16_t> tone(int channels, int rate_hz, std::size_t frames) {
    std::vector<std::int16_t> s(frames * static_cast<std::size_t>(channels));
    for (std::size_t i = 0; i < frames; ++i) {
        const double v = 12000.0 * std::sin(2.0 * M_PI * 440.0 * static_cast<double>(i) / rate_hz);
        for (int c = 0; c < channels; ++c) {
            s[i * static_cast<std::size_t>(channels) + static_cast<std::size_t>(c)] =
                static_cast<std::int16_t>(std::lround(v / (c + 1)));
        }
    }
    return s;
}

std::vector<std::uint8_t> le_bytes(const std::vector<std::int16_t>& samples) {
    std::vector<std::uint8_t> b(samples.size() * 2);
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto u = static_cast<std::uint16_t>(samples[i]);
        b[2 * i] = static_cast<std::uint8_t>(u);
        b[2 * i + 1] = static_cast<std::uint8_t>(u >> 8);
    }
    return b;
}

std::vector<std::int16_t> samples_of(const codec::wav_info& info) {
    std::vector<std::int16_t> s(info.data.size() / 2);
    EXPECT_EQ(codec::wav_read_samples(info.data, s), s.size());
    return s;
}

// A complete file made by our header writer.
std::vector<std::uint8_t> our_file(int channels, int rate_hz,
                                   const std::vector<std::int16_t>& samples) {
    const auto data = le_bytes(samples);
    const auto header = codec::wav_header(channels, rate_hz, data.size());
    std::vector<std::uint8_t> file(header.begin(), header.end());
    file.insert(file.end(), data.begin(), data.end());
    return file;
}

TEST(wav, header_layout_is_canonical) {
    const auto h = codec::wav_header(2, 16000, 64000);
    const std::vector<std::uint8_t> b(h.begin(), h.end());
    EXPECT_EQ(std::string(b.begin(), b.begin() + 4), "RIFF");
    EXPECT_EQ(u32_at(b, codec::wav_riff_size_offset), 36u + 64000u);
    EXPECT_EQ(std::string(b.begin() + 8, b.begin() + 16), "WAVEfmt ");
    EXPECT_EQ(u32_at(b, 16), 16u);       // fmt size
    EXPECT_EQ(b[20] | (b[21] << 8), 1);  // PCM
    EXPECT_EQ(b[22] | (b[23] << 8), 2);  // channels
    EXPECT_EQ(u32_at(b, 24), 16000u);    // rate
    EXPECT_EQ(u32_at(b, 28), 64000u);    // byte rate
    EXPECT_EQ(b[32] | (b[33] << 8), 4);  // block align
    EXPECT_EQ(b[34] | (b[35] << 8), 16); // bits
    EXPECT_EQ(std::string(b.begin() + 36, b.begin() + 40), "data");
    EXPECT_EQ(u32_at(b, codec::wav_data_size_offset), 64000u);

    // Sizes past 4 GiB are clamped so the RIFF size cannot wrap.
    const auto big = codec::wav_header(1, 8000, std::uint64_t{1} << 33);
    const std::vector<std::uint8_t> bb(big.begin(), big.end());
    EXPECT_EQ(u32_at(bb, codec::wav_data_size_offset), codec::wav_max_data_bytes);
    EXPECT_EQ(u32_at(bb, codec::wav_riff_size_offset), 0xFFFFFFFFu);
}

TEST(wav, our_header_round_trips_through_our_parser) {
    for (const int channels : {1, 2}) {
        for (const int rate_hz : {8000, 16000, 44100, 48000}) {
            const auto samples = tone(channels, rate_hz, 1000);
            const auto file = our_file(channels, rate_hz, samples);
            codec::wav_info info;
            ASSERT_FALSE(codec::wav_parse(file, info));
            EXPECT_EQ(info.channels, channels);
            EXPECT_EQ(info.rate_hz, rate_hz);
            EXPECT_EQ(info.frames(), 1000u);
            EXPECT_FALSE(info.truncated);
            EXPECT_FALSE(info.extensible);
            EXPECT_EQ(samples_of(info), samples);
        }
    }
}

class wav_sox : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::have_tool("sox") || !test::have_tool("soxi")) {
            FAIL() << "sox/soxi missing: apt-get install sox";
        }
    }
    std::string soxi(const std::string& option, const std::string& file) {
        int status = -1;
        std::string out =
            test::run_output("soxi " + option + " " + test::quote(file) + " 2>/dev/null", status);
        EXPECT_EQ(status, 0) << "soxi " << option;
        while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
            out.pop_back();
        }
        return out;
    }
    // sox's own decoding of `wav` as raw interleaved s16.
    std::vector<std::int16_t> sox_samples(const std::string& wav) {
        const std::string raw = dir_.file("decoded.raw");
        EXPECT_EQ(test::run("sox -D " + test::quote(wav) + " -t s16 " + test::quote(raw) +
                            " 2>/dev/null"),
                  0);
        return test::read_s16(raw);
    }
    test::temp_dir dir_;
};

TEST_F(wav_sox, files_made_by_sox_parse_correctly) {
    struct shape {
        int channels;
        int rate_hz;
    };
    for (const shape s :
         {shape{2, 16000}, shape{1, 8000}, shape{1, 48000}, shape{2, 44100}, shape{1, 11025}}) {
        const std::string wav = dir_.file("sox.wav");
        ASSERT_EQ(test::run("sox -D -n -r " + std::to_string(s.rate_hz) + " -c " +
                            std::to_string(s.channels) + " -b 16 " + test::quote(wav) +
                            " synth 1 sine 440 2>/dev/null"),
                  0);
        const auto bytes = test::read_bytes(wav);
        codec::wav_info info;
        ASSERT_FALSE(codec::wav_parse(bytes, info)) << s.rate_hz;
        EXPECT_EQ(info.channels, s.channels);
        EXPECT_EQ(info.rate_hz, s.rate_hz);
        EXPECT_EQ(info.frames(), static_cast<std::size_t>(s.rate_hz));
        EXPECT_FALSE(info.truncated);
        EXPECT_EQ(samples_of(info), sox_samples(wav));
    }
}

TEST_F(wav_sox, sox_default_32_bit_extensible_file_is_rejected_by_bits) {
    // Without -b, sox writes synth output as 32-bit WAVE_FORMAT_EXTENSIBLE (with a fact chunk).
    const std::string wav = dir_.file("x.wav");
    ASSERT_EQ(test::run("sox -n -r 16000 -c 2 " + test::quote(wav) + " synth 1 sine 440"), 0);
    codec::wav_info info;
    EXPECT_EQ(codec::wav_parse(test::read_bytes(wav), info), wav_errc::unsupported_bits);
    // Three channels: sox writes 16-bit EXTENSIBLE; the format is understood, the count is not.
    ASSERT_EQ(test::run("sox -n -r 8000 -c 3 -b 16 " + test::quote(wav) + " synth 0.1 sine 300"),
              0);
    EXPECT_EQ(codec::wav_parse(test::read_bytes(wav), info), wav_errc::unsupported_channels);
}

TEST_F(wav_sox, headers_we_write_are_accepted_by_soxi_and_sox) {
    for (const int channels : {1, 2}) {
        for (const int rate_hz : {8000, 16000, 48000}) {
            const auto samples = tone(channels, rate_hz, static_cast<std::size_t>(rate_hz / 2));
            const std::string wav = dir_.file("ours.wav");
            test::write_bytes(wav, our_file(channels, rate_hz, samples));
            EXPECT_EQ(soxi("-r", wav), std::to_string(rate_hz));
            EXPECT_EQ(soxi("-c", wav), std::to_string(channels));
            EXPECT_EQ(soxi("-s", wav), std::to_string(rate_hz / 2));
            EXPECT_EQ(soxi("-b", wav), "16");
            EXPECT_EQ(soxi("-e", wav), "Signed Integer PCM");
            EXPECT_EQ(sox_samples(wav), samples);
        }
    }
}

TEST_F(wav_sox, crashed_recording_with_provisional_sizes_is_readable) {
    // What a recorder leaves after SIGKILL: header written with the largest size, data cut
    // mid-frame, never patched.
    const auto samples = tone(2, 16000, 4000);
    auto data = le_bytes(samples);
    data.resize(data.size() - 3); // the last frame is incomplete
    const auto header = codec::wav_header(2, 16000, codec::wav_max_data_bytes);
    std::vector<std::uint8_t> file(header.begin(), header.end());
    file.insert(file.end(), data.begin(), data.end());

    codec::wav_info info;
    ASSERT_FALSE(codec::wav_parse(file, info));
    EXPECT_TRUE(info.truncated);
    EXPECT_EQ(info.declared_data_bytes, codec::wav_max_data_bytes);
    EXPECT_EQ(info.frames(), 3999u);
    const std::vector<std::int16_t> expected(samples.begin(), samples.end() - 2);
    EXPECT_EQ(samples_of(info), expected);

    // sox reads the same file too (with a warning) and gets the same whole frames.
    const std::string wav = dir_.file("crashed.wav");
    test::write_bytes(wav, file);
    EXPECT_EQ(sox_samples(wav), expected);

    // Patching the two size fields afterwards gives a clean file.
    const auto patched = codec::wav_header(2, 16000, info.data.size());
    std::copy(patched.begin(), patched.end(), file.begin());
    file.resize(codec::wav_header_bytes + info.data.size());
    ASSERT_FALSE(codec::wav_parse(file, info));
    EXPECT_FALSE(info.truncated);
    EXPECT_EQ(info.frames(), 3999u);
}

TEST_F(wav_sox, extensible_pcm_and_unknown_chunks_are_handled) {
    // Take a sox-made 16-bit mono file and rebuild it as WAVE_FORMAT_EXTENSIBLE with a LIST
    // chunk of odd size (so a pad byte follows) before the data and another chunk after it.
    const std::string wav = dir_.file("base.wav");
    ASSERT_EQ(test::run("sox -D -n -r 22050 -c 1 -b 16 " + test::quote(wav) +
                        " synth 0.5 sine 1000 2>/dev/null"),
              0);
    const auto base = test::read_bytes(wav);
    codec::wav_info base_info;
    ASSERT_FALSE(codec::wav_parse(base, base_info));
    const std::vector<std::uint8_t> data(base_info.data.begin(), base_info.data.end());

    std::vector<std::uint8_t> f;
    append(f, "RIFF");
    append_u32(f, 0); // patched below
    append(f, "WAVE");
    append(f, "LIST");
    append_u32(f, 13);
    append(f, "INFOISFT");
    append_u32(f, 1);
    f.push_back('x');
    f.push_back(0); // pad byte
    append(f, "fmt ");
    append_u32(f, 40);
    const std::size_t fmt = f.size();
    f.resize(f.size() + 40);
    put_u16(f, fmt, 0xFFFE);
    put_u16(f, fmt + 2, 1);
    put_u32(f, fmt + 4, 22050);
    put_u32(f, fmt + 8, 44100);
    put_u16(f, fmt + 12, 2);
    put_u16(f, fmt + 14, 16);
    put_u16(f, fmt + 16, 22);
    put_u16(f, fmt + 18, 16);
    put_u32(f, fmt + 20, 4); // front centre
    const std::uint8_t pcm_guid[16] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                       0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    std::copy(std::begin(pcm_guid), std::end(pcm_guid), f.begin() + static_cast<long>(fmt + 24));
    append(f, "fact");
    append_u32(f, 4);
    append_u32(f, static_cast<std::uint32_t>(data.size() / 2));
    append(f, "data");
    append_u32(f, static_cast<std::uint32_t>(data.size()));
    f.insert(f.end(), data.begin(), data.end());
    append(f, "LIST");
    append_u32(f, 4);
    append(f, "INFO");
    put_u32(f, 4, static_cast<std::uint32_t>(f.size() - 8));

    codec::wav_info info;
    ASSERT_FALSE(codec::wav_parse(f, info));
    EXPECT_TRUE(info.extensible);
    EXPECT_EQ(info.channels, 1);
    EXPECT_EQ(info.rate_hz, 22050);
    EXPECT_EQ(info.frames(), 11025u);
    EXPECT_EQ(std::vector<std::uint8_t>(info.data.begin(), info.data.end()), data);

    // sox agrees on the hand-built file's audio.
    const std::string ext = dir_.file("ext.wav");
    test::write_bytes(ext, f);
    EXPECT_EQ(soxi("-r", ext), "22050");
    EXPECT_EQ(sox_samples(ext), samples_of(info));

    // EXTENSIBLE with a non-PCM sub-format (IEEE float) is refused.
    f[fmt + 24] = 0x03;
    EXPECT_EQ(codec::wav_parse(f, info), wav_errc::unsupported_format);
}

TEST(wav, malformed_files_report_the_right_error) {
    const auto good = our_file(1, 8000, tone(1, 8000, 100));
    codec::wav_info info;
    auto expect_error = [&](std::vector<std::uint8_t> f, wav_errc e, const char* what) {
        EXPECT_EQ(codec::wav_parse(f, info), e) << what;
        EXPECT_EQ(info.channels, 0) << what;
        EXPECT_TRUE(info.data.empty()) << what;
    };
    expect_error({}, wav_errc::not_riff, "empty");
    expect_error(std::vector<std::uint8_t>(good.begin(), good.begin() + 11), wav_errc::not_riff,
                 "11 bytes");
    auto f = good;
    f[0] = 'X';
    expect_error(f, wav_errc::not_riff, "tag");
    f = good;
    f[8] = 'A';
    expect_error(f, wav_errc::not_wave, "form");
    f = good;
    put_u16(f, 20, 3); // IEEE float
    expect_error(f, wav_errc::unsupported_format, "float");
    f = good;
    put_u16(f, 34, 8);
    expect_error(f, wav_errc::unsupported_bits, "8 bits");
    f = good;
    put_u16(f, 22, 0);
    expect_error(f, wav_errc::unsupported_channels, "0 channels");
    f = good;
    put_u16(f, 22, 6);
    expect_error(f, wav_errc::unsupported_channels, "6 channels");
    f = good;
    put_u32(f, 24, 0);
    expect_error(f, wav_errc::bad_rate, "rate 0");
    f = good;
    put_u16(f, 32, 4);
    expect_error(f, wav_errc::bad_block_align, "block align");
    f = good;
    put_u32(f, 16, 12);
    expect_error(f, wav_errc::bad_fmt_chunk, "fmt size 12");
    f = good;
    f[36] = 'X'; // the data chunk becomes unknown
    expect_error(f, wav_errc::no_data_chunk, "no data");
    f = good;
    f[12] = 'X'; // the fmt chunk becomes unknown
    expect_error(f, wav_errc::no_fmt_chunk, "no fmt");
    expect_error(std::vector<std::uint8_t>(good.begin(), good.begin() + 30),
                 wav_errc::bad_fmt_chunk, "fmt cut off");
    expect_error(std::vector<std::uint8_t>(good.begin(), good.begin() + 36),
                 wav_errc::no_data_chunk, "ends after fmt");

    const std::error_code ec = wav_errc::unsupported_bits;
    EXPECT_STREQ(ec.category().name(), "wav");
    EXPECT_EQ(ec.message(), "WAVE sample size is not 16 bits");
}

TEST(wav, every_prefix_of_a_file_parses_or_fails_cleanly) {
    const auto samples = tone(2, 8000, 50);
    const auto good = our_file(2, 8000, samples);
    for (std::size_t n = 0; n <= good.size(); ++n) {
        const std::vector<std::uint8_t> prefix(good.begin(), good.begin() + static_cast<long>(n));
        codec::wav_info info;
        const std::error_code ec = codec::wav_parse(prefix, info);
        if (n < codec::wav_header_bytes) {
            EXPECT_TRUE(ec) << n;
        } else {
            ASSERT_FALSE(ec) << n;
            EXPECT_EQ(info.frames(), (n - codec::wav_header_bytes) / 4) << n;
            EXPECT_EQ(info.truncated, n < good.size()) << n;
        }
    }
}

} // namespace
