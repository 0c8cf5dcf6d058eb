// Per-frame cost of the openai-realtime and audio bridge protocols on the network thread: one
// 20 ms caller frame out (JSON + base64, or resampling and PCM16 packing), one 20 ms assistant
// delta in (parse + base64 decode), without sockets.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "codec/base64.hpp"
#include "server/bridge/audio_protocol.hpp"
#include "server/bridge/openai_realtime_protocol.hpp"

namespace {

using namespace callstream::server::bridge;
namespace codec = callstream::codec;

// A bridge that only counts, so the protocol's own work is what is measured.
struct counting_bridge final : bridge_actions {
    std::size_t bytes = 0;
    void send_text(std::string m) override { bytes += m.size(); }
    void send_binary(std::vector<std::uint8_t> b) override { bytes += b.size(); }
    void play_ulaw(std::span<const std::uint8_t> u) override { bytes += u.size(); }
    void play_pcm16(std::span<const std::int16_t> p, std::uint32_t) override { bytes += p.size(); }
    void play_mark(std::string) override {}
    void clear_playback() override {}
    std::int64_t heard_ms() const override { return 0; }
    std::int64_t sent_ms() const override { return 0; }
    std::int64_t queued_end_ms() const override { return 0; }
    void count_barge_in() override {}
    void count_upstream_error(std::string_view, std::string_view) override {}
    void count_truncation() override {}
    void hangup(std::string) override {}
    void fail(std::string_view, std::string) override {}
};

std::vector<std::uint8_t> caller_frame() {
    std::vector<std::uint8_t> ulaw(160);
    for (std::size_t i = 0; i < ulaw.size(); ++i) {
        ulaw[i] = static_cast<std::uint8_t>(i * 37 + 11);
    }
    return ulaw;
}

void run_caller_frames(benchmark::State& state, upstream_protocol& protocol) {
    counting_bridge bridge;
    const auto frame = caller_frame();
    for (auto _ : state) {
        protocol.on_caller_audio(frame, 0, bridge);
    }
    benchmark::DoNotOptimize(bridge.bytes);
    state.SetItemsProcessed(state.iterations());
}

void bridge_openai_caller_frame_pcmu(benchmark::State& state) {
    openai_realtime_protocol p({"", "", "", realtime_format::pcmu}, false);
    run_caller_frames(state, p);
}
BENCHMARK(bridge_openai_caller_frame_pcmu);

void bridge_openai_caller_frame_pcm24(benchmark::State& state) {
    openai_realtime_protocol p({"", "", "", realtime_format::pcm24}, false);
    run_caller_frames(state, p);
}
BENCHMARK(bridge_openai_caller_frame_pcm24);

void bridge_audio_caller_frame_l16_16000(benchmark::State& state) {
    audio_protocol p(*parse_audio_format("l16-16000"), {});
    run_caller_frames(state, p);
}
BENCHMARK(bridge_audio_caller_frame_l16_16000);

// One 20 ms GA delta of μ-law, as the Realtime API sends it, parsed and played.
void bridge_openai_delta_pcmu(benchmark::State& state) {
    openai_realtime_protocol p({"", "", "", realtime_format::pcmu}, false);
    counting_bridge bridge;
    std::string event = R"({"type":"response.output_audio.delta","event_id":"event_000123",)"
                        R"("response_id":"resp_000001","item_id":"item_000002",)"
                        R"("output_index":0,"content_index":0,"delta":")" +
                        codec::base64_encode(caller_frame()) + "\"}";
    const std::size_t size = event.size();
    event.resize(size + simdjson::SIMDJSON_PADDING);
    for (auto _ : state) {
        p.on_upstream_text({event.data(), size}, bridge);
    }
    benchmark::DoNotOptimize(bridge.bytes);
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(bridge_openai_delta_pcmu);

} // namespace
