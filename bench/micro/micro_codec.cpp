// Per-frame cost of the codec module: one 20 ms transport frame per iteration, so the reported
// items/s is frames/s (one call needs 50 frames/s per direction in real time).
//
// Run: build/release/bench/micro/callstream_micro --benchmark_filter='codec'

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "codec/base64.hpp"
#include "codec/g711.hpp"
#include "codec/ogg_opus_writer.hpp"
#include "codec/opus.hpp"

namespace {

namespace codec = callstream::codec;

// A deterministic speech-like test signal: two modulated harmonics series plus a little noise,
// so that Opus works as hard as on voice (pure tones or silence would be cheaper).
std::vector<std::int16_t> test_signal(int rate_hz, double seconds) {
    const auto n = static_cast<std::size_t>(seconds * rate_hz);
    std::vector<std::int16_t> s(n);
    std::uint32_t lcg = 12345;
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate_hz;
        const double pitch = 140.0 + 30.0 * std::sin(2.0 * M_PI * 0.7 * t);
        double v = 0.0;
        for (int h = 1; h <= 12; ++h) {
            v += std::sin(2.0 * M_PI * pitch * h * t) / h;
        }
        const double envelope = 0.5 + 0.5 * std::sin(2.0 * M_PI * 3.0 * t);
        lcg = lcg * 1664525u + 1013904223u;
        const double noise = (static_cast<double>(lcg >> 16) / 65536.0 - 0.5) * 0.05;
        s[i] = static_cast<std::int16_t>(std::lround(6000.0 * (envelope * v + noise)));
    }
    return s;
}

std::array<std::uint8_t, 160> ulaw_frame() {
    const auto pcm = test_signal(8000, 0.02);
    std::array<std::uint8_t, 160> frame{};
    codec::ulaw_encode(pcm, frame);
    return frame;
}

void codec_base64_encode_160(benchmark::State& state) {
    const auto frame = ulaw_frame();
    std::array<char, codec::base64_encoded_size(160)> out{};
    for (auto _ : state) {
        benchmark::DoNotOptimize(codec::base64_encode(frame, out.data()));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(codec_base64_encode_160);

void codec_base64_decode_160(benchmark::State& state) {
    const auto frame = ulaw_frame();
    const std::string text = codec::base64_encode(frame);
    std::array<std::uint8_t, 160> out{};
    for (auto _ : state) {
        std::size_t written = 0;
        benchmark::DoNotOptimize(codec::base64_decode(text, out, written));
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(codec_base64_decode_160);

template <void (*Decode)(std::span<const std::uint8_t>, std::span<std::int16_t>) noexcept>
void codec_g711_decode_160(benchmark::State& state) {
    const auto frame = ulaw_frame();
    std::array<std::int16_t, 160> out{};
    for (auto _ : state) {
        Decode(frame, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(codec_g711_decode_160<codec::ulaw_decode>)->Name("codec_ulaw_decode_160");
BENCHMARK(codec_g711_decode_160<codec::alaw_decode>)->Name("codec_alaw_decode_160");

template <void (*Encode)(std::span<const std::int16_t>, std::span<std::uint8_t>) noexcept>
void codec_g711_encode_160(benchmark::State& state) {
    const auto pcm = test_signal(8000, 0.02);
    std::array<std::uint8_t, 160> out{};
    for (auto _ : state) {
        Encode(pcm, out);
        benchmark::DoNotOptimize(out.data());
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(codec_g711_encode_160<codec::ulaw_encode>)->Name("codec_ulaw_encode_160");
BENCHMARK(codec_g711_encode_160<codec::alaw_encode>)->Name("codec_alaw_encode_160");

// The same conversions as a network thread meets them: after serving other calls since this
// call's last frame, so the data and any tables are out of L1 and L2. Before each frame (not
// timed: manual time around the conversion alone) 2 MiB of other memory is touched, more than
// the L2 caches hold. A fixed count of iterations keeps the untimed eviction from stretching the
// run.
class cold_caches {
  public:
    void evict() {
        for (std::size_t i = 0; i < other_.size(); i += 64) {
            other_[i] = static_cast<char>(other_[i] + 1);
        }
        benchmark::ClobberMemory();
    }

  private:
    std::vector<char> other_ = std::vector<char>(std::size_t{2} << 20);
};

template <typename Convert> void run_cold(benchmark::State& state, Convert convert) {
    cold_caches caches;
    for (auto _ : state) {
        caches.evict();
        const auto start = std::chrono::steady_clock::now();
        convert();
        benchmark::ClobberMemory();
        state.SetIterationTime(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    state.SetItemsProcessed(state.iterations());
}

void codec_ulaw_encode_160_cold(benchmark::State& state) {
    const auto pcm = test_signal(8000, 0.02);
    std::array<std::uint8_t, 160> out{};
    run_cold(state, [&] { codec::ulaw_encode(pcm, out); });
}
BENCHMARK(codec_ulaw_encode_160_cold)->UseManualTime()->Iterations(3000);

void codec_ulaw_decode_160_cold(benchmark::State& state) {
    const auto frame = ulaw_frame();
    std::array<std::int16_t, 160> out{};
    run_cold(state, [&] { codec::ulaw_decode(frame, out); });
}
BENCHMARK(codec_ulaw_decode_160_cold)->UseManualTime()->Iterations(3000);

void codec_base64_encode_160_cold(benchmark::State& state) {
    const auto frame = ulaw_frame();
    std::array<char, codec::base64_encoded_size(160)> out{};
    run_cold(state, [&] { benchmark::DoNotOptimize(codec::base64_encode(frame, out.data())); });
}
BENCHMARK(codec_base64_encode_160_cold)->UseManualTime()->Iterations(3000);

void codec_base64_decode_160_cold(benchmark::State& state) {
    const auto frame = ulaw_frame();
    const std::string text = codec::base64_encode(frame);
    std::array<std::uint8_t, 160> out{};
    run_cold(state, [&] {
        std::size_t written = 0;
        benchmark::DoNotOptimize(codec::base64_decode(text, out, written));
    });
}
BENCHMARK(codec_base64_decode_160_cold)->UseManualTime()->Iterations(3000);

int bitrate_for(int rate_hz) {
    return rate_hz >= 48000 ? 48000 : 24000;
}

// Args: rate_hz, complexity. Cycles through 1 s of signal, one 20 ms frame per iteration.
void codec_opus_encode_20ms(benchmark::State& state) {
    const auto rate_hz = static_cast<int>(state.range(0));
    const auto complexity = static_cast<int>(state.range(1));
    const auto signal = test_signal(rate_hz, 1.0);
    codec::opus_encoder enc;
    if (enc.open({rate_hz, 1, bitrate_for(rate_hz), complexity})) {
        state.SkipWithError("opus_encoder::open failed");
        return;
    }
    const auto frame = static_cast<std::size_t>(enc.frame_samples());
    std::array<std::uint8_t, codec::opus_max_packet_bytes> packet{};
    std::size_t at = 0;
    std::size_t bytes = 0;
    for (auto _ : state) {
        std::size_t written = 0;
        if (enc.encode(std::span(signal).subspan(at, frame), packet, written)) {
            state.SkipWithError("encode failed");
            break;
        }
        bytes += written;
        at = (at + frame) % signal.size();
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["bytes/frame"] = benchmark::Counter(
        static_cast<double>(bytes) /
        static_cast<double>(std::max<benchmark::IterationCount>(state.iterations(), 1)));
}
BENCHMARK(codec_opus_encode_20ms)
    ->ArgNames({"rate", "complexity"})
    ->ArgsProduct({{16000, 48000}, {0, 3, 5, 10}});

// Args: rate_hz, complexity of the encoder that made the packets.
void codec_opus_decode_20ms(benchmark::State& state) {
    const auto rate_hz = static_cast<int>(state.range(0));
    const auto complexity = static_cast<int>(state.range(1));
    const auto signal = test_signal(rate_hz, 1.0);
    codec::opus_encoder enc;
    codec::opus_decoder dec;
    if (enc.open({rate_hz, 1, bitrate_for(rate_hz), complexity}) || dec.open(rate_hz, 1)) {
        state.SkipWithError("open failed");
        return;
    }
    const auto frame = static_cast<std::size_t>(enc.frame_samples());
    std::vector<std::vector<std::uint8_t>> packets;
    for (std::size_t at = 0; at + frame <= signal.size(); at += frame) {
        std::vector<std::uint8_t> packet(codec::opus_max_packet_bytes);
        std::size_t written = 0;
        if (enc.encode(std::span(signal).subspan(at, frame), packet, written)) {
            state.SkipWithError("encode failed");
            return;
        }
        packet.resize(written);
        packets.push_back(std::move(packet));
    }
    std::vector<std::int16_t> pcm(frame);
    std::size_t i = 0;
    for (auto _ : state) {
        std::size_t samples = 0;
        if (dec.decode(packets[i], pcm, samples)) {
            state.SkipWithError("decode failed");
            break;
        }
        benchmark::DoNotOptimize(pcm.data());
        i = (i + 1) % packets.size();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(codec_opus_decode_20ms)
    ->ArgNames({"rate", "complexity"})
    ->ArgsProduct({{16000, 48000}, {0, 3, 5, 10}});

// One 20 ms frame into the Ogg Opus writer (libopus at the input rate, libogg paging)
// with a sink that only counts bytes. Args: input rate_hz, complexity.
void codec_ogg_opus_writer_20ms(benchmark::State& state) {
    const auto rate_hz = static_cast<int>(state.range(0));
    const auto complexity = static_cast<int>(state.range(1));
    const auto signal = test_signal(rate_hz, 1.0);
    std::size_t bytes = 0;
    codec::ogg_opus_writer writer;
    if (writer.open({rate_hz, 1, bitrate_for(rate_hz), complexity, 500, {}},
                    [&bytes](std::span<const std::uint8_t> b) {
                        bytes += b.size();
                        return true;
                    })) {
        state.SkipWithError("ogg_opus_writer::open failed");
        return;
    }
    const auto frame = static_cast<std::size_t>(rate_hz / 50);
    std::size_t at = 0;
    for (auto _ : state) {
        if (writer.write(std::span(signal).subspan(at, frame))) {
            state.SkipWithError("write failed");
            break;
        }
        at = (at + frame) % signal.size();
    }
    state.SetItemsProcessed(state.iterations());
    benchmark::DoNotOptimize(bytes);
}
BENCHMARK(codec_ogg_opus_writer_20ms)
    ->ArgNames({"rate", "complexity"})
    ->ArgsProduct({{8000, 16000, 48000}, {0, 5}});

} // namespace
