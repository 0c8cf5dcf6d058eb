#pragma once
// One call's audio path: caller μ-law in, resampling, processors, resampling, μ-law/marks/clears
// out.
//
// Two execution modes, chosen at construction:
//  - inline (options.dsp == nullptr, --dsp-threads 0): push_* process on the calling network
//    thread before they return.
//  - DSP (options.dsp set): push_* only copy the event into the stream's inbound SPSC ring and
//    wake the stream's DSP worker, which decodes, resamples, runs the processors, encodes and
//    fills the outbound SPSC ring; when that ring goes from empty to non-empty the worker calls
//    the output-ready callback once (one call per burst, not per frame).
//
// Threading: one network thread (the one that owns the call's WebSocket) calls everything here.
// Processors run on one thread at a time (the network thread inline, the stream's worker in DSP
// mode). The output-ready callback runs on the DSP worker: it must only hand off (asio::post to
// the WebSocket's executor, which then calls drain()) and must stay callable until the pipeline
// is destroyed, and once more while it is being destroyed (capture a weak_ptr to the session).
//
// Audio: 8 kHz μ-law in and out, 20 ms (160 byte) frames; payloads of other lengths are cut into
// up to 160-byte frames. Each processor gets audio at its rate_hz(): the caller's audio is
// converted once per distinct rate the chain needs, and each processor's output is converted
// back to 8 kHz by its own converter (never at 8 kHz; docs/pipeline.md has the delays).
//
// Backpressure: rings are bounded and nothing ever blocks. In DSP mode a worker whose outbound
// ring is nearly full (the last eighth is kept for marks and clears), or one of whose processors
// is backlogged() (the recorder's disk writer is behind), stops taking caller frames, which
// wait in the inbound ring until drain() or reading_paused() resumes it. The network thread
// asks reading_paused() after each push and stops reading the call's socket while it is true
// (a processor is backlogged, or the inbound ring is a quarter full), so TCP slows a sender
// that runs ahead of real time and nothing the call accepted is dropped. Only a full inbound
// ring drops (and counts, also in pipeline::stats().inbound_dropped) an event. Inline, and for
// output a processor emits beyond the outbound room (e.g. a prompt played ahead), outbound
// media is dropped and counted.
//
// Lifetime: the pipeline may be destroyed at any time, also while its worker still holds
// frames: the worker keeps the shared state alive until it has finished with it. Destroying a
// started pipeline without stop() stops it (processors get on_stop, e.g. to close a recording).

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>
#include <vector>

#include "pipeline/audio_frame.hpp"
#include "pipeline/processor.hpp"
#include "pipeline/resampler.hpp"
#include "pipeline/warm_lines.hpp"

namespace callstream::pipeline {

class dsp_pool;

struct outbound_event {
    enum class kind : std::uint8_t { media, mark, clear };
    static constexpr std::size_t max_mark_name = 256;

    kind type = kind::media;
    std::uint16_t size = 0; // μ-law bytes for media, name bytes for mark
    std::array<std::uint8_t, telephony_frame_samples> ulaw{};
    std::array<char, max_mark_name> name{};

    std::span<const std::uint8_t> media() const noexcept { return {ulaw.data(), size}; }
    std::string_view mark_name() const noexcept { return {name.data(), size}; }
};

// A snapshot; safe to take from the network thread while a worker runs.
struct pipeline_counters {
    std::uint64_t frames_in = 0;             // caller frames processed
    std::uint64_t frames_out = 0;            // μ-law frames queued for the caller
    std::uint64_t frames_dropped = 0;        // outbound media dropped: outbound ring full
    std::uint64_t control_dropped = 0;       // outbound marks/clears dropped: ring completely full
    std::uint64_t inbound_dropped = 0;       // DSP mode: events dropped, inbound ring full
    std::uint64_t rate_mismatch_dropped = 0; // frames sent at a rate other than 8 kHz or rate_hz()
    std::size_t inbound_depth = 0;           // events waiting for the worker now
    std::size_t outbound_depth = 0;          // events waiting for drain() now
    std::size_t inbound_capacity = 0;
    std::size_t outbound_capacity = 0;
};

struct pipeline_options {
    resampler_spec resampler{};        // default: default_resampler_spec
    dsp_pool* dsp = nullptr;           // null: inline mode. Must outlive the pipeline.
    std::size_t inbound_capacity = 64; // events (DSP mode): ~1.3 s of 20 ms frames
    // Events (~420 bytes each: ~54 KiB per stream at 128, plus ~28 KiB of inbound ring in DSP
    // mode): ~2.5 s of 20 ms frames. Play-style processors send up to ~1 s ahead.
    std::size_t outbound_capacity = 128;
};

class stream_pipeline {
  public:
    using processor_chain = std::vector<std::unique_ptr<processor>>;

    // Builds the converters each processor's rate_hz() needs (throws std::invalid_argument for
    // a rate outside 8/16/24/48 kHz). Takes ownership of the chain.
    explicit stream_pipeline(processor_chain chain, const pipeline_options& options = {});
    ~stream_pipeline();
    stream_pipeline(const stream_pipeline&) = delete;
    stream_pipeline& operator=(const stream_pipeline&) = delete;

    // DSP mode: called on the worker when outbound events appear (see the threading note).
    // Register before start(); never called in inline mode.
    void set_output_ready(std::function<void()> callback);

    void start(const stream_info& info);
    // One media payload (any length; Twilio sends 160 bytes) of μ-law at 8 kHz.
    void push_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms);
    // One media payload of the call's outbound track (receive-only streams with both tracks):
    // processors get it through on_outbound_track, in order with the caller's frames.
    void push_outbound_track(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms);
    void push_dtmf(char digit);
    // Twilio echoed our mark `name` (at most outbound_event::max_mark_name bytes are kept).
    void push_mark(std::string_view name);
    // Calls every processor's on_wake (in order with the push_* before it): a processor fed from
    // outside the caller's audio (the bridge) emits what arrived for it.
    void push_wake();
    // Ends the stream: processors get on_stop once (after the frames already queued, in DSP
    // mode). push_* after stop() are ignored.
    void stop();

    // Hands every pending outbound event to `sink` in order; returns how many. Call after each
    // push_* (inline mode produces output there) and whenever the output-ready callback fires.
    template <typename Sink> std::size_t drain(Sink&& sink) {
        using sink_type = std::remove_reference_t<Sink>;
        return drain_into(
            [](void* ctx, const outbound_event& ev) { (*static_cast<sink_type*>(ctx))(ev); },
            const_cast<void*>(static_cast<const void*>(std::addressof(sink))));
    }
    // Network thread, after each push_*: true while the stream should stop reading its socket
    // (a processor is backlogged, or in DSP mode the inbound ring is a quarter full). While it
    // is true, ask again every few milliseconds: a call also resumes a DSP worker that held
    // the caller's frames for a backlog that has since cleared. Lock-free, no allocation.
    bool reading_paused() noexcept;
    pipeline_counters counters() const noexcept;
    // counters().frames_dropped alone: one relaxed load, cheap enough to read per frame.
    std::uint64_t frames_dropped() const noexcept;

    bool dsp_mode() const noexcept;

    // The memory the next push_audio and drain touch on the calling (network) thread, for
    // prefetching (pipeline/warm_lines.hpp): add_hot_lines() the lines that stay put (call
    // after start()), add_next_frame_lines() the ones that move (after each drain).
    void add_hot_lines(warm_lines& lines) const noexcept;
    void add_next_frame_lines(warm_lines& lines) const noexcept;
    // Extra delay the resampling adds to a processor's echo (8 kHz -> rate -> 8 kHz), worst
    // over the chain; 0 when every processor runs at 8 kHz.
    double resample_delay_ms() const noexcept;

  private:
    struct core;
    void push_frames(bool outbound_track, std::span<const std::uint8_t> ulaw,
                     std::int64_t timestamp_ms);
    std::size_t drain_into(void (*sink)(void*, const outbound_event&), void* ctx);
    core* core_; // shared with the DSP worker: reference counted (dsp_task)
};

} // namespace callstream::pipeline
