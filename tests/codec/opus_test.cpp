#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/opus.hpp"
#include "tests/codec/sox_helpers.hpp"

namespace {

namespace codec = callstream::codec;
namespace test = callstream::test;
using codec::opus_errc;

std::vector<std::int16_t> sine(int rate_hz, double freq_hz, double seconds, double amplitude) {
    const auto n = static_cast<std::size_t>(seconds * rate_hz);
    std::vector<std::int16_t> s(n);
    for (std::size_t i = 0; i < n; ++i) {
        s[i] = static_cast<std::int16_t>(std::lround(
            amplitude * std::sin(2.0 * M_PI * freq_hz * static_cast<double>(i) / rate_hz)));
    }
    return s;
}

// SNR in dB of `decoded` delayed by `delay` samples against `source`, skipping `skip` samples
// at the start (codec warm-up) and stopping before the tail the delay cuts off.
double snr_db(const std::vector<std::int16_t>& source, const std::vector<std::int16_t>& decoded,
              std::size_t delay, std::size_t skip) {
    double signal = 0.0;
    double noise = 0.0;
    for (std::size_t i = skip; i + delay < decoded.size() && i < source.size(); ++i) {
        const double x = source[i];
        const double e = static_cast<double>(decoded[i + delay]) - x;
        signal += x * x;
        noise += e * e;
    }
    return 10.0 * std::log10(signal / std::max(noise, 1e-9));
}

struct round_trip_result {
    std::vector<std::int16_t> decoded;
    std::size_t packets = 0;
    std::size_t bytes = 0;
    int lookahead = 0;
};

// Encodes `source` (mono, whole 20 ms frames) frame by frame and decodes it at the same rate.
round_trip_result round_trip(const std::vector<std::int16_t>& source, int rate_hz, int bitrate_bps,
                             int complexity) {
    codec::opus_encoder enc;
    codec::opus_decoder dec;
    round_trip_result r;
    EXPECT_FALSE(enc.open({rate_hz, 1, bitrate_bps, complexity}));
    EXPECT_FALSE(dec.open(rate_hz, 1));
    r.lookahead = enc.lookahead_samples();
    const auto frame = static_cast<std::size_t>(enc.frame_samples());
    EXPECT_EQ(frame, static_cast<std::size_t>(rate_hz / 50));
    std::vector<std::uint8_t> packet(codec::opus_max_packet_bytes);
    std::vector<std::int16_t> pcm(frame);
    for (std::size_t at = 0; at + frame <= source.size(); at += frame) {
        std::size_t written = 0;
        const std::error_code ec =
            enc.encode(std::span(source).subspan(at, frame), packet, written);
        EXPECT_FALSE(ec) << ec.message();
        EXPECT_GT(written, 0u);
        std::size_t samples = 0;
        EXPECT_FALSE(dec.decode(std::span(packet).first(written), pcm, samples));
        EXPECT_EQ(samples, frame);
        r.decoded.insert(r.decoded.end(), pcm.begin(), pcm.begin() + static_cast<long>(samples));
        ++r.packets;
        r.bytes += written;
    }
    return r;
}

// The delay within `lookahead` +- `radius` samples that maximises the SNR. If the codec's real
// delay were outside, the maximum would sit at an edge and the caller's check would fail.
std::size_t best_delay(const std::vector<std::int16_t>& source,
                       const std::vector<std::int16_t>& decoded, int lookahead, int radius,
                       std::size_t skip) {
    std::size_t best = 0;
    double best_snr = -1e9;
    for (int d = std::max(0, lookahead - radius); d <= lookahead + radius; ++d) {
        const double s = snr_db(source, decoded, static_cast<std::size_t>(d), skip);
        if (s > best_snr) {
            best_snr = s;
            best = static_cast<std::size_t>(d);
        }
    }
    return best;
}

struct rate_case {
    int rate_hz;
    int bitrate_bps;
    double min_sine_snr_db; // chosen from measurement with margin (see report in test output)
    double min_speech_snr_db;
};

// Waveform SNR after aligning by OPUS_GET_LOOKAHEAD, libopus 1.3.1, VOIP, complexity 5, as
// measured (the test prints them): sine 13.1 / 13.4 / 9.0 dB and espeak-ng speech 11.1 / 11.8 /
// 7.0 dB at 8 / 16 / 48 kHz. Opus is perceptual, so waveform SNR is modest; the thresholds sit
// 3-4 dB below the measurements and far above what a wrong alignment gives (about -3 dB).
const rate_case rate_cases[] = {
    {8000, 16000, 9.0, 7.0},
    {16000, 24000, 9.0, 7.0},
    {48000, 48000, 6.0, 4.0},
};

TEST(opus, sine_round_trip_at_8_16_48_khz) {
    for (const rate_case& c : rate_cases) {
        const auto source = sine(c.rate_hz, 440.0, 1.0, 10000.0);
        const round_trip_result r = round_trip(source, c.rate_hz, c.bitrate_bps, 5);
        EXPECT_EQ(r.packets, 50u);
        EXPECT_EQ(r.decoded.size(), source.size());
        const std::size_t skip = static_cast<std::size_t>(c.rate_hz / 10);
        const auto delay = static_cast<std::size_t>(r.lookahead);
        const double snr = snr_db(source, r.decoded, delay, skip);
        std::printf("[ opus ] sine   %5d Hz %5d bps: lookahead %d samples, SNR %.1f dB, "
                    "%.0f bytes/packet\n",
                    c.rate_hz, c.bitrate_bps, r.lookahead, snr,
                    static_cast<double>(r.bytes) / static_cast<double>(r.packets));
        EXPECT_GT(snr, c.min_sine_snr_db) << c.rate_hz;
    }
}

TEST(opus, speech_round_trip_at_8_16_48_khz) {
    if (!test::have_tool("espeak-ng") || !test::have_tool("sox")) {
        FAIL() << "espeak-ng/sox missing: apt-get install espeak-ng sox";
    }
    test::temp_dir dir;
    const std::string wav = dir.file("speech.wav");
    ASSERT_EQ(test::run("espeak-ng -w " + test::quote(wav) +
                        " 'Your call is important to us. Please hold the line.' 2>/dev/null"),
              0);
    for (const rate_case& c : rate_cases) {
        const std::string raw = dir.file("speech.raw");
        ASSERT_EQ(test::run("sox -D " + test::quote(wav) + " -r " + std::to_string(c.rate_hz) +
                            " -b 16 -c 1 -t s16 " + test::quote(raw) + " 2>/dev/null"),
                  0);
        auto source = test::read_s16(raw);
        source.resize(source.size() / static_cast<std::size_t>(c.rate_hz / 50) *
                      static_cast<std::size_t>(c.rate_hz / 50));
        ASSERT_GT(source.size(), static_cast<std::size_t>(c.rate_hz));
        const round_trip_result r = round_trip(source, c.rate_hz, c.bitrate_bps, 5);
        EXPECT_EQ(r.decoded.size(), source.size());
        const std::size_t skip = static_cast<std::size_t>(c.rate_hz / 10);
        const double snr = snr_db(source, r.decoded, static_cast<std::size_t>(r.lookahead), skip);
        const double misaligned = snr_db(
            source, r.decoded, static_cast<std::size_t>(r.lookahead + c.rate_hz / 400), skip);
        // Speech is not periodic, so the best delay is unambiguous: it must be the lookahead.
        const std::size_t best = best_delay(source, r.decoded, r.lookahead, c.rate_hz / 1000, skip);
        std::printf("[ opus ] speech %5d Hz %5d bps: lookahead %d, best delay %zu, SNR %.1f dB "
                    "aligned, %.1f dB when 2.5 ms off, %.0f bytes/packet\n",
                    c.rate_hz, c.bitrate_bps, r.lookahead, best, snr, misaligned,
                    static_cast<double>(r.bytes) / static_cast<double>(r.packets));
        EXPECT_GT(snr, c.min_speech_snr_db) << c.rate_hz;
        EXPECT_LT(misaligned, snr - 3.0) << "alignment must matter";
        // Within 1/8 ms (libopus' internal resampler moves the peak by a few samples at 48 kHz).
        EXPECT_NEAR(static_cast<double>(best), r.lookahead, std::max(2, c.rate_hz / 8000))
            << c.rate_hz;
    }
}

TEST(opus, packet_loss_concealment_fills_a_frame) {
    const int rate_hz = 16000;
    const auto source = sine(rate_hz, 300.0, 0.5, 8000.0);
    codec::opus_encoder enc;
    codec::opus_decoder dec;
    ASSERT_FALSE(enc.open({rate_hz, 1, 24000, 5}));
    ASSERT_FALSE(dec.open(rate_hz, 1));
    std::vector<std::uint8_t> packet(codec::opus_max_packet_bytes);
    std::vector<std::int16_t> pcm(320);
    std::size_t samples = 0;
    for (std::size_t at = 0; at + 320 <= source.size(); at += 320) {
        std::size_t written = 0;
        ASSERT_FALSE(enc.encode(std::span(source).subspan(at, 320), packet, written));
        ASSERT_FALSE(dec.decode(std::span(packet).first(written), pcm, samples));
    }
    // Lose the next packet: concealment continues the tone rather than going silent.
    ASSERT_FALSE(dec.decode({}, pcm, samples));
    EXPECT_EQ(samples, 320u);
    double energy = 0.0;
    for (const std::int16_t s : pcm) {
        energy += static_cast<double>(s) * s;
    }
    const double rms = std::sqrt(energy / 320.0);
    std::printf("[ opus ] PLC frame RMS %.0f (source RMS %.0f)\n", rms, 8000.0 / std::sqrt(2.0));
    EXPECT_GT(rms, 1000.0);
    // A buffer too small for the concealed frame is refused, not overrun.
    std::vector<std::int16_t> small(100);
    EXPECT_EQ(dec.decode({}, small, samples), opus_errc::buffer_too_small);
}

TEST(opus, stereo_round_trip_keeps_channels_apart) {
    const int rate_hz = 48000;
    const auto left = sine(rate_hz, 440.0, 0.4, 9000.0);
    std::vector<std::int16_t> interleaved(left.size() * 2, 0); // right channel silent
    for (std::size_t i = 0; i < left.size(); ++i) {
        interleaved[2 * i] = left[i];
    }
    codec::opus_encoder enc;
    codec::opus_decoder dec;
    ASSERT_FALSE(enc.open({rate_hz, 2, 64000, 5}));
    ASSERT_FALSE(dec.open(rate_hz, 2));
    std::vector<std::uint8_t> packet(codec::opus_max_packet_bytes);
    std::vector<std::int16_t> pcm(960 * 2);
    double left_energy = 0.0;
    double right_energy = 0.0;
    for (std::size_t at = 0; at + 1920 <= interleaved.size(); at += 1920) {
        std::size_t written = 0;
        std::size_t samples = 0;
        ASSERT_FALSE(enc.encode(std::span(interleaved).subspan(at, 1920), packet, written));
        ASSERT_FALSE(dec.decode(std::span(packet).first(written), pcm, samples));
        ASSERT_EQ(samples, 960u);
        for (std::size_t i = 0; i < 960; ++i) {
            left_energy += static_cast<double>(pcm[2 * i]) * pcm[2 * i];
            right_energy += static_cast<double>(pcm[2 * i + 1]) * pcm[2 * i + 1];
        }
    }
    EXPECT_GT(left_energy, 100.0 * right_energy);
}

TEST(opus, bad_arguments_are_reported) {
    codec::opus_encoder enc;
    std::vector<std::uint8_t> packet(codec::opus_max_packet_bytes);
    std::vector<std::int16_t> pcm(320);
    std::size_t written = 0;
    EXPECT_EQ(enc.encode(pcm, packet, written), opus_errc::not_open);
    EXPECT_EQ(enc.open({44100, 1, 24000, 5}), opus_errc::bad_arg);
    EXPECT_EQ(enc.open({16000, 3, 24000, 5}), opus_errc::bad_arg);
    EXPECT_EQ(enc.open({16000, 1, 24000, 11}), opus_errc::bad_arg); // libopus refuses it
    EXPECT_FALSE(enc.is_open());
    ASSERT_FALSE(enc.open({16000, 1, 24000, 5}));
    EXPECT_EQ(enc.encode(std::span(pcm).first(319), packet, written), opus_errc::bad_arg);
    EXPECT_EQ(enc.encode(pcm, {}, written), opus_errc::bad_arg);

    codec::opus_decoder dec;
    std::size_t samples = 0;
    EXPECT_EQ(dec.decode({}, pcm, samples), opus_errc::not_open);
    EXPECT_EQ(dec.open(22050, 1), opus_errc::bad_arg);
    ASSERT_FALSE(dec.open(16000, 1));
    // A packet with an invalid TOC/frame-count layout is rejected by libopus.
    const std::uint8_t garbage[] = {0xFF, 0xFF, 0xFF};
    EXPECT_EQ(dec.decode(garbage, pcm, samples), opus_errc::invalid_packet);

    const std::error_code ec = opus_errc::invalid_packet;
    EXPECT_STREQ(ec.category().name(), "opus");
    EXPECT_EQ(ec.message(), "corrupted stream");
    EXPECT_EQ(codec::opus_error(-2), opus_errc::buffer_too_small);
    EXPECT_FALSE(codec::opus_error(17));
}

} // namespace
