// Per-frame cost of the Twilio protocol work a network thread does for one media message:
// parsing it, and the whole inbound->outbound echo path without sockets.
#include <string>
#include <vector>

#include <benchmark/benchmark.h>

#include "codec/base64.hpp"
#include "pipeline/processor_factory.hpp"
#include "pipeline/stream_pipeline.hpp"
#include "server/twilio/media_messages.hpp"

namespace {

using namespace callstream;

std::string media_message() {
    std::vector<std::uint8_t> ulaw(160);
    for (std::size_t i = 0; i < ulaw.size(); ++i) {
        ulaw[i] = static_cast<std::uint8_t>(i * 37 + 11);
    }
    return R"({"event":"media","sequenceNumber":"12345","media":{"track":"inbound","chunk":"12344","timestamp":"246880","payload":")" +
           codec::base64_encode(ulaw) + R"("},"streamSid":"MZ0123456789abcdef0123456789abcdef"})";
}

// A padded media message and what parsing it needs, as the session keeps them.
struct parse_fixture {
    std::string message = media_message();
    std::size_t size = message.size();
    simdjson::ondemand::parser parser;
    server::inbound_message msg;
    pipeline::stream_info start;
    parse_fixture() { message.resize(size + simdjson::SIMDJSON_PADDING); }
    std::error_code parse() {
        return server::parse_inbound(parser, {message.data(), size}, message.size(), msg, start);
    }
};

void protocol_parse_media(benchmark::State& state) {
    parse_fixture f;
    for (auto _ : state) {
        auto ec = f.parse();
        benchmark::DoNotOptimize(ec);
        benchmark::DoNotOptimize(f.msg.payload.data());
    }
    state.SetItemsProcessed(state.iterations());
    state.SetLabel(simdjson::builtin_implementation()->name());
}
BENCHMARK(protocol_parse_media);

// parse -> base64 decode -> μ-law decode -> echo -> μ-law encode -> base64 -> outbound JSON.
void protocol_echo_path(benchmark::State& state) {
    parse_fixture f;
    auto chain = pipeline::make_processor_chain("echo", {});
    pipeline::stream_pipeline pipe(std::move(chain.chain));
    pipe.start({"AC1", "CA1", "MZ0123456789abcdef0123456789abcdef", {}});
    server::outbound_writer writer;
    writer.set_stream_sid("MZ0123456789abcdef0123456789abcdef");
    std::vector<std::uint8_t> ulaw(1024);
    std::string out;
    out.reserve(512);
    for (auto _ : state) {
        (void)f.parse();
        std::size_t n = 0;
        (void)codec::base64_decode(f.msg.payload, ulaw, n);
        pipe.push_audio({ulaw.data(), n}, f.msg.timestamp_ms);
        pipe.drain([&](const pipeline::outbound_event& ev) { writer.media(ev.media(), out); });
        benchmark::DoNotOptimize(out.data());
    }
    state.SetItemsProcessed(state.iterations());
}
BENCHMARK(protocol_echo_path);

} // namespace
