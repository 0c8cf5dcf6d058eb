#pragma once
// A bridge_actions for protocol unit tests: records what the protocol asks of the core, and
// simulates the playout timeline the way the core keeps it (queued_end grows with play_*; the
// test sets heard). Test-only, single-threaded.

#include <deque>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "server/bridge/upstream_protocol.hpp"

namespace callstream::server::bridge {

// A bridge that records what the protocol asks of it. The playout timeline is simulated the
// way the core keeps it: queued_end grows with play_*, heard is set by the test.
struct recording_bridge final : bridge_actions {
    std::vector<std::vector<std::uint8_t>> binaries;
    std::vector<std::string> texts;
    std::vector<std::uint8_t> ulaw;
    std::vector<std::int16_t> pcm;
    std::uint32_t pcm_rate = 0;
    std::vector<std::string> marks;
    int clears = 0;
    int barge_ins = 0;
    int truncations = 0;
    std::vector<std::string> upstream_errors; // "type/code"
    std::vector<std::pair<std::string, std::string>> failures;
    std::int64_t accepted_bytes = 0; // μ-law bytes at 8 kHz
    std::int64_t heard = 0;

    void send_text(std::string message) override { texts.push_back(std::move(message)); }
    void send_binary(std::vector<std::uint8_t> bytes) override {
        binaries.push_back(std::move(bytes));
    }
    void play_ulaw(std::span<const std::uint8_t> bytes) override {
        ulaw.insert(ulaw.end(), bytes.begin(), bytes.end());
        accepted_bytes += static_cast<std::int64_t>(bytes.size());
    }
    void play_pcm16(std::span<const std::int16_t> samples, std::uint32_t rate_hz) override {
        pcm.insert(pcm.end(), samples.begin(), samples.end());
        pcm_rate = rate_hz;
        accepted_bytes += static_cast<std::int64_t>(samples.size() * 8000 / rate_hz);
    }
    void play_mark(std::string name) override { marks.push_back(std::move(name)); }
    void clear_playback() override { ++clears; }
    std::int64_t sent = 0;
    std::int64_t heard_ms() const override { return heard; }
    std::int64_t sent_ms() const override { return sent; }
    std::int64_t queued_end_ms() const override { return accepted_bytes / 8; }
    void count_barge_in() override { ++barge_ins; }
    void count_truncation() override { ++truncations; }
    void count_upstream_error(std::string_view type, std::string_view code) override {
        upstream_errors.push_back(std::string(type) + "/" + std::string(code));
    }
    void hangup(std::string reason) override { failures.emplace_back("hangup", reason); }
    void fail(std::string_view label, std::string detail) override {
        failures.emplace_back(std::string(label), std::move(detail));
    }

    // The client events of one type, parsed.
    std::vector<simdjson::dom::element> events(std::string_view type) {
        std::vector<simdjson::dom::element> out;
        for (const auto& text : texts) {
            auto& parser = parsers.emplace_back();
            simdjson::dom::element e;
            EXPECT_FALSE(parser.parse(text).get(e)) << text;
            if (std::string_view(e["type"]) == type) {
                out.push_back(e);
            }
        }
        return out;
    }
    std::deque<simdjson::dom::parser> parsers;
};

// Hands `json` to the protocol the way the core does: followed by SIMDJSON_PADDING bytes.
inline void deliver(upstream_protocol& p, bridge_actions& b, std::string_view json) {
    std::string padded = std::string(json) + std::string(simdjson::SIMDJSON_PADDING, '\0');
    p.on_upstream_text({padded.data(), json.size()}, b);
}

} // namespace callstream::server::bridge
