// The live monitor's per-frame cost on a stream (server/monitor/stream_tap.hpp): what every
// call pays with --monitor (a peak scan and relaxed stores), what a listened call pays on top
// (one ring push), and, for comparison, encoding that frame as 8 kHz Opus for a listener.
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <boost/asio/io_context.hpp>

#include "codec/g711.hpp"
#include "codec/opus.hpp"
#include "server/monitor/monitor_hub.hpp"
#include "server/monitor/stream_tap.hpp"

namespace {

using callstream::server::monitor::call_facts;
using callstream::server::monitor::listen_frame;
using callstream::server::monitor::stream_tap;

std::array<std::uint8_t, 160> speechlike_frame() {
    std::array<std::uint8_t, 160> f{};
    for (std::size_t i = 0; i < f.size(); ++i) {
        const double s = 8000.0 * std::sin(static_cast<double>(i) * 0.21) *
                         std::sin(static_cast<double>(i) * 0.013);
        f[i] = callstream::codec::linear_to_ulaw(static_cast<std::int16_t>(s));
    }
    return f;
}

// Both legs of one 20 ms frame, nobody listening.
void monitor_tap_frame_unlistened(benchmark::State& state) {
    stream_tap tap(call_facts{});
    const auto frame = speechlike_frame();
    for (auto _ : state) {
        tap.caller_frame(frame);
        tap.outbound_frame(frame);
        benchmark::ClobberMemory();
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(monitor_tap_frame_unlistened);

// Both legs with a listener attached; the listener drains as it would every 20 ms.
void monitor_tap_frame_listened(benchmark::State& state) {
    stream_tap tap(call_facts{});
    tap.attach_listener();
    const auto frame = speechlike_frame();
    std::array<listen_frame, stream_tap::ring_frames> out{};
    std::size_t n = 0;
    for (auto _ : state) {
        tap.caller_frame(frame);
        tap.outbound_frame(frame);
        if (++n % 32 == 0) {
            tap.drain(out);
        }
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(monitor_tap_frame_listened);

// The alternative to passthrough: one leg's 20 ms as 8 kHz mono Opus (complexity 0 and 5).
void monitor_opus_encode_leg(benchmark::State& state) {
    callstream::codec::opus_encoder enc;
    if (enc.open({8000, 1, 16000, static_cast<int>(state.range(0))})) {
        state.SkipWithError("opus_encoder::open failed");
        return;
    }
    const auto frame = speechlike_frame();
    std::array<std::int16_t, 160> pcm{};
    std::array<std::uint8_t, callstream::codec::opus_max_packet_bytes> packet{};
    for (auto _ : state) {
        for (std::size_t i = 0; i < pcm.size(); ++i) {
            pcm[i] = callstream::codec::ulaw_to_linear(frame[i]);
        }
        std::size_t written = 0;
        if (enc.encode(pcm, packet, written)) {
            state.SkipWithError("encode failed");
            break;
        }
        benchmark::DoNotOptimize(written);
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(monitor_opus_encode_leg)->ArgName("complexity")->Arg(0)->Arg(5);

} // namespace

namespace {

// One 10 Hz tick of the hub with N calls: a full snapshot (sent once a second) or a levels
// one (the other nine); what watchers cost the server apart from writing the bytes.
void monitor_snapshot_tick(benchmark::State& state) {
    boost::asio::io_context ioc;
    auto hub = std::make_shared<callstream::server::monitor::monitor_hub>(
        ioc.get_executor(),
        callstream::server::monitor::token_signer("t", std::chrono::seconds(60)), nullptr, nullptr,
        "bench");
    std::vector<std::shared_ptr<stream_tap>> taps;
    const auto frame = speechlike_frame();
    for (int i = 0; i < state.range(0); ++i) {
        call_facts f;
        f.call_sid = "CA" + std::string(32, static_cast<char>('a' + i % 6));
        f.stream_sid = "MZ" + std::to_string(100000000 + i) + std::string(23, '0');
        f.from = "+15550001111";
        f.to = "+15550002222";
        f.app = "echo";
        taps.push_back(hub->open_tap(std::move(f)));
    }
    const bool full = state.range(1) != 0;
    std::size_t bytes = 0;
    for (auto _ : state) {
        for (auto& t : taps) {
            t->caller_frame(frame);
        }
        bytes = hub->snapshot_json(full).size();
    }
    state.counters["bytes"] = static_cast<double>(bytes);
}
BENCHMARK(monitor_snapshot_tick)->ArgNames({"calls", "full"})->ArgsProduct({{400}, {0, 1}});

} // namespace
