#pragma once
// The `bridge` processor (app=bridge, chainable: app=record,bridge records both sides): the
// pipeline end of a call bridged to an upstream application over a WebSocket.
//
// Design: the upstream socket, its protocol and the pacing live on the server side
// (server/bridge/call_bridge.*, on the call's network thread), because pipeline/ has no network
// I/O and pacing needs timers. The caller's audio reaches the upstream from the media session
// directly, as the μ-law Twilio sent (no decode, no hop to a DSP thread: less latency per
// frame). What the upstream plays comes back through this processor, so it takes the same
// outbound path as every other processor's output: recorders see it in on_audio_sent, and a
// clear reaches Twilio in order with the audio before it.
//
// bridge_port is the hand-off: a bounded SPSC ring of paced events (20 ms μ-law frames, marks,
// clears). Producer: the server-side bridge, which pushes only frames already due (so the ring
// stays a few frames deep) and then calls stream_pipeline::push_wake(). Consumer: this processor
// on the stream's audio thread, in on_wake() and on_audio(). A full ring drops the event and
// counts it (frames_dropped / control_dropped); it never blocks.
//
// Calling thread: bridge_processor runs on the stream's audio thread (see processor.hpp); the
// push_* side of bridge_port on exactly one other thread at a time. Held by shared_ptr on both
// sides.

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>

#include "pipeline/processor.hpp"
#include "pipeline/spsc_ring.hpp"
#include "pipeline/stream_pipeline.hpp"
#include "pipeline/warm_lines.hpp"

namespace callstream::pipeline {

// One paced event for the caller: a 20 ms μ-law frame, a mark or a clear.
struct bridge_event {
    enum class kind : std::uint8_t { media, mark, clear };
    kind type = kind::media;
    std::uint16_t size = 0; // mark name bytes
    std::array<std::uint8_t, telephony_frame_samples> ulaw{};
    std::array<char, outbound_event::max_mark_name> name{};
};

class bridge_port {
  public:
    using event = bridge_event;
    static constexpr std::size_t capacity = 64;

    bridge_port() : ring_(capacity) {}

    // Producer side. false: ring full, event dropped and counted.
    bool push_media(std::span<const std::uint8_t, telephony_frame_samples> ulaw);
    bool push_mark(std::string_view name); // names over max_mark_name bytes are refused
    bool push_clear();
    // The producer's lines for prefetching (pipeline/warm_lines.hpp): the ring's indices (stay
    // put) and the slot the next push fills (moves: add it again after each push).
    void add_hot_lines(warm_lines& lines) const noexcept { lines.add(&ring_, sizeof ring_); }
    void add_next_push_lines(warm_lines& lines) const noexcept {
        lines.add(ring_.next_push_slot(), offsetof(event, ulaw) + telephony_frame_samples);
    }

    // Consumer side: hands every queued event to `consume(const event&)`, in order.
    template <typename Consume> std::size_t consume(Consume&& consume) {
        return ring_.consume_all([&](event& ev) { consume(static_cast<const event&>(ev)); });
    }

    std::uint64_t frames_dropped() const noexcept {
        return frames_dropped_.load(std::memory_order_relaxed);
    }
    std::uint64_t control_dropped() const noexcept {
        return control_dropped_.load(std::memory_order_relaxed);
    }

  private:
    spsc_ring<event> ring_;
    std::atomic<std::uint64_t> frames_dropped_{0};
    std::atomic<std::uint64_t> control_dropped_{0};
};

class bridge_processor final : public processor {
  public:
    explicit bridge_processor(std::shared_ptr<bridge_port> port) : port_(std::move(port)) {}

    // The caller's audio goes upstream from the server side; here it only gives the port a
    // chance to empty, in case a wake was lost to a full inbound ring.
    void on_audio(const audio_frame& /*in*/, processor_output& out) override { emit(out); }
    void on_wake(processor_output& out) override { emit(out); }

  private:
    void emit(processor_output& out);

    std::shared_ptr<bridge_port> port_;
};

} // namespace callstream::pipeline
