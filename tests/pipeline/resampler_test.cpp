#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/resampler.hpp"

namespace callstream::pipeline {
namespace {

constexpr double pi = std::numbers::pi;

std::vector<std::int16_t> sine(double freq_hz, std::uint32_t rate_hz, std::size_t n,
                               double amplitude = 16000.0) {
    std::vector<std::int16_t> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        x[i] = static_cast<std::int16_t>(std::lround(
            amplitude * std::sin(2.0 * pi * freq_hz * static_cast<double>(i) / rate_hz)));
    }
    return x;
}

// Linear chirp from f0 to f1 over n samples.
std::vector<std::int16_t> sweep(double f0_hz, double f1_hz, std::uint32_t rate_hz, std::size_t n,
                                double amplitude = 16000.0) {
    std::vector<std::int16_t> x(n);
    const double duration_s = static_cast<double>(n) / rate_hz;
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate_hz;
        const double phase = 2.0 * pi * (f0_hz * t + 0.5 * (f1_hz - f0_hz) * t * t / duration_s);
        x[i] = static_cast<std::int16_t>(std::lround(amplitude * std::sin(phase)));
    }
    return x;
}

// Feeds `in` through `r` in 20 ms frames, as the pipeline does.
std::vector<std::int16_t> run_frames(resampler& r, std::span<const std::int16_t> in) {
    const std::size_t in_frame = r.input_rate_hz() / 50;
    const std::size_t out_frame = r.output_rate_hz() / 50;
    std::vector<std::int16_t> out;
    std::vector<std::int16_t> frame(out_frame);
    for (std::size_t i = 0; i + in_frame <= in.size(); i += in_frame) {
        const std::size_t n = r.process(in.subspan(i, in_frame), frame);
        EXPECT_EQ(n, out_frame) << "every 20 ms in gives exactly 20 ms out";
        out.insert(out.end(), frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(n));
    }
    return out;
}

struct sine_fit {
    double amplitude = 0.0;
    double sinad_db = 0.0; // fitted tone power over everything else (noise, distortion, clicks)
    double a = 0, b = 0, dc = 0; // y ~ a*sin + b*cos + dc
    double model(std::size_t i, double freq_hz, std::uint32_t rate_hz) const {
        const double w = 2.0 * pi * freq_hz * static_cast<double>(i) / rate_hz;
        return a * std::sin(w) + b * std::cos(w) + dc;
    }
};

// Least-squares fit of a*sin + b*cos + c at a known frequency over y[skip..].
sine_fit fit_sine(std::span<const std::int16_t> y, double freq_hz, std::uint32_t rate_hz,
                  std::size_t skip) {
    double ss = 0, sc = 0, cc = 0, s1 = 0, c1 = 0, n1 = 0, ys = 0, yc = 0, y1 = 0;
    for (std::size_t i = skip; i < y.size(); ++i) {
        const double w = 2.0 * pi * freq_hz * static_cast<double>(i) / rate_hz;
        const double s = std::sin(w);
        const double c = std::cos(w);
        ss += s * s, sc += s * c, cc += c * c, s1 += s, c1 += c, n1 += 1;
        ys += y[i] * s, yc += y[i] * c, y1 += y[i];
    }
    // Solve the 3x3 normal equations by Cramer's rule.
    const double m[3][3] = {{ss, sc, s1}, {sc, cc, c1}, {s1, c1, n1}};
    const double v[3] = {ys, yc, y1};
    const auto det3 = [](const double a[3][3]) {
        return a[0][0] * (a[1][1] * a[2][2] - a[1][2] * a[2][1]) -
               a[0][1] * (a[1][0] * a[2][2] - a[1][2] * a[2][0]) +
               a[0][2] * (a[1][0] * a[2][1] - a[1][1] * a[2][0]);
    };
    const double d = det3(m);
    double coef[3];
    for (int k = 0; k < 3; ++k) {
        double mk[3][3];
        for (int r = 0; r < 3; ++r) {
            for (int c = 0; c < 3; ++c) {
                mk[r][c] = c == k ? v[r] : m[r][c];
            }
        }
        coef[k] = det3(mk) / d;
    }
    double signal = 0, noise = 0;
    for (std::size_t i = skip; i < y.size(); ++i) {
        const double w = 2.0 * pi * freq_hz * static_cast<double>(i) / rate_hz;
        const double model = coef[0] * std::sin(w) + coef[1] * std::cos(w);
        signal += model * model;
        const double e = y[i] - model - coef[2];
        noise += e * e;
    }
    return {std::hypot(coef[0], coef[1]), 10.0 * std::log10(signal / std::max(noise, 1e-9)),
            coef[0], coef[1], coef[2]};
}

struct quality {
    double sinad_db = 0;    // 1 kHz tone, half scale
    double passband_db = 0; // max-min gain over 300..3400 Hz
    double delay_ms = 0;
    double stopband_db = 0; // down only: worst output level for tones above 4.6 kHz
};

double rms(std::span<const std::int16_t> y, std::size_t skip) {
    double sum = 0;
    for (std::size_t i = skip; i < y.size(); ++i) {
        sum += static_cast<double>(y[i]) * y[i];
    }
    return std::sqrt(sum / static_cast<double>(y.size() - skip));
}

quality measure(const resampler_spec& spec, std::uint32_t in_hz, std::uint32_t out_hz) {
    quality q;
    auto r = make_resampler(spec, in_hz, out_hz);
    q.delay_ms = r->delay_ms();
    const std::size_t n = in_hz / 2; // 500 ms
    const std::size_t skip = out_hz / 10;
    q.sinad_db = fit_sine(run_frames(*r, sine(1000.0, in_hz, n)), 1000.0, out_hz, skip).sinad_db;
    double lo = 1e9, hi = -1e9;
    for (const double f : {300.0, 500.0, 1000.0, 2000.0, 3000.0, 3400.0}) {
        r->reset();
        const double gain_db =
            20.0 *
            std::log10(fit_sine(run_frames(*r, sine(f, in_hz, n)), f, out_hz, skip).amplitude /
                       16000.0);
        lo = std::min(lo, gain_db);
        hi = std::max(hi, gain_db);
    }
    q.passband_db = hi - lo;
    q.stopband_db = -200;
    if (out_hz < in_hz) {
        // Tones that cannot exist at 8 kHz must be filtered out, not folded back as aliases.
        for (const double f : {4600.0, 5000.0, 6000.0, 7000.0}) {
            r->reset();
            const double level = rms(run_frames(*r, sine(f, in_hz, n)), skip) * std::sqrt(2.0);
            q.stopband_db =
                std::max(q.stopband_db, 20.0 * std::log10(std::max(level, 1e-3) / 16000.0));
        }
    }
    return q;
}

TEST(resampler_spec, parses_every_documented_spec_and_round_trips_the_text) {
    for (const std::string& text : all_resampler_specs()) {
        const resampler_spec_result r = parse_resampler_spec(text);
        ASSERT_TRUE(r.error.empty()) << text << ": " << r.error;
        EXPECT_EQ(r.spec.to_string(), text);
    }
    EXPECT_EQ(all_resampler_specs().size(), 16U);
    EXPECT_EQ(parse_resampler_spec(default_resampler_spec).spec.to_string(),
              default_resampler_spec);
}

TEST(resampler_spec, refuses_bad_specs_with_a_reason) {
    for (const char* bad : {"", "speex", "speex:", "speex:11", "speex:-1", "speex:3x",
                            "libsamplerate:sinc", "libsamplerate:", "sox:hq", ":3"}) {
        const resampler_spec_result r = parse_resampler_spec(bad);
        EXPECT_FALSE(r.error.empty()) << bad;
        EXPECT_NE(r.error.find("expected speex:0..10"), std::string::npos) << r.error;
    }
}

TEST(resampler, refuses_rates_outside_its_range) {
    EXPECT_THROW(make_resampler({}, 8000, 0), std::invalid_argument);
    EXPECT_THROW(make_resampler({}, 999, 8000), std::invalid_argument);
    EXPECT_THROW(make_resampler({}, 8000, 384001), std::invalid_argument);
    EXPECT_FALSE(is_supported_rate(44100)) << "processors still run at 8/16/24/48 kHz only";
}

// The prompt loader's path: a whole clip at a file rate (44.1 kHz) to 8 kHz comes out at the
// exact length and lined up with the input: a 1 kHz tone matches the ideal 8 kHz tone sample
// by sample (SNR against it, no shift), so the converter's delay was trimmed.
TEST(resampler, a_clip_at_any_file_rate_is_converted_whole_and_aligned) {
    for (const std::uint32_t in_hz : {44100U, 22050U, 11025U, 16000U, 48000U}) {
        const std::size_t n = in_hz; // 1 s
        std::vector<std::int16_t> in(n);
        std::vector<double> ideal(8000);
        for (std::size_t i = 0; i < n; ++i) {
            in[i] = static_cast<std::int16_t>(
                std::lround(10000.0 * std::sin(2.0 * std::numbers::pi * 1000.0 *
                                               static_cast<double>(i) / in_hz)));
        }
        for (std::size_t i = 0; i < ideal.size(); ++i) {
            ideal[i] = 10000.0 *
                       std::sin(2.0 * std::numbers::pi * 1000.0 * static_cast<double>(i) / 8000.0);
        }
        const auto out =
            resample_clip(parse_resampler_spec("libsamplerate:sinc-medium").spec, in_hz, 8000, in);
        ASSERT_EQ(out.size(), 8000U) << in_hz;
        double signal = 0.0;
        double noise = 0.0;
        for (std::size_t i = 400; i < 7600; ++i) { // away from the clip's edges
            signal += ideal[i] * ideal[i];
            noise += (out[i] - ideal[i]) * (out[i] - ideal[i]);
        }
        const double snr_db = 10.0 * std::log10(signal / std::max(noise, 1e-9));
        std::printf("[ resampler ] clip %u Hz -> 8 kHz: SNR %.1f dB against the aligned ideal\n",
                    in_hz, snr_db);
        EXPECT_GT(snr_db, 85.0) << in_hz; // measured 91-103 dB
    }
}

TEST(resampler, equal_rates_are_an_exact_copy_with_no_delay) {
    auto r = make_resampler({}, 16000, 16000);
    const auto x = sweep(100, 7000, 16000, 16000);
    EXPECT_EQ(run_frames(*r, x), x);
    EXPECT_EQ(r->delay_samples(), 0.0);
}

// Floors per spec family for 8 kHz <-> {16,24,48} kHz: measured values (docs/pipeline.md, and
// printed by this test) minus a margin of several dB. μ-law itself carries about 38 dB, so
// everything from speex:3 and sinc-fastest up is transparent for telephony.
struct floor_row {
    const char* spec;
    double min_sinad_db;
    double max_passband_db;
    double max_stopband_db; // alias level when going down to 8 kHz
};

class resampler_quality : public ::testing::TestWithParam<floor_row> {};

TEST_P(resampler_quality, meets_its_sinad_and_passband_floor_in_both_directions) {
    const floor_row row = GetParam();
    const resampler_spec spec = parse_resampler_spec(row.spec).spec;
    for (const std::uint32_t other_hz : {16000U, 24000U, 48000U}) {
        for (const bool up : {true, false}) {
            const std::uint32_t in_hz = up ? 8000 : other_hz;
            const std::uint32_t out_hz = up ? other_hz : 8000;
            const quality q = measure(spec, in_hz, out_hz);
            std::printf("%-30s %5u -> %5u Hz  SINAD %6.1f dB  passband %5.2f dB  stopband %6.1f dB"
                        "  delay %6.3f ms\n",
                        row.spec, in_hz, out_hz, q.sinad_db, q.passband_db, q.stopband_db,
                        q.delay_ms);
            EXPECT_LE(q.stopband_db, row.max_stopband_db) << in_hz << "->" << out_hz;
            EXPECT_GE(q.sinad_db, row.min_sinad_db) << in_hz << "->" << out_hz;
            EXPECT_LE(q.passband_db, row.max_passband_db) << in_hz << "->" << out_hz;
            EXPECT_GE(q.delay_ms, 0.0);
            EXPECT_LT(q.delay_ms, 30.0);
        }
    }
}

INSTANTIATE_TEST_SUITE_P(
    all, resampler_quality,
    ::testing::Values(floor_row{"libsamplerate:sinc-best", 85, 0.1, -80},
                      floor_row{"libsamplerate:sinc-medium", 85, 0.1, -80},
                      // sinc-fastest's passband ends at 80% of 4 kHz: 3.4 kHz is ~9 dB down.
                      floor_row{"libsamplerate:sinc-fastest", 85, 10, -80},
                      // linear and zero-order-hold have no anti-alias filter at all.
                      floor_row{"libsamplerate:linear", 24, 6.5, 1},
                      floor_row{"libsamplerate:zero-order-hold", 10, 3.5, 1},
                      floor_row{"speex:0", 55, 8, -22}, floor_row{"speex:1", 72, 7, -60},
                      floor_row{"speex:2", 74, 3.2, -62}, floor_row{"speex:3", 85, 1.5, -75},
                      floor_row{"speex:4", 85, 0.1, -82}, floor_row{"speex:5", 85, 0.1, -100},
                      floor_row{"speex:6", 85, 0.1, -100}, floor_row{"speex:7", 85, 0.1, -100},
                      floor_row{"speex:8", 85, 0.1, -100}, floor_row{"speex:9", 85, 0.1, -100},
                      floor_row{"speex:10", 85, 0.1, -100}),
    [](const auto& info) {
        std::string name = info.param.spec;
        std::replace_if(
            name.begin(), name.end(), [](char c) { return !std::isalnum(c); }, '_');
        return name;
    });

// 1,000 consecutive 20 ms frames of a tone: a discontinuity at frame boundaries (a lost or
// repeated sample, a filter restarting) would make the error at the boundaries stand out from
// the error everywhere else, and would pull the SINAD over the 20 s down.
class resampler_frames : public ::testing::TestWithParam<std::string> {};

TEST_P(resampler_frames, no_clicks_at_frame_boundaries_over_1000_frames) {
    const resampler_spec spec = parse_resampler_spec(GetParam()).spec;
    const bool filtered = GetParam().find("linear") == std::string::npos &&
                          GetParam().find("zero-order") == std::string::npos;
    for (const bool up : {true, false}) {
        const std::uint32_t in_hz = up ? 8000 : 16000;
        const std::uint32_t out_hz = up ? 16000 : 8000;
        auto r = make_resampler(spec, in_hz, out_hz);
        constexpr double freq_hz = 440.0;
        constexpr double amplitude = 16000.0;
        const auto out = run_frames(*r, sine(freq_hz, in_hz, in_hz / 50 * 1000));
        ASSERT_EQ(out.size(), out_hz / 50 * 1000U);
        EXPECT_EQ(r->underrun_samples(), 0U);
        const std::size_t skip = out_hz / 10;
        const sine_fit fit = fit_sine(out, freq_hz, out_hz, skip);
        const std::size_t out_frame = out_hz / 50;
        double worst_boundary = 0.0;
        double worst_inside = 0.0;
        double max_step = 0.0;
        for (std::size_t i = skip; i < out.size(); ++i) {
            const double err = std::abs(out[i] - fit.model(i, freq_hz, out_hz));
            const bool boundary = i % out_frame <= 1 || i % out_frame == out_frame - 1;
            (boundary ? worst_boundary : worst_inside) =
                std::max(boundary ? worst_boundary : worst_inside, err);
            max_step = std::max(max_step, std::abs(static_cast<double>(out[i]) - out[i - 1]));
        }
        const double ideal_step = 2.0 * fit.amplitude * std::sin(pi * freq_hz / out_hz);
        std::printf("%-30s %5u -> %5u Hz  20 s SINAD %6.1f dB  max err boundary %.1f inside %.1f"
                    "  max step %.1f (ideal %.1f)\n",
                    GetParam().c_str(), in_hz, out_hz, fit.sinad_db, worst_boundary, worst_inside,
                    max_step, ideal_step);
        EXPECT_LE(worst_boundary, worst_inside * 1.5 + 4.0);
        if (filtered) {
            EXPECT_GE(fit.sinad_db, 50.0);
            EXPECT_LE(max_step, ideal_step + 2.0 * worst_inside + 4.0);
        }
        EXPECT_NEAR(fit.amplitude, amplitude, amplitude * 0.05);
    }
}

INSTANTIATE_TEST_SUITE_P(all, resampler_frames, ::testing::ValuesIn(all_resampler_specs()),
                         [](const auto& info) {
                             std::string name = info.param;
                             std::replace_if(
                                 name.begin(), name.end(), [](char c) { return !std::isalnum(c); },
                                 '_');
                             return name;
                         });

// 8 kHz -> 16 kHz -> 8 kHz (what a 16 kHz echo does) lines up with the input once shifted by
// the reported delays: the up-converter's at half its rate plus the down-converter's.
TEST(resampler, round_trip_through_16k_lines_up_after_the_reported_delay) {
    for (const char* text :
         {"speex:3", "speex:5", "libsamplerate:sinc-medium", "libsamplerate:sinc-best"}) {
        const resampler_spec spec = parse_resampler_spec(text).spec;
        auto up = make_resampler(spec, 8000, 16000);
        auto down = make_resampler(spec, 16000, 8000);
        const double delay = round_trip_delay_samples(*up, *down);
        const auto shift = static_cast<std::size_t>(std::lround(delay));
        const auto x = sweep(300.0, 3000.0, 8000, 8000 * 2);
        const auto wide = run_frames(*up, x);
        const auto y = run_frames(*down, wide);
        ASSERT_EQ(y.size(), x.size());
        double signal = 0, noise = 0;
        for (std::size_t i = 800; i + shift < y.size(); ++i) {
            const double e = static_cast<double>(y[i + shift]) - x[i];
            signal += static_cast<double>(x[i]) * x[i];
            noise += e * e;
        }
        const double snr_db = 10.0 * std::log10(signal / std::max(noise, 1e-9));
        std::printf("%-28s round trip 8k->16k->8k delay %.3f samples (%.3f ms)  SNR %.1f dB\n",
                    text, delay, delay / 8.0, snr_db);
        EXPECT_NEAR(delay, static_cast<double>(shift), 0.2) << "whole-sample round trip";
        EXPECT_GE(snr_db, 30.0) << text;
    }
}

// The recorder's writer thread can still be opening a recording (and so making a resampler)
// while exit() runs static destructors; the calibration cache it consults must outlive them.
// Under ASan a destroyed cache shows as heap-use-after-free in the child and a non-zero exit.
TEST(resampler_death, a_thread_making_resamplers_during_exit_finds_the_cache_alive) {
    GTEST_FLAG_SET(death_test_style, "threadsafe");
    EXPECT_EXIT(
        {
            (void)make_resampler(resampler_spec{}, 8000, 16000);
            std::thread maker([] {
                for (;;) {
                    (void)make_resampler(resampler_spec{}, 8000, 16000);
                    (void)make_resampler(resampler_spec{}, 16000, 8000);
                }
            });
            maker.detach();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
            std::exit(0);
        },
        ::testing::ExitedWithCode(0), "");
}

} // namespace
} // namespace callstream::pipeline
