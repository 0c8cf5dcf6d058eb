#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "tests/codec/sox_helpers.hpp"

namespace {

namespace codec = callstream::codec;
namespace test = callstream::test;

constexpr int sample_min = -32768;
constexpr int sample_max = 32767;

std::vector<std::int16_t> every_sample() {
    std::vector<std::int16_t> all;
    all.reserve(65536);
    for (int s = sample_min; s <= sample_max; ++s) {
        all.push_back(static_cast<std::int16_t>(s));
    }
    return all;
}

TEST(g711, ulaw_tables_equal_g191_reference_for_every_sample_and_code) {
    for (int s = sample_min; s <= sample_max; ++s) {
        const auto x = static_cast<std::int16_t>(s);
        ASSERT_EQ(codec::linear_to_ulaw(x), codec::ulaw_compress_reference(x)) << s;
    }
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        ASSERT_EQ(codec::ulaw_to_linear(code), codec::ulaw_expand_reference(code)) << c;
    }
}

TEST(g711, alaw_tables_equal_g191_reference_for_every_sample_and_code) {
    for (int s = sample_min; s <= sample_max; ++s) {
        const auto x = static_cast<std::int16_t>(s);
        ASSERT_EQ(codec::linear_to_alaw(x), codec::alaw_compress_reference(x)) << s;
    }
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        ASSERT_EQ(codec::alaw_to_linear(code), codec::alaw_expand_reference(code)) << c;
    }
}

TEST(g711, known_values_from_g711_tables) {
    // Extremes and zeros from G.711 Tables 1a/2a, in 16-bit left-justified form as G.191 gives.
    EXPECT_EQ(codec::ulaw_to_linear(0x80), 32124);
    EXPECT_EQ(codec::ulaw_to_linear(0x00), -32124);
    EXPECT_EQ(codec::ulaw_to_linear(0xFF), 0);
    EXPECT_EQ(codec::ulaw_to_linear(0x7F), 0);
    EXPECT_EQ(codec::ulaw_to_linear(0xFE), 8);
    EXPECT_EQ(codec::alaw_to_linear(0xAA), 32256);
    EXPECT_EQ(codec::alaw_to_linear(0x2A), -32256);
    EXPECT_EQ(codec::alaw_to_linear(0xD5), 8);
    EXPECT_EQ(codec::alaw_to_linear(0x55), -8);
    EXPECT_EQ(codec::linear_to_ulaw(0), 0xFF);
    EXPECT_EQ(codec::linear_to_ulaw(32767), 0x80);
    EXPECT_EQ(codec::linear_to_ulaw(-32768), 0x00);
    EXPECT_EQ(codec::linear_to_alaw(0), 0xD5);
    EXPECT_EQ(codec::linear_to_alaw(32767), 0xAA);
    EXPECT_EQ(codec::linear_to_alaw(-32768), 0x2A);
}

TEST(g711, encoders_are_monotonic) {
    // Decoding the encoded sample must never go down as the input goes up.
    int prev_u = codec::ulaw_to_linear(codec::linear_to_ulaw(sample_min));
    int prev_a = codec::alaw_to_linear(codec::linear_to_alaw(sample_min));
    for (int s = sample_min + 1; s <= sample_max; ++s) {
        const auto x = static_cast<std::int16_t>(s);
        const int u = codec::ulaw_to_linear(codec::linear_to_ulaw(x));
        const int a = codec::alaw_to_linear(codec::linear_to_alaw(x));
        ASSERT_GE(u, prev_u) << s;
        ASSERT_GE(a, prev_a) << s;
        prev_u = u;
        prev_a = a;
    }
}

TEST(g711, ulaw_code_round_trip_is_identity_except_negative_zero) {
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        const std::uint8_t back = codec::linear_to_ulaw(codec::ulaw_to_linear(code));
        if (code == 0x7F) {
            EXPECT_EQ(back, 0xFF);
        } else {
            EXPECT_EQ(back, code) << c;
        }
    }
}

TEST(g711, alaw_code_round_trip_is_identity) {
    for (int c = 0; c < 256; ++c) {
        const auto code = static_cast<std::uint8_t>(c);
        EXPECT_EQ(codec::linear_to_alaw(codec::alaw_to_linear(code)), code) << c;
    }
}

TEST(g711, span_forms_match_scalar_forms) {
    const std::vector<std::int16_t> all = every_sample();
    std::vector<std::uint8_t> u(all.size()), a(all.size());
    codec::ulaw_encode(all, u);
    codec::alaw_encode(all, a);
    std::vector<std::int16_t> ud(all.size()), ad(all.size());
    codec::ulaw_decode(u, ud);
    codec::alaw_decode(a, ad);
    for (std::size_t i = 0; i < all.size(); ++i) {
        ASSERT_EQ(u[i], codec::linear_to_ulaw(all[i]));
        ASSERT_EQ(a[i], codec::linear_to_alaw(all[i]));
        ASSERT_EQ(ud[i], codec::ulaw_to_linear(u[i]));
        ASSERT_EQ(ad[i], codec::alaw_to_linear(a[i]));
    }
    // ulaw_encode works sixteen samples at a time: lengths that leave a remainder, at unaligned
    // places, and an output shorter than the input (only that much is written).
    for (const std::size_t length : {0u, 1u, 15u, 17u, 37u, 160u, 161u}) {
        const std::span<const std::int16_t> in(all.data() + 3 + 7 * length, length + 1);
        std::vector<std::uint8_t> out(length + 1, 0x5A);
        codec::ulaw_encode(in, std::span<std::uint8_t>(out).first(length));
        for (std::size_t i = 0; i < length; ++i) {
            ASSERT_EQ(out[i], codec::linear_to_ulaw(in[i])) << length << " " << i;
        }
        ASSERT_EQ(out[length], 0x5A) << length;
    }
    // ulaw_decode likewise, over every code.
    std::vector<std::uint8_t> codes(256 + 37);
    for (std::size_t c = 0; c < codes.size(); ++c) {
        codes[c] = static_cast<std::uint8_t>(c * 7);
    }
    for (const std::size_t length : {0u, 1u, 15u, 17u, 160u, 256u, 256u + 36u}) {
        const std::span<const std::uint8_t> in(codes.data() + 1, length);
        std::vector<std::int16_t> out(length + 1, 0x5A5A);
        codec::ulaw_decode(in, std::span<std::int16_t>(out).first(length));
        for (std::size_t i = 0; i < length; ++i) {
            ASSERT_EQ(out[i], codec::ulaw_expand_reference(in[i])) << length << " " << i;
        }
        ASSERT_EQ(out[length], 0x5A5A) << length;
    }
}

// ---------------------------------------------------------------------------------------------
// Bit-exactness against sox.
//
// sox 14.4.2 decodes exactly as G.191 does (same 256 values). Its encoder is not G.191, for two
// precisely known reasons (measured over all 65,536 inputs, 0 samples unexplained):
//
// 1. Rounding instead of truncation. sox holds samples as 32-bit and writes μ-law as
//    sox_14linear2ulaw(SOX_SAMPLE_TO_UNSIGNED(14, x) - 0x2000) and A-law with 13 bits
//    (raw.c). SOX_SAMPLE_TO_SIGNED adds half an LSB before shifting, i.e. it rounds the 16-bit
//    sample to 14 (13) bits half-up and saturates at the top, where G.191 drops the low 2 (3)
//    bits. Samples near a decision level land one step apart: for A-law this is the only
//    difference, and with input whose low 3 bits are zero sox's A-law equals G.191 exactly.
// 2. Sun's μ-law (g711.c, the CCITT code that sox carries) takes the magnitude of a negative
//    14-bit value by two's complement (-x) where G.191 uses one's complement (~x). Sun's
//    magnitude is one larger, so at every negative decision level 4 of the 16-bit samples map
//    to the neighbouring code: 127 levels x 4 = 508 samples differ even on pre-truncated input
//    (e.g. -4..-1: G.191 gives 0x7F, "negative zero", sox gives 0x7E and 0xFF).
//
// `sox_ulaw_model`/`sox_alaw_model` below restate that behaviour; the tests assert that sox
// equals the model byte for byte, that our encoder equals G.191, and print the G.191 vs sox
// mismatch counts per input kind. sox must run with -D: by default it adds TPDF dither when
// writing a lower-precision format, which makes its output random.

// Rounds a 16-bit sample to `bits` bits as SOX_SAMPLE_TO_SIGNED does with a 32-bit sox sample.
int sox_round(std::int16_t sample, int bits) {
    const std::int64_t d = static_cast<std::int64_t>(sample) * 65536;
    const std::int64_t half = std::int64_t{1} << (31 - bits);
    if (d > 0x7FFFFFFF - half) {
        return (1 << (bits - 1)) - 1;
    }
    return static_cast<int>((d + half) >> (32 - bits));
}

int segment_of(int value, const int (&ends)[8]) {
    int seg = 0;
    while (seg < 8 && value > ends[seg]) {
        ++seg;
    }
    return seg;
}

std::uint8_t sox_ulaw_model(std::int16_t sample) {
    static const int ends[8] = {0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF};
    int pcm = sox_round(sample, 14);
    int mask = 0xFF;
    if (pcm < 0) {
        pcm = -pcm; // two's complement magnitude (G.191: one's complement)
        mask = 0x7F;
    }
    pcm = std::min(pcm, 8159) + 33;
    const int seg = segment_of(pcm, ends);
    if (seg >= 8) {
        return static_cast<std::uint8_t>(0x7F ^ mask);
    }
    return static_cast<std::uint8_t>(((seg << 4) | ((pcm >> (seg + 1)) & 0xF)) ^ mask);
}

std::uint8_t sox_alaw_model(std::int16_t sample) {
    static const int ends[8] = {0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF};
    int pcm = sox_round(sample, 13);
    int mask = 0xD5;
    if (pcm < 0) {
        pcm = -pcm - 1;
        mask = 0x55;
    }
    const int seg = segment_of(pcm, ends);
    if (seg >= 8) {
        return static_cast<std::uint8_t>(0x7F ^ mask);
    }
    const int mantissa = (seg < 2 ? pcm >> 1 : pcm >> seg) & 0xF;
    return static_cast<std::uint8_t>(((seg << 4) | mantissa) ^ mask);
}

class g711_sox : public ::testing::Test {
  protected:
    void SetUp() override {
        if (!test::have_tool("sox")) {
            FAIL() << "sox is not installed: apt-get install sox";
        }
    }

    // Encodes `samples` with sox to `type` ("ul" or "al") and returns the bytes.
    std::vector<std::uint8_t> sox_encode(const std::vector<std::int16_t>& samples,
                                         const std::string& type) {
        const std::string in = dir_.file("enc_in.raw");
        const std::string out = dir_.file("enc_out." + type);
        test::write_s16(in, samples);
        const int rc = test::run("sox -D -t s16 -r 8000 -c 1 " + test::quote(in) + " -t " + type +
                                 " " + test::quote(out) + " 2>/dev/null");
        EXPECT_EQ(rc, 0);
        return test::read_bytes(out);
    }

    // Makes an 8 kHz mono s16 input with a sox/espeak-ng command that writes `file`.
    std::vector<std::int16_t> make_input(const std::string& command, const std::string& file) {
        EXPECT_EQ(test::run(command), 0) << command;
        return test::read_s16(file);
    }

    struct counts {
        std::size_t samples = 0;
        std::size_t ours_vs_sox = 0;
        std::size_t sox_vs_model = 0;
        int max_level_distance = 0; // between our code and sox's, in quantization levels
    };

    // Position of a code's decoded value among the codec's distinct output levels.
    static int level_of(std::uint8_t code, bool ulaw) {
        const int value = ulaw ? codec::ulaw_to_linear(code) : codec::alaw_to_linear(code);
        int below = 0;
        for (int c = 0; c < 256; ++c) {
            const auto other = static_cast<std::uint8_t>(c);
            const int v = ulaw ? codec::ulaw_to_linear(other) : codec::alaw_to_linear(other);
            // μ-law has two zeros (0x7F and 0xFF); count each level once.
            below += (v < value && !(ulaw && other == 0x7F)) ? 1 : 0;
        }
        return below;
    }

    counts compare(const std::vector<std::int16_t>& samples, const std::string& type) {
        const std::vector<std::uint8_t> sox = sox_encode(samples, type);
        counts c;
        c.samples = samples.size();
        EXPECT_EQ(sox.size(), samples.size());
        const std::size_t n = std::min(sox.size(), samples.size());
        for (std::size_t i = 0; i < n; ++i) {
            const bool ulaw = type == "ul";
            const std::uint8_t ours =
                ulaw ? codec::linear_to_ulaw(samples[i]) : codec::linear_to_alaw(samples[i]);
            const std::uint8_t model =
                ulaw ? sox_ulaw_model(samples[i]) : sox_alaw_model(samples[i]);
            c.ours_vs_sox += ours != sox[i] ? 1u : 0u;
            if (ours != sox[i]) {
                c.max_level_distance = std::max(
                    c.max_level_distance, std::abs(level_of(ours, ulaw) - level_of(sox[i], ulaw)));
            }
            c.sox_vs_model += model != sox[i] ? 1u : 0u;
        }
        return c;
    }

    void check_kind(const std::string& kind, const std::vector<std::int16_t>& samples) {
        ASSERT_GT(samples.size(), 1000u) << kind;
        // The same audio with the bits below the codec's precision cleared, so that sox's
        // rounding and G.191's truncation agree and only the algorithms themselves differ.
        std::vector<std::int16_t> trunc_u(samples), trunc_a(samples);
        for (auto& s : trunc_u) {
            s = static_cast<std::int16_t>(s & ~3);
        }
        for (auto& s : trunc_a) {
            s = static_cast<std::int16_t>(s & ~7);
        }
        const counts u = compare(samples, "ul");
        const counts a = compare(samples, "al");
        const counts ut = compare(trunc_u, "ul");
        const counts at = compare(trunc_a, "al");
        std::printf("[ g711/sox ] %-12s %7zu samples | ulaw enc mismatches %5zu (pre-truncated "
                    "%4zu) | alaw enc mismatches %5zu (pre-truncated %zu) | sox vs model %zu\n",
                    kind.c_str(), u.samples, u.ours_vs_sox, ut.ours_vs_sox, a.ours_vs_sox,
                    at.ours_vs_sox,
                    u.sox_vs_model + a.sox_vs_model + ut.sox_vs_model + at.sox_vs_model);
        // sox is exactly the documented model: nothing unexplained.
        EXPECT_EQ(u.sox_vs_model, 0u) << kind;
        EXPECT_EQ(a.sox_vs_model, 0u) << kind;
        EXPECT_EQ(ut.sox_vs_model, 0u) << kind;
        EXPECT_EQ(at.sox_vs_model, 0u) << kind;
        // A-law differs only by rounding: on pre-truncated input it is bit-exact with sox.
        EXPECT_EQ(at.ours_vs_sox, 0u) << kind;
        // Where they differ, the two codes are neighbouring levels: a decision-boundary case,
        // never a gross error. (Quiet audio has more of them: its levels are closer together.)
        EXPECT_LE(u.max_level_distance, 1) << kind;
        EXPECT_LE(a.max_level_distance, 1) << kind;
        EXPECT_LE(ut.max_level_distance, 1) << kind;
    }

    test::temp_dir dir_;
};

TEST_F(g711_sox, encoder_matches_sox_on_every_16_bit_sample) {
    const std::vector<std::int16_t> all = every_sample();
    check_kind("all-65536", all);
    // The exact counts follow from the two documented differences.
    const counts u = compare(all, "ul");
    std::size_t predicted = 0;
    for (const std::int16_t s : all) {
        predicted += sox_ulaw_model(s) != codec::ulaw_compress_reference(s) ? 1u : 0u;
    }
    EXPECT_EQ(u.ours_vs_sox, predicted);
    std::vector<std::int16_t> truncated(all);
    for (auto& s : truncated) {
        s = static_cast<std::int16_t>(s & ~3);
    }
    // 127 negative decision levels x the 4 samples that share each 14-bit value.
    EXPECT_EQ(compare(truncated, "ul").ours_vs_sox, 508u);
}

TEST_F(g711_sox, encoder_matches_sox_on_speech) {
    if (!test::have_tool("espeak-ng")) {
        FAIL() << "espeak-ng is not installed: apt-get install espeak-ng";
    }
    const std::string wav = dir_.file("speech.wav");
    const std::string raw = dir_.file("speech.raw");
    ASSERT_EQ(test::run("espeak-ng -w " + test::quote(wav) +
                        " 'Thank you for calling. Please say or enter your account number, "
                        "then press the pound key.' 2>/dev/null"),
              0);
    // Louder copies too, so the speech reaches the top segments.
    for (const std::string gain : {"0", "12"}) {
        const auto speech =
            make_input("sox -D " + test::quote(wav) + " -r 8000 -b 16 -c 1 -t s16 " +
                           test::quote(raw) + " gain " + gain + " 2>/dev/null",
                       raw);
        check_kind("speech+" + gain + "dB", speech);
    }
}

TEST_F(g711_sox, encoder_matches_sox_on_sweeps_and_noise) {
    const std::string raw = dir_.file("synth.raw");
    for (const std::string gain : {"0", "-6", "-20", "-40"}) {
        const auto sweep = make_input("sox -R -D -n -r 8000 -b 16 -c 1 -t s16 " + test::quote(raw) +
                                          " synth 3 sine 20-3900 gain " + gain + " 2>/dev/null",
                                      raw);
        check_kind("sweep" + gain + "dB", sweep);
    }
    const auto noise = make_input(
        "sox -R -D -n -r 8000 -b 16 -c 1 -t s16 " + test::quote(raw) + " synth 3 whitenoise", raw);
    check_kind("noise-full", noise);
}

TEST_F(g711_sox, decoder_matches_sox_for_all_256_codes) {
    std::vector<std::uint8_t> codes(256);
    for (std::size_t i = 0; i < codes.size(); ++i) {
        codes[i] = static_cast<std::uint8_t>(i);
    }
    for (const std::string type : {"ul", "al"}) {
        const std::string in = dir_.file("all." + type);
        const std::string out = dir_.file("all_" + type + ".raw");
        test::write_bytes(in, codes);
        ASSERT_EQ(test::run("sox -D -t " + type + " -r 8000 -c 1 " + test::quote(in) + " -t s16 " +
                            test::quote(out)),
                  0);
        const std::vector<std::int16_t> sox = test::read_s16(out);
        ASSERT_EQ(sox.size(), 256u);
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < 256; ++i) {
            const std::int16_t ours =
                type == "ul" ? codec::ulaw_to_linear(codes[i]) : codec::alaw_to_linear(codes[i]);
            EXPECT_EQ(ours, sox[i]) << type << " code " << i;
            mismatches += ours != sox[i] ? 1u : 0u;
        }
        std::printf("[ g711/sox ] %s decode: %zu of 256 codes differ from sox\n",
                    type == "ul" ? "ulaw" : "alaw", mismatches);
    }
}

} // namespace
