// Per-frame cost of the built-in processors: record (ring push on the audio thread, and the
// writer thread's work incl. Ogg Opus encoding), the voice detectors, and play.
//
//   build/release/bench/callstream_micro --benchmark_filter='record|opus|vad|play'

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fcntl.h>
#include <filesystem>
#include <random>
#include <unistd.h>

#include <benchmark/benchmark.h>
#include <opus/opusenc.h>
#include <speex/speex_resampler.h>

#include "pipeline/ogg_opus_file.hpp"
#include "pipeline/processors/play.hpp"
#include "pipeline/processors/record.hpp"
#include "pipeline/voice_detector.hpp"

namespace {

using namespace callstream::pipeline;

// Speech-like test signal: a 150 Hz buzz with harmonics, syllable envelope, and some noise.
std::vector<std::int16_t> test_signal(std::size_t samples) {
    std::vector<std::int16_t> out(samples);
    std::mt19937 rng(7);
    std::normal_distribution<double> noise(0.0, 300.0);
    for (std::size_t i = 0; i < samples; ++i) {
        const double t = static_cast<double>(i) / 8000.0;
        const double env = 0.5 + 0.5 * std::sin(2 * 3.14159 * 4 * t);
        double v = 0;
        for (int h = 1; h <= 10; ++h) {
            v += std::sin(2 * 3.14159 * 150 * h * t) / h;
        }
        out[i] =
            static_cast<std::int16_t>(std::clamp(4000 * env * v + noise(rng), -32000.0, 32000.0));
    }
    return out;
}

audio_frame frame_at(const std::vector<std::int16_t>& pcm, std::size_t index) {
    audio_frame f;
    f.count = telephony_frame_samples;
    const std::size_t frames = pcm.size() / telephony_frame_samples;
    const std::size_t at = (index % frames) * telephony_frame_samples;
    std::copy_n(pcm.begin() + static_cast<std::ptrdiff_t>(at), telephony_frame_samples,
                f.samples.begin());
    f.timestamp_ms = static_cast<std::int64_t>(index) * 20;
    return f;
}

double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

class null_output final : public processor_output {
  public:
    void send_audio(const audio_frame& frame) override { benchmark::DoNotOptimize(frame.count); }
    void send_mark(std::string_view name) override { benchmark::DoNotOptimize(name.size()); }
    void send_clear() override {}
};

std::filesystem::path bench_dir() {
    auto dir = std::filesystem::temp_directory_path() / "callstream-bench-recordings";
    std::filesystem::create_directories(dir);
    return dir;
}

stream_info bench_info(std::size_t n) {
    stream_info info;
    info.call_sid = "CAbench" + std::to_string(n);
    info.stream_sid = "MZbench";
    return info;
}

// Audio-thread side of record: on_audio + on_audio_sent (two ring pushes of ~400 bytes).
void BM_record_push_per_frame(benchmark::State& state) {
    const auto pcm = test_signal(8000);
    auto writer = std::make_shared<recording_writer>();
    recording_options options;
    options.dir = bench_dir();
    record_processor rec(options, writer);
    null_output out;
    rec.on_start(bench_info(0), out);
    std::size_t i = 0;
    for (auto _ : state) {
        const audio_frame f = frame_at(pcm, i);
        rec.on_audio(f, out);
        rec.on_audio_sent(f);
        if (++i % 100 == 0) {
            state.PauseTiming();
            writer->sync(); // keep the ring from filling: measure pushes, not drops
            state.ResumeTiming();
        }
    }
    rec.on_stop(out);
    writer->sync();
    state.counters["dropped"] = static_cast<double>(rec.session()->dropped());
}
BENCHMARK(BM_record_push_per_frame)->Iterations(20000); // fixed: each sync costs a writer pass

// Writer-thread side: whole 5 s calls (WAV + Ogg Opus + sidecar) through the writer thread,
// reported per 20 ms frame. Args: opus rate, channels, complexity.
void BM_record_writer_per_frame(benchmark::State& state) {
    const auto pcm = test_signal(8000 * 5);
    auto writer = std::make_shared<recording_writer>();
    recording_options options;
    options.dir = bench_dir();
    options.opus_rate_hz = static_cast<std::uint32_t>(state.range(0));
    options.opus_channels = static_cast<int>(state.range(1));
    options.opus_complexity = static_cast<int>(state.range(2));
    null_output out;
    constexpr std::size_t frames = 250;
    std::size_t call = 0;
    // Wall time here is mostly waiting for writer passes; the process CPU time (the writer
    // thread's work plus our pushes) is the figure that says how many calls a core can record.
    const double cpu_start = process_cpu_seconds();
    for (auto _ : state) {
        record_processor rec(options, writer);
        rec.on_start(bench_info(call++ % 4), out);
        for (std::size_t i = 0; i < frames; ++i) {
            const audio_frame f = frame_at(pcm, i);
            rec.on_audio(f, out);
            rec.on_audio_sent(f);
            if (i % 100 == 99) {
                writer->sync();
            }
        }
        rec.on_stop(out);
        writer->sync();
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(frames));
    state.counters["cpu_us_per_frame"] =
        (process_cpu_seconds() - cpu_start) * 1e6 /
        static_cast<double>(state.iterations() * static_cast<std::int64_t>(frames));
}
BENCHMARK(BM_record_writer_per_frame)
    ->ArgNames({"rate", "ch", "cx"})
    ->Args({16000, 1, 1})
    ->Args({16000, 1, 5})
    ->Args({8000, 1, 1})
    ->Args({48000, 2, 5})
    ->Iterations(8)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// libopusenc for comparison (the recorder does not use it: it always encodes at 48 kHz): one
// 20 ms frame, 8 kHz resampled to `rate` by speexdsp, pages to a null sink. Args: rate, cx.
int null_write(void*, const unsigned char*, opus_int32) {
    return 0;
}
int null_close(void*) {
    return 0;
}

void BM_opus_encode_per_frame(benchmark::State& state) {
    const auto rate = static_cast<std::uint32_t>(state.range(0));
    const auto pcm = test_signal(8000);
    OggOpusComments* comments = ope_comments_create();
    const OpusEncCallbacks callbacks{null_write, null_close};
    int err = 0;
    OggOpusEnc* enc = ope_encoder_create_callbacks(&callbacks, nullptr, comments,
                                                   static_cast<opus_int32>(rate), 1, 0, &err);
    ope_encoder_ctl(enc, OPUS_SET_BITRATE(24000));
    ope_encoder_ctl(enc, OPUS_SET_COMPLEXITY(static_cast<int>(state.range(1))));
    ope_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    ope_encoder_ctl(enc, OPUS_SET_MAX_BANDWIDTH(OPUS_BANDWIDTH_WIDEBAND));
    ope_encoder_ctl(enc, OPE_SET_DECISION_DELAY(0));
    SpeexResamplerState* rs = rate == 8000 ? nullptr : speex_resampler_init(1, 8000, rate, 3, &err);
    std::vector<std::int16_t> up(960);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::int16_t* in = pcm.data() + (i++ % 50) * 160;
        if (rs != nullptr) {
            spx_uint32_t in_len = 160;
            spx_uint32_t out_len = 960;
            speex_resampler_process_int(rs, 0, in, &in_len, up.data(), &out_len);
            ope_encoder_write(enc, up.data(), static_cast<int>(out_len));
        } else {
            ope_encoder_write(enc, in, 160);
        }
    }
    ope_encoder_destroy(enc);
    ope_comments_destroy(comments);
    if (rs != nullptr) {
        speex_resampler_destroy(rs);
    }
}
BENCHMARK(BM_opus_encode_per_frame)
    ->ArgNames({"rate", "cx"})
    ->ArgsProduct({{8000, 16000, 48000}, {0, 1, 3, 5}})
    ->Unit(benchmark::kMicrosecond);

// What the recorder uses instead: raw libopus + libogg (pipeline/ogg_opus_file.hpp), same
// input path (8 kHz, speexdsp to `rate`), pages to /dev/null. Args: rate, complexity.
void BM_ogg_opus_file_per_frame(benchmark::State& state) {
    const auto rate = static_cast<std::uint32_t>(state.range(0));
    const auto pcm = test_signal(8000);
    const int fd = ::open("/dev/null", O_WRONLY | O_CLOEXEC);
    ogg_opus_options options;
    options.rate_hz = rate;
    options.complexity = static_cast<int>(state.range(1));
    ogg_opus_file file;
    file.open(fd, options);
    int err = 0;
    SpeexResamplerState* rs = rate == 8000 ? nullptr : speex_resampler_init(1, 8000, rate, 3, &err);
    std::vector<std::int16_t> up(960);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::int16_t* in = pcm.data() + (i % 50) * 160;
        if (rs != nullptr) {
            spx_uint32_t in_len = 160;
            spx_uint32_t out_len = 960;
            speex_resampler_process_int(rs, 0, in, &in_len, up.data(), &out_len);
            file.write(std::span<const std::int16_t>(up.data(), out_len));
        } else {
            file.write(std::span<const std::int16_t>(in, 160));
        }
        if (++i % 12 == 0) {
            file.flush(); // the writer closes a page every 250 ms
        }
    }
    file.finish();
    ::close(fd);
    if (rs != nullptr) {
        speex_resampler_destroy(rs);
    }
}
BENCHMARK(BM_ogg_opus_file_per_frame)
    ->ArgNames({"rate", "cx"})
    ->ArgsProduct({{8000, 16000}, {0, 1, 3, 5}})
    ->Unit(benchmark::kMicrosecond);

void BM_vad_per_frame(benchmark::State& state, const char* kind) {
    const auto pcm = test_signal(8000);
    auto vad = make_voice_detector(kind);
    std::size_t i = 0;
    for (auto _ : state) {
        const audio_frame f = frame_at(pcm, i++);
        benchmark::DoNotOptimize(vad->process(f.pcm(), 8000));
    }
}
BENCHMARK_CAPTURE(BM_vad_per_frame, webrtc, "webrtc");
BENCHMARK_CAPTURE(BM_vad_per_frame, energy, "energy");
BENCHMARK_CAPTURE(BM_vad_per_frame, webrtc_energy, "webrtc+energy");

// play: one caller frame in, one prompt frame out (lead 0), with the energy VAD watching.
void BM_play_per_frame(benchmark::State& state) {
    const auto pcm = test_signal(8000);
    play_options options;
    options.lead_ms = 0;
    options.vad = "energy";
    play_processor play(options, nullptr);
    null_output out;
    stream_info info;
    info.custom_parameters = {{"play", "tone:440:600000"}}; // 10 minutes
    play.on_start(info, out);
    std::size_t i = 0;
    audio_frame silence;
    silence.count = telephony_frame_samples;
    for (auto _ : state) {
        silence.timestamp_ms = static_cast<std::int64_t>(i++) * 20;
        play.on_audio(silence, out);
    }
}
BENCHMARK(BM_play_per_frame);

} // namespace
