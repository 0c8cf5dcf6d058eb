// Pipeline microbenchmarks: per 20 ms frame costs of resampling (every backend and quality),
// the SPSC ring, the inline echo pipeline and the DSP-worker round trip.
//
// "calls_per_core" is how many calls one core could resample at that cost: a call moves 50
// frames a second each way, so calls = 1 s / (ns per frame both ways x 50).

#include <atomic>
#include <cmath>
#include <memory>
#include <numbers>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>

#include "codec/g711.hpp"
#include "pipeline/dsp_pool.hpp"
#include "pipeline/processors/echo.hpp"
#include "pipeline/resampler.hpp"
#include "pipeline/spsc_ring.hpp"
#include "pipeline/stream_pipeline.hpp"

namespace {

using namespace callstream::pipeline;

std::vector<std::int16_t> tone(std::uint32_t rate_hz, std::size_t n) {
    std::vector<std::int16_t> x(n);
    for (std::size_t i = 0; i < n; ++i) {
        x[i] = static_cast<std::int16_t>(std::lround(
            12000.0 * std::sin(2.0 * std::numbers::pi * 440.0 * static_cast<double>(i) / rate_hz)));
    }
    return x;
}

resampler_spec spec_at(std::int64_t index) {
    return parse_resampler_spec(all_resampler_specs().at(static_cast<std::size_t>(index))).spec;
}

// Args: spec index (all_resampler_specs()), the other rate, direction (0 up, 1 down, 2 both).
void BM_resample(benchmark::State& state) {
    const resampler_spec spec = spec_at(state.range(0));
    const auto rate_hz = static_cast<std::uint32_t>(state.range(1));
    const auto direction = state.range(2);
    auto up = make_resampler(spec, telephony_rate_hz, rate_hz);
    auto down = make_resampler(spec, rate_hz, telephony_rate_hz);
    const auto narrow = tone(telephony_rate_hz, 50 * telephony_frame_samples);
    const auto wide = tone(rate_hz, 50 * rate_hz / 50);
    const std::size_t n_frame = telephony_frame_samples;
    const std::size_t w_frame = rate_hz / 50;
    audio_frame out;
    std::size_t f = 0;
    for (auto _ : state) {
        const std::size_t k = f++ % 50;
        if (direction != 1) {
            up->process(std::span(narrow).subspan(k * n_frame, n_frame), out.samples);
        }
        if (direction != 0) {
            down->process(std::span(wide).subspan(k * w_frame, w_frame), out.samples);
        }
        benchmark::DoNotOptimize(out.samples.data());
        benchmark::ClobberMemory();
    }
    state.SetLabel(spec.to_string() + (direction == 0   ? " up"
                                       : direction == 1 ? " down"
                                                        : " both"));
    if (direction == 2) {
        state.counters["calls_per_core"] = benchmark::Counter(
            static_cast<double>(state.iterations()) / 50.0, benchmark::Counter::kIsRate);
    }
}

void resample_args(benchmark::internal::Benchmark* b) {
    const auto specs = static_cast<std::int64_t>(all_resampler_specs().size());
    for (std::int64_t s = 0; s < specs; ++s) {
        for (const std::int64_t rate : {16000, 24000, 48000}) {
            for (const std::int64_t dir : {0, 1}) {
                b->Args({s, rate, dir});
            }
        }
        b->Args({s, 16000, 2});
    }
}
BENCHMARK(BM_resample)->Apply(resample_args);

// One audio_frame (~2 KiB) through the ring: copy in, copy out.
void BM_spsc_ring_push_pop(benchmark::State& state) {
    spsc_ring<audio_frame> ring(64);
    audio_frame in;
    in.count = 160;
    audio_frame out;
    for (auto _ : state) {
        ring.try_push(in);
        ring.try_pop(out);
        benchmark::DoNotOptimize(out.count);
    }
}
BENCHMARK(BM_spsc_ring_push_pop);

// In place: fill the slot's 160 samples, read them where they are.
void BM_spsc_ring_in_place(benchmark::State& state) {
    spsc_ring<audio_frame> ring(64);
    std::int64_t sum = 0;
    for (auto _ : state) {
        ring.try_push_with([](audio_frame& f) {
            f.count = 160;
            std::fill_n(f.samples.begin(), 160, std::int16_t{7});
        });
        const audio_frame* f = ring.front();
        sum += f->samples[159];
        ring.pop_front();
        benchmark::DoNotOptimize(sum);
    }
}
BENCHMARK(BM_spsc_ring_in_place);

void BM_boost_spsc_push_pop(benchmark::State& state) {
    boost::lockfree::spsc_queue<audio_frame> queue(64);
    audio_frame in;
    in.count = 160;
    audio_frame out;
    for (auto _ : state) {
        queue.push(in);
        queue.pop(out);
        benchmark::DoNotOptimize(out.count);
    }
}
BENCHMARK(BM_boost_spsc_push_pop);

// Two threads: items/s through a 64-slot ring of audio frames, producer copying in, consumer
// reading in place.
void BM_spsc_ring_two_threads(benchmark::State& state) {
    // Created and destroyed by thread 0 outside the timed loop, whose start and end are
    // barriers for all of the benchmark's threads.
    static std::unique_ptr<spsc_ring<audio_frame>> ring;
    constexpr std::int64_t batch = 100000;
    if (state.thread_index() == 0) {
        ring = std::make_unique<spsc_ring<audio_frame>>(64);
    }
    // Google Benchmark starts threads together; thread 0 produces, thread 1 consumes.
    audio_frame in;
    in.count = 160;
    for (auto _ : state) {
        if (state.thread_index() == 0) {
            for (std::int64_t i = 0; i < batch;) {
                if (ring->try_push(in)) {
                    ++i;
                }
            }
        } else {
            for (std::int64_t i = 0; i < batch;) {
                if (const audio_frame* f = ring->front(); f != nullptr) {
                    benchmark::DoNotOptimize(f->count);
                    ring->pop_front();
                    ++i;
                }
            }
        }
    }
    state.SetItemsProcessed(state.iterations() * batch);
    if (state.thread_index() == 0) {
        ring.reset();
    }
}
BENCHMARK(BM_spsc_ring_two_threads)->Threads(2)->UseRealTime()->Iterations(20);

// The whole inline path per frame: decode, (resample,) echo, (resample,) encode, drain.
// Arg: the echo's rate (8000 = no resampling).
void BM_inline_echo_pipeline(benchmark::State& state) {
    const auto rate_hz = static_cast<std::uint32_t>(state.range(0));
    struct echo_at final : processor {
        std::uint32_t rate;
        explicit echo_at(std::uint32_t r) : rate(r) {}
        std::uint32_t rate_hz() const noexcept override { return rate; }
        void on_audio(const audio_frame& in, processor_output& out) override { out.send_audio(in); }
    };
    stream_pipeline::processor_chain chain;
    chain.push_back(std::make_unique<echo_at>(rate_hz));
    stream_pipeline p(std::move(chain));
    p.start({});
    std::vector<std::uint8_t> ulaw(telephony_frame_samples);
    callstream::codec::ulaw_encode(tone(8000, telephony_frame_samples), ulaw);
    std::size_t bytes = 0;
    for (auto _ : state) {
        p.push_audio(ulaw, 0);
        p.drain([&](const outbound_event& ev) { bytes += ev.size; });
    }
    benchmark::DoNotOptimize(bytes);
    state.SetLabel(std::string(default_resampler_spec));
    state.counters["calls_per_core"] = benchmark::Counter(
        static_cast<double>(state.iterations()) / 50.0, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_inline_echo_pipeline)->Arg(8000)->Arg(16000);

// DSP mode: Arg(0) streams on one worker, echo at Arg(1) Hz. Each iteration pushes one frame
// to every stream, sleeps until every stream's output-ready callback has fired (as the server's
// posted drains would), and drains them all on this (the network) thread. Reports frames/s
// through the whole hand-off and back.
void BM_dsp_round_trip(benchmark::State& state) {
    const auto streams = static_cast<std::size_t>(state.range(0));
    const auto rate_hz = static_cast<std::uint32_t>(state.range(1));
    dsp_pool pool(1);
    std::vector<std::unique_ptr<stream_pipeline>> pipelines;
    struct echo_at final : processor {
        std::uint32_t rate;
        explicit echo_at(std::uint32_t r) : rate(r) {}
        std::uint32_t rate_hz() const noexcept override { return rate; }
        void on_audio(const audio_frame& in, processor_output& out) override { out.send_audio(in); }
    };
    std::atomic<std::uint32_t> ready{0};
    for (std::size_t i = 0; i < streams; ++i) {
        stream_pipeline::processor_chain chain;
        chain.push_back(std::make_unique<echo_at>(rate_hz));
        pipeline_options options;
        options.dsp = &pool;
        pipelines.push_back(std::make_unique<stream_pipeline>(std::move(chain), options));
        pipelines.back()->set_output_ready([&ready] {
            ready.fetch_add(1, std::memory_order_acq_rel);
            ready.notify_one();
        });
        pipelines.back()->start({});
    }
    std::vector<std::uint8_t> ulaw(telephony_frame_samples);
    callstream::codec::ulaw_encode(tone(8000, telephony_frame_samples), ulaw);
    std::size_t drained = 0;
    for (auto _ : state) {
        for (auto& p : pipelines) {
            p->push_audio(ulaw, 0);
        }
        for (std::uint32_t seen = ready.load(); seen < streams; seen = ready.load()) {
            ready.wait(seen);
        }
        ready.store(0);
        for (auto& p : pipelines) {
            drained += p->drain([](const outbound_event&) {});
        }
    }
    if (drained != static_cast<std::size_t>(state.iterations()) * streams) {
        state.SkipWithError("lost frames");
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(streams));
    pipelines.clear();
}
BENCHMARK(BM_dsp_round_trip)->Args({100, 8000})->Args({100, 16000})->UseRealTime();

} // namespace
