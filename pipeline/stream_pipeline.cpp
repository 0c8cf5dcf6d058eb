#include "pipeline/stream_pipeline.hpp"

#include <algorithm>
#include <atomic>
#include <cassert>
#include <cstddef>
#include <cstring>
#include <optional>

#include "codec/g711.hpp"
#include "pipeline/dsp_pool.hpp"
#include "pipeline/pipeline_stats.hpp"
#include "pipeline/scratch_frames.hpp"
#include "pipeline/spsc_ring.hpp"

namespace callstream::pipeline {

namespace {

// What the network thread hands a DSP worker: one caller frame, an outbound-track frame, a
// digit or a mark echo.
struct inbound_event {
    enum class kind : std::uint8_t { audio, dtmf, mark, outbound_track, wake };
    kind type = kind::audio;
    char digit = 0;
    std::uint16_t size = 0; // μ-law bytes or mark name bytes
    std::int64_t timestamp_ms = 0;
    std::array<std::uint8_t, telephony_frame_samples> ulaw{};
    std::array<char, outbound_event::max_mark_name> name{};
};

using counter = std::atomic<std::uint64_t>;

} // namespace

// Everything a stream's processing needs. In DSP mode it is shared by the pipeline (network
// thread: push side of `inbound`, pop side of `outbound`) and the worker (the other two sides,
// and all processing); the reference count keeps it alive for whichever lets go last.
struct stream_pipeline::core final : dsp_task {
    // Where processor i's output goes: knows i so that its audio uses i's own converter.
    class output final : public processor_output {
      public:
        output(core& owner, std::size_t index) : owner_(owner), index_(index) {}
        void send_audio(const audio_frame& frame) override { owner_.emit_audio(index_, frame); }
        void send_mark(std::string_view name) override { owner_.emit_mark(name); }
        void send_clear() override { owner_.emit_clear(); }

      private:
        core& owner_;
        std::size_t index_;
    };

    // One up-converter per distinct processor rate, shared by the processors at that rate.
    struct rate_path {
        std::uint32_t rate_hz = 0;
        std::unique_ptr<resampler> up;
        audio_frame frame;
    };

    core(processor_chain chain, const pipeline_options& options)
        : chain_(std::move(chain)), dsp_(options.dsp), outbound_(options.outbound_capacity),
          control_reserve_(std::max<std::size_t>(1, outbound_.capacity() / 8)) {
        if (dsp_ != nullptr) {
            inbound_.emplace(options.inbound_capacity);
            worker_ = dsp_->assign();
        }
        outputs_.reserve(chain_.size());
        down_.resize(chain_.size());
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            outputs_.emplace_back(*this, i);
            const std::uint32_t rate_hz = chain_[i]->rate_hz();
            if (!is_supported_rate(rate_hz)) {
                throw std::invalid_argument("processor rate " + std::to_string(rate_hz) +
                                            " Hz is not 8000, 16000, 24000 or 48000");
            }
            if (rate_hz == telephony_rate_hz) {
                continue; // never resample a processor that runs at 8 kHz
            }
            down_[i] = make_resampler(options.resampler, rate_hz, telephony_rate_hz);
            if (std::none_of(paths_.begin(), paths_.end(),
                             [&](const rate_path& p) { return p.rate_hz == rate_hz; })) {
                rate_path& p = paths_.emplace_back();
                p.rate_hz = rate_hz;
                p.up = make_resampler(options.resampler, telephony_rate_hz, rate_hz);
                p.frame.rate_hz = rate_hz;
            }
        }
    }

    // ---- processing (network thread inline, the worker in DSP mode) --------------------

    void do_start() {
        for (auto& p : paths_) {
            p.up->reset();
        }
        for (auto& d : down_) {
            if (d) {
                d->reset();
            }
        }
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_start(info_, outputs_[i]);
        }
    }

    void do_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
        audio_frame& frame = thread_scratch_frames().caller;
        frame.count = static_cast<std::uint16_t>(ulaw.size());
        frame.rate_hz = telephony_rate_hz;
        frame.timestamp_ms = timestamp_ms;
        codec::ulaw_decode(ulaw, frame.pcm());
        frames_in_.fetch_add(1, std::memory_order_relaxed);
        for (auto& p : paths_) {
            const std::size_t n = p.up->process(frame.pcm(), p.frame.samples);
            p.frame.count = static_cast<std::uint16_t>(n);
            p.frame.timestamp_ms = timestamp_ms;
        }
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_audio(frame_for(chain_[i]->rate_hz(), frame), outputs_[i]);
        }
    }

    void do_outbound_track(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
        audio_frame& track = thread_scratch_frames().track;
        track.count = static_cast<std::uint16_t>(ulaw.size());
        track.rate_hz = telephony_rate_hz;
        track.timestamp_ms = timestamp_ms;
        codec::ulaw_decode(ulaw, track.pcm());
        for (auto& p : chain_) {
            p->on_outbound_track(track);
        }
    }

    // The caller's frame at `rate_hz`: `at_8k` itself, or its resampled copy.
    const audio_frame& frame_for(std::uint32_t rate_hz, const audio_frame& at_8k) const noexcept {
        for (const auto& p : paths_) {
            if (p.rate_hz == rate_hz) {
                return p.frame;
            }
        }
        return at_8k;
    }

    void do_dtmf(char digit) {
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_dtmf(digit, outputs_[i]);
        }
    }

    void do_wake() {
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_wake(outputs_[i]);
        }
    }

    void do_mark(std::string_view name) {
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_mark(name, outputs_[i]);
        }
    }

    void do_stop() {
        for (std::size_t i = 0; i < chain_.size(); ++i) {
            chain_[i]->on_stop(outputs_[i]);
        }
    }

    // ---- output (same thread as processing) --------------------------------------------

    void emit_audio(std::size_t index, const audio_frame& frame) {
        std::span<const std::int16_t> pcm = frame.pcm();
        if (frame.rate_hz != telephony_rate_hz) {
            resampler* down = down_[index].get();
            if (down == nullptr || down->input_rate_hz() != frame.rate_hz) {
                rate_mismatch_dropped_.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            audio_frame& down_frame = thread_scratch_frames().down;
            const std::size_t n = down->process(pcm, down_frame.samples);
            pcm = std::span<const std::int16_t>(down_frame.samples.data(), n);
        }
        while (!pcm.empty()) {
            const std::size_t n = std::min(pcm.size(), telephony_frame_samples);
            // Media may not take the slots kept for marks and clears.
            if (outbound_.producer_size() + control_reserve_ >= outbound_.capacity()) {
                frames_dropped_.fetch_add(1, std::memory_order_relaxed);
                return;
            }
            outbound_event* ev = outbound_.begin_push();
            ev->type = outbound_event::kind::media;
            ev->size = static_cast<std::uint16_t>(n);
            codec::ulaw_encode(pcm.first(n), ev->ulaw);
            outbound_.commit_push();
            frames_out_.fetch_add(1, std::memory_order_relaxed);
            output_added();
            audio_frame& sent = thread_scratch_frames().sent;
            sent.count = static_cast<std::uint16_t>(n);
            sent.rate_hz = telephony_rate_hz;
            sent.timestamp_ms = frame.timestamp_ms;
            std::copy_n(pcm.begin(), n, sent.samples.begin());
            for (auto& p : chain_) {
                p->on_audio_sent(sent);
            }
            pcm = pcm.subspan(n);
        }
    }

    void emit_mark(std::string_view name) {
        const bool ok = outbound_.try_push_with([&](outbound_event& ev) {
            ev.type = outbound_event::kind::mark;
            ev.size =
                static_cast<std::uint16_t>(std::min(name.size(), outbound_event::max_mark_name));
            std::memcpy(ev.name.data(), name.data(), ev.size);
        });
        control_pushed(ok);
    }

    void emit_clear() {
        // The caller will not hear what was queued: do not let its tail leak into new audio.
        for (auto& d : down_) {
            if (d) {
                d->reset();
            }
        }
        const bool ok = outbound_.try_push_with([](outbound_event& ev) {
            ev.type = outbound_event::kind::clear;
            ev.size = 0;
        });
        control_pushed(ok);
    }

    void control_pushed(bool ok) {
        if (!ok) {
            control_dropped_.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        output_added();
    }

    // DSP mode: wake the network side once per burst (the flag is cleared by drain()).
    void output_added() {
        if (dsp_ == nullptr || notify_pending_.exchange(true, std::memory_order_acq_rel)) {
            return;
        }
        if (output_ready_ && !detached_.load(std::memory_order_acquire)) {
            output_ready_();
        }
    }

    // ---- DSP worker --------------------------------------------------------------------

    void run() noexcept override {
        if (start_pending_.exchange(false, std::memory_order_acq_rel)) {
            do_start();
        }
        drain_inbound();
        if (!stopped_ && stop_pending_.load(std::memory_order_acquire)) {
            drain_inbound(true); // anything pushed before stop() is visible now
            stopped_ = true;
            do_stop();
        }
    }

    // Room for what one more caller frame can produce: one frame per processor, plus the slots
    // kept for marks and clears.
    bool outbound_has_room() noexcept {
        return outbound_.producer_size() + control_reserve_ + chain_.size() < outbound_.capacity();
    }

    // Any thread: a processor's consumer (the recorder's disk writer) is behind.
    bool chain_backlogged() const noexcept {
        return std::any_of(chain_.begin(), chain_.end(),
                           [](const std::unique_ptr<processor>& p) { return p->backlogged(); });
    }

    // `force` (at stop) processes everything; output that finds no room is dropped and counted.
    void drain_inbound(bool force = false) {
        // Backpressure instead of loss: when the network side has not drained our output, the
        // caller's frames wait in the inbound ring; drain() schedules this task again.
        while (inbound_event* ev_ptr = inbound_->front()) {
            const bool audio = ev_ptr->type == inbound_event::kind::audio ||
                               ev_ptr->type == inbound_event::kind::outbound_track;
            if (!force && !stopped_ && audio) {
                if (!outbound_has_room()) {
                    // drain_into() reschedules us once it has made room and sees frames waiting.
                    return;
                }
                if (chain_backlogged()) {
                    // reading_paused() reschedules us once the backlog has cleared.
                    held_for_backlog_.store(true, std::memory_order_release);
                    return;
                }
            }
            process_inbound(*ev_ptr);
            inbound_->pop_front();
        }
    }

    void process_inbound(inbound_event& ev) {
        {
            if (stopped_) {
                return; // after on_stop nothing more reaches the processors
            }
            switch (ev.type) {
            case inbound_event::kind::audio:
                do_audio({ev.ulaw.data(), ev.size}, ev.timestamp_ms);
                break;
            case inbound_event::kind::dtmf:
                do_dtmf(ev.digit);
                break;
            case inbound_event::kind::mark:
                do_mark({ev.name.data(), ev.size});
                break;
            case inbound_event::kind::outbound_track:
                do_outbound_track({ev.ulaw.data(), ev.size}, ev.timestamp_ms);
                break;
            case inbound_event::kind::wake:
                do_wake();
                break;
            }
        }
    }

    void schedule() { dsp_->schedule(worker_, *this); }

    void inbound_full() noexcept {
        inbound_dropped_.fetch_add(1, std::memory_order_relaxed);
        stats().inbound_dropped.fetch_add(1, std::memory_order_relaxed);
    }

    // ---- state -------------------------------------------------------------------------

    processor_chain chain_;
    std::vector<output> outputs_;
    std::vector<rate_path> paths_;
    std::vector<std::unique_ptr<resampler>> down_; // per processor; null at 8 kHz

    dsp_pool* dsp_ = nullptr;
    std::size_t worker_ = 0;
    std::optional<spsc_ring<inbound_event>> inbound_; // DSP mode only
    spsc_ring<outbound_event> outbound_;
    std::size_t control_reserve_;

    stream_info info_; // written before start is published, read by the processing thread
    std::function<void()> output_ready_;
    std::atomic<bool> notify_pending_{false};
    std::atomic<bool> start_pending_{false};
    std::atomic<bool> stop_pending_{false};
    std::atomic<bool> detached_{false};
    std::atomic<bool> held_for_backlog_{false}; // the worker stopped for a backlogged processor
    bool stopped_ = false;                      // processing thread only
    bool started_ = false;                      // network thread only
    bool stop_called_ = false;                  // network thread only

    counter frames_in_{0};
    counter frames_out_{0};
    counter frames_dropped_{0};
    counter control_dropped_{0};
    counter inbound_dropped_{0};
    counter rate_mismatch_dropped_{0};
};

stream_pipeline::stream_pipeline(processor_chain chain, const pipeline_options& options)
    : core_(new core(std::move(chain), options)) {}

stream_pipeline::~stream_pipeline() {
    if (core_->started_ && !core_->stop_called_) {
        stop();
    }
    core_->detached_.store(true, std::memory_order_release);
    core_->release(); // the worker may still hold a reference and finish queued work
}

void stream_pipeline::set_output_ready(std::function<void()> callback) {
    assert(!core_->started_ && "register the callback before start()");
    core_->output_ready_ = std::move(callback);
}

bool stream_pipeline::dsp_mode() const noexcept {
    return core_->dsp_ != nullptr;
}

void stream_pipeline::start(const stream_info& info) {
    core_->started_ = true;
    core_->info_ = info;
    if (!dsp_mode()) {
        core_->do_start();
        return;
    }
    core_->start_pending_.store(true, std::memory_order_release);
    core_->schedule();
}

void stream_pipeline::push_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
    push_frames(false, ulaw, timestamp_ms);
}

void stream_pipeline::push_outbound_track(std::span<const std::uint8_t> ulaw,
                                          std::int64_t timestamp_ms) {
    push_frames(true, ulaw, timestamp_ms);
}

void stream_pipeline::push_frames(bool outbound_track, std::span<const std::uint8_t> ulaw,
                                  std::int64_t timestamp_ms) {
    if (core_->stop_called_) {
        return;
    }
    bool queued = false;
    while (!ulaw.empty()) {
        const std::size_t n = std::min(ulaw.size(), telephony_frame_samples);
        if (!dsp_mode()) {
            if (outbound_track) {
                core_->do_outbound_track(ulaw.first(n), timestamp_ms);
            } else {
                core_->do_audio(ulaw.first(n), timestamp_ms);
            }
        } else if (core_->inbound_->try_push_with([&](inbound_event& ev) {
                       ev.type = outbound_track ? inbound_event::kind::outbound_track
                                                : inbound_event::kind::audio;
                       ev.size = static_cast<std::uint16_t>(n);
                       ev.timestamp_ms = timestamp_ms;
                       std::memcpy(ev.ulaw.data(), ulaw.data(), n);
                   })) {
            queued = true;
        } else {
            core_->inbound_full();
        }
        ulaw = ulaw.subspan(n);
        timestamp_ms += static_cast<std::int64_t>(n * 1000 / telephony_rate_hz);
    }
    if (queued) {
        core_->schedule();
    }
}

void stream_pipeline::push_dtmf(char digit) {
    if (core_->stop_called_) {
        return;
    }
    if (!dsp_mode()) {
        core_->do_dtmf(digit);
        return;
    }
    if (core_->inbound_->try_push_with([&](inbound_event& ev) {
            ev.type = inbound_event::kind::dtmf;
            ev.digit = digit;
        })) {
        core_->schedule();
    } else {
        core_->inbound_full();
    }
}

void stream_pipeline::push_mark(std::string_view name) {
    if (core_->stop_called_) {
        return;
    }
    if (!dsp_mode()) {
        core_->do_mark(name);
        return;
    }
    if (core_->inbound_->try_push_with([&](inbound_event& ev) {
            ev.type = inbound_event::kind::mark;
            ev.size =
                static_cast<std::uint16_t>(std::min(name.size(), outbound_event::max_mark_name));
            std::memcpy(ev.name.data(), name.data(), ev.size);
        })) {
        core_->schedule();
    } else {
        core_->inbound_full();
    }
}

void stream_pipeline::push_wake() {
    if (core_->stop_called_ || !core_->started_) {
        return;
    }
    if (!dsp_mode()) {
        core_->do_wake();
        return;
    }
    if (core_->inbound_->try_push_with(
            [](inbound_event& ev) { ev.type = inbound_event::kind::wake; })) {
        core_->schedule();
    } else {
        core_->inbound_dropped_.fetch_add(1, std::memory_order_relaxed);
    }
}

void stream_pipeline::stop() {
    if (core_->stop_called_) {
        return;
    }
    core_->stop_called_ = true;
    if (!dsp_mode()) {
        core_->stopped_ = true;
        core_->do_stop();
        return;
    }
    // A flag rather than a ring entry, so a full ring cannot lose the stop.
    core_->stop_pending_.store(true, std::memory_order_release);
    core_->schedule();
}

std::size_t stream_pipeline::drain_into(void (*sink)(void*, const outbound_event&), void* ctx) {
    // Clear before draining: output added from now on posts a new wake-up.
    core_->notify_pending_.exchange(false, std::memory_order_acq_rel);
    const std::size_t n =
        core_->outbound_.consume_all([&](const outbound_event& ev) { sink(ctx, ev); });
    // The worker may have stopped taking caller frames because this ring was full: now that
    // there is room, run it if frames wait (scheduling a queued or running task is cheap, and a
    // task scheduled while it runs runs again, so no pause is missed).
    if (n > 0 && core_->inbound_ && core_->inbound_->size_approx() > 0) {
        core_->schedule();
    }
    return n;
}

bool stream_pipeline::reading_paused() noexcept {
    core& c = *core_;
    const bool backlogged = c.chain_backlogged();
    if (!c.inbound_) {
        return backlogged;
    }
    if (!backlogged && c.held_for_backlog_.exchange(false, std::memory_order_acq_rel)) {
        c.schedule(); // the worker left caller frames waiting for a backlog that has cleared
    }
    return backlogged || c.inbound_->size_approx() >= c.inbound_->capacity() / 4;
}

pipeline_counters stream_pipeline::counters() const noexcept {
    const core& c = *core_;
    pipeline_counters out;
    out.frames_in = c.frames_in_.load(std::memory_order_relaxed);
    out.frames_out = c.frames_out_.load(std::memory_order_relaxed);
    out.frames_dropped = c.frames_dropped_.load(std::memory_order_relaxed);
    out.control_dropped = c.control_dropped_.load(std::memory_order_relaxed);
    out.inbound_dropped = c.inbound_dropped_.load(std::memory_order_relaxed);
    out.rate_mismatch_dropped = c.rate_mismatch_dropped_.load(std::memory_order_relaxed);
    out.inbound_depth = c.inbound_ ? c.inbound_->size_approx() : 0;
    out.inbound_capacity = c.inbound_ ? c.inbound_->capacity() : 0;
    out.outbound_depth = c.outbound_.size_approx();
    out.outbound_capacity = c.outbound_.capacity();
    return out;
}

// What a frame reaches: the core's head (chain, outputs, flags), the chain's processors, the
// rings' indices, the counters (the frames it is decoded into are the thread's).
void stream_pipeline::add_hot_lines(warm_lines& lines) const noexcept {
    const core& c = *core_;
    lines.add(&c, sizeof(dsp_task) + sizeof c.chain_ + sizeof c.outputs_);
    lines.add(c.chain_.data(), c.chain_.size() * sizeof c.chain_[0]);
    lines.add(c.outputs_.data(), c.outputs_.size() * sizeof c.outputs_[0]);
    for (const auto& p : c.chain_) {
        lines.add(p.get());
    }
    lines.add(&c.dsp_, sizeof c.dsp_ + sizeof c.worker_);
    lines.add(&c.outbound_, sizeof c.outbound_ + sizeof c.control_reserve_);
    lines.add_range(&c.stopped_, &c.stop_called_ + 1);
    lines.add(&c.frames_in_, 2 * sizeof c.frames_in_);
}

// The outbound slot the next caller frame's echo (or a processor's output) is written into.
void stream_pipeline::add_next_frame_lines(warm_lines& lines) const noexcept {
    const outbound_event* slot = core_->outbound_.next_push_slot();
    lines.add(slot, offsetof(outbound_event, ulaw) + telephony_frame_samples);
}

std::uint64_t stream_pipeline::frames_dropped() const noexcept {
    return core_->frames_dropped_.load(std::memory_order_relaxed);
}

double stream_pipeline::resample_delay_ms() const noexcept {
    double worst = 0.0;
    for (std::size_t i = 0; i < core_->down_.size(); ++i) {
        const resampler* down = core_->down_[i].get();
        if (down == nullptr) {
            continue;
        }
        for (const auto& p : core_->paths_) {
            if (p.rate_hz == down->input_rate_hz()) {
                worst = std::max(worst, round_trip_delay_samples(*p.up, *down) * 1000.0 /
                                            telephony_rate_hz);
            }
        }
    }
    return worst;
}

} // namespace callstream::pipeline
