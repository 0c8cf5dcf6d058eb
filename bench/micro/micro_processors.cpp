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

#include "codec/ogg_opus_writer.hpp"
#include "pipeline/processors/play.hpp"
#include "pipeline/processors/record.hpp"
#include "pipeline/resampler.hpp"
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

// The recorder's Ogg Opus path alone: 8 kHz in, the pipeline's resampler (speex:3) to `rate`,
// codec::ogg_opus_writer (raw libopus + libogg), pages to a sink that only counts bytes, a
// page closed every 250 ms as the writer does. Args: rate, complexity.
void BM_ogg_opus_writer_per_frame(benchmark::State& state) {
    const auto rate = static_cast<std::uint32_t>(state.range(0));
    const auto pcm = test_signal(8000);
    std::size_t bytes = 0;
    callstream::codec::ogg_opus_writer writer;
    if (writer.open({static_cast<int>(rate), 1, 24000, static_cast<int>(state.range(1)), 1000, {}},
                    [&bytes](std::span<const std::uint8_t> b) {
                        bytes += b.size();
                        return true;
                    })) {
        state.SkipWithError("ogg_opus_writer::open failed");
        return;
    }
    const auto up =
        make_resampler(parse_resampler_spec(default_resampler_spec).spec, telephony_rate_hz, rate);
    std::vector<std::int16_t> upsampled(max_frame_samples);
    std::size_t i = 0;
    for (auto _ : state) {
        const std::span<const std::int16_t> in(pcm.data() + (i % 50) * 160, 160);
        const std::size_t n = up->process(in, upsampled);
        writer.write(std::span<const std::int16_t>(upsampled.data(), n));
        if (++i % 12 == 0) {
            writer.flush(); // the writer closes a page every 250 ms
        }
    }
    writer.finish();
    benchmark::DoNotOptimize(bytes);
}
BENCHMARK(BM_ogg_opus_writer_per_frame)
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
