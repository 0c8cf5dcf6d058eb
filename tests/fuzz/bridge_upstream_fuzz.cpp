// libFuzzer harness: upstream text through the openai-realtime and audio protocols, the way the
// bridge core hands it over (padded), and the same bytes as binary audio. Beyond "no crash"
// (ASan/UBSan): a protocol either fails the upstream or leaves the playout timeline consistent
// (what it played never runs backwards, and a truncate never exceeds what was played).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <simdjson.h>

#include "server/app/log.hpp"
#include "server/bridge/audio_protocol.hpp"
#include "server/bridge/openai_realtime_protocol.hpp"

using namespace callstream::server;
using namespace callstream::server::bridge;

namespace {

struct null_bridge final : bridge_actions {
    std::int64_t accepted_bytes = 0;
    bool failed = false;
    void send_text(std::string) override {}
    void send_binary(std::vector<std::uint8_t>) override {}
    void play_ulaw(std::span<const std::uint8_t> b) override {
        accepted_bytes += static_cast<std::int64_t>(b.size());
    }
    void play_pcm16(std::span<const std::int16_t> s, std::uint32_t rate_hz) override {
        accepted_bytes += static_cast<std::int64_t>(s.size() * 8000 / rate_hz);
    }
    void play_mark(std::string) override {}
    void clear_playback() override {}
    std::int64_t heard_ms() const override { return accepted_bytes / 16; } // half of it heard
    std::int64_t sent_ms() const override { return accepted_bytes / 8; }
    std::int64_t queued_end_ms() const override { return accepted_bytes / 8; }
    void count_barge_in() override {}
    void count_truncation() override {}
    void count_upstream_error(std::string_view, std::string_view) override {}
    void hangup(std::string) override { failed = true; }
    void fail(std::string_view, std::string) override { failed = true; }
};

void feed(upstream_protocol& p, null_bridge& b, const std::uint8_t* data, std::size_t size) {
    // Messages are separated by newlines, so one input drives a whole conversation.
    std::string padded;
    std::size_t start = 0;
    while (start <= size && !b.failed) {
        const auto* nl =
            static_cast<const std::uint8_t*>(std::memchr(data + start, '\n', size - start));
        const std::size_t end = nl ? static_cast<std::size_t>(nl - data) : size;
        padded.assign(reinterpret_cast<const char*>(data + start), end - start);
        const std::size_t n = padded.size();
        padded.append(simdjson::SIMDJSON_PADDING, '\0');
        p.on_upstream_text({padded.data(), n}, b);
        start = end + 1;
    }
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    configure_logging(log_level::off, log_format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    call_metadata call;
    call.call_sid = "CA1";
    for (auto format : {realtime_format::pcmu, realtime_format::pcm24}) {
        openai_realtime_protocol p({"m", "v", "i", format}, true);
        null_bridge b;
        p.on_open(b);
        p.on_start(call, b);
        feed(p, b, data, size);
        const auto& stats = p.stats();
        if (stats.last_truncate_ms > b.queued_end_ms()) {
            std::abort();
        }
    }
    {
        audio_protocol p(*parse_audio_format("l16-16000"), {});
        null_bridge b;
        p.on_start(call, b);
        feed(p, b, data, size);
        p.on_upstream_binary({data, size}, b);
        p.on_caller_audio({data, size}, 0, b);
    }
    return 0;
}
