#include "pipeline/stream_pipeline.hpp"

#include <algorithm>
#include <cstring>

#include "codec/g711.hpp"

namespace callstream::pipeline {

// Collects what processors send and turns it into outbound events (μ-law at 8 kHz).
class stream_pipeline::output final : public processor_output {
  public:
    explicit output(stream_pipeline& owner) : owner_(owner) {}

    void send_audio(const audio_frame& frame) override {
        auto pcm = frame.pcm();
        while (!pcm.empty()) {
            const std::size_t n = std::min(pcm.size(), telephony_frame_samples);
            if (owner_.outbound_.size() >= outbound_capacity) {
                ++owner_.counters_.frames_dropped;
                return;
            }
            outbound_event& ev = owner_.outbound_.emplace_back();
            ev.type = outbound_event::kind::media;
            ev.size = static_cast<std::uint16_t>(n);
            codec::ulaw_encode(pcm.first(n), ev.ulaw);
            ++owner_.counters_.frames_out;
            audio_frame sent;
            sent.count = static_cast<std::uint16_t>(n);
            sent.timestamp_ms = frame.timestamp_ms;
            std::copy_n(pcm.begin(), n, sent.samples.begin());
            for (auto& p : owner_.chain_) {
                p->on_audio_sent(sent);
            }
            pcm = pcm.subspan(n);
        }
    }
    void send_mark(std::string_view name) override {
        outbound_event& ev = owner_.outbound_.emplace_back();
        ev.type = outbound_event::kind::mark;
        ev.size = static_cast<std::uint16_t>(std::min(name.size(), outbound_event::max_mark_name));
        std::memcpy(ev.name.data(), name.data(), ev.size);
    }
    void send_clear() override {
        owner_.outbound_.emplace_back().type = outbound_event::kind::clear;
    }

  private:
    stream_pipeline& owner_;
};

stream_pipeline::stream_pipeline(processor_chain chain)
    : chain_(std::move(chain)), output_(std::make_unique<output>(*this)) {}

stream_pipeline::~stream_pipeline() = default;

void stream_pipeline::start(const stream_info& info) {
    for (auto& p : chain_) {
        p->on_start(info, *output_);
    }
}

void stream_pipeline::push_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
    while (!ulaw.empty()) {
        const std::size_t n = std::min(ulaw.size(), telephony_frame_samples);
        frame_.count = static_cast<std::uint16_t>(n);
        frame_.rate_hz = telephony_rate_hz;
        frame_.timestamp_ms = timestamp_ms;
        codec::ulaw_decode(ulaw.first(n), frame_.pcm());
        ++counters_.frames_in;
        for (auto& p : chain_) {
            p->on_audio(frame_, *output_);
        }
        ulaw = ulaw.subspan(n);
        timestamp_ms += static_cast<std::int64_t>(n * 1000 / telephony_rate_hz);
    }
}

void stream_pipeline::push_dtmf(char digit) {
    for (auto& p : chain_) {
        p->on_dtmf(digit, *output_);
    }
}

void stream_pipeline::push_mark(std::string_view name) {
    for (auto& p : chain_) {
        p->on_mark(name, *output_);
    }
}

void stream_pipeline::stop() {
    for (auto& p : chain_) {
        p->on_stop(*output_);
    }
}

} // namespace callstream::pipeline
