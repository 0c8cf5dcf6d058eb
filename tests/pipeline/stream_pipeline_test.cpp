#include <atomic>
#include <chrono>
#include <cmath>
#include <memory>
#include <numbers>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "pipeline/dsp_pool.hpp"
#include "pipeline/processor_factory.hpp"
#include "pipeline/processors/echo.hpp"
#include "pipeline/stream_pipeline.hpp"
#include "tests/pipeline/wait_until.hpp"

namespace callstream::pipeline {
namespace {

using bytes = std::vector<std::uint8_t>;

using callstream::test::wait_until;

// μ-law frames of a tone; byte 0x7F (negative zero, the one code that does not survive a
// decode/encode round trip) is avoided so an 8 kHz echo must return the bytes unchanged.
std::vector<bytes> tone_frames(std::size_t frames, double freq_hz, std::uint8_t salt = 0) {
    std::vector<bytes> out;
    std::size_t n = 0;
    for (std::size_t f = 0; f < frames; ++f) {
        bytes frame(telephony_frame_samples);
        for (auto& b : frame) {
            const double v = 12000.0 * std::sin(2.0 * std::numbers::pi * freq_hz *
                                                static_cast<double>(n++) / 8000.0);
            b = codec::linear_to_ulaw(static_cast<std::int16_t>(std::lround(v) + salt));
            if (b == 0x7F) {
                b = 0xFF;
            }
        }
        out.push_back(std::move(frame));
    }
    return out;
}

stream_pipeline::processor_chain echo_chain() {
    stream_pipeline::processor_chain chain;
    chain.push_back(std::make_unique<echo_processor>());
    return chain;
}

// Concatenated media bytes (and everything else as a marker byte sequence).
struct collector {
    bytes media;
    std::vector<std::string> marks;
    std::size_t clears = 0;
    void operator()(const outbound_event& ev) {
        switch (ev.type) {
        case outbound_event::kind::media:
            media.insert(media.end(), ev.media().begin(), ev.media().end());
            break;
        case outbound_event::kind::mark:
            marks.emplace_back(ev.mark_name());
            break;
        case outbound_event::kind::clear:
            ++clears;
            break;
        }
    }
};

bytes flatten(const std::vector<bytes>& frames) {
    bytes all;
    for (const auto& f : frames) {
        all.insert(all.end(), f.begin(), f.end());
    }
    return all;
}

TEST(stream_pipeline, inline_echo_at_8k_returns_the_same_ulaw_bytes) {
    stream_pipeline p(echo_chain());
    EXPECT_FALSE(p.dsp_mode());
    EXPECT_EQ(p.resample_delay_ms(), 0.0) << "an 8 kHz chain is never resampled";
    p.start({});
    const auto frames = tone_frames(50, 440.0);
    collector out;
    for (std::size_t i = 0; i < frames.size(); ++i) {
        p.push_audio(frames[i], static_cast<std::int64_t>(i * 20));
        EXPECT_EQ(p.drain(out), 1U) << "inline: the echo is there when push_audio returns";
    }
    EXPECT_EQ(out.media, flatten(frames));
    EXPECT_EQ(p.counters().frames_in, 50U);
    EXPECT_EQ(p.counters().frames_out, 50U);
}

TEST(stream_pipeline, echo_through_dsp_workers_equals_inline_byte_for_byte) {
    const auto frames = tone_frames(300, 1000.0);
    const auto run = [&](dsp_pool* pool, std::uint32_t rate_hz) {
        struct echo_at final : processor {
            explicit echo_at(std::uint32_t r) : rate(r) {}
            std::uint32_t rate;
            std::uint32_t rate_hz() const noexcept override { return rate; }
            void on_audio(const audio_frame& in, processor_output& out) override {
                out.send_audio(in);
            }
        };
        stream_pipeline::processor_chain chain;
        chain.push_back(std::make_unique<echo_at>(rate_hz));
        pipeline_options options;
        options.dsp = pool;
        options.inbound_capacity = 512;
        options.outbound_capacity = 512;
        stream_pipeline p(std::move(chain), options);
        std::atomic<int> wakes{0};
        p.set_output_ready([&] { wakes.fetch_add(1); });
        p.start({});
        collector out;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            p.push_audio(frames[i], static_cast<std::int64_t>(i * 20));
            p.drain(out);
        }
        EXPECT_TRUE(wait_until([&] {
            p.drain(out);
            return out.media.size() >= frames.size() * telephony_frame_samples;
        }));
        if (pool != nullptr) {
            EXPECT_GE(wakes.load(), 1);
            EXPECT_LE(wakes.load(), static_cast<int>(frames.size()));
        } else {
            EXPECT_EQ(wakes.load(), 0) << "inline mode never calls the callback";
        }
        EXPECT_EQ(p.counters().frames_dropped + p.counters().inbound_dropped, 0U);
        return out.media;
    };
    dsp_pool pool(2);
    for (const std::uint32_t rate_hz : {8000U, 16000U, 48000U}) {
        const bytes inline_out = run(nullptr, rate_hz);
        const bytes dsp_out = run(&pool, rate_hz);
        EXPECT_EQ(inline_out.size(), flatten(frames).size());
        EXPECT_EQ(dsp_out, inline_out) << rate_hz;
        if (rate_hz == 8000) {
            EXPECT_EQ(dsp_out, flatten(frames));
        }
    }
}

// A processor at 16 kHz: the pipeline up-converts the caller and down-converts the echo; the
// echo matches the caller once shifted by the reported delay (to μ-law's own precision).
TEST(stream_pipeline, echo_at_16k_lines_up_with_the_caller_after_the_resample_delay) {
    struct echo16 final : processor {
        std::atomic<int> bad_frames{0};
        std::uint32_t rate_hz() const noexcept override { return 16000; }
        void on_audio(const audio_frame& in, processor_output& out) override {
            if (in.rate_hz != 16000 || in.count != 320) {
                bad_frames.fetch_add(1);
            }
            out.send_audio(in);
        }
    };
    for (const char* spec : {"speex:3", "libsamplerate:sinc-medium"}) {
        stream_pipeline::processor_chain chain;
        auto proc = std::make_unique<echo16>();
        echo16* raw = proc.get();
        chain.push_back(std::move(proc));
        pipeline_options options;
        options.resampler = parse_resampler_spec(spec).spec;
        stream_pipeline p(std::move(chain), options);
        const double delay_ms = p.resample_delay_ms();
        EXPECT_GT(delay_ms, 0.5);
        p.start({});
        const auto frames = tone_frames(100, 700.0);
        collector out;
        for (std::size_t i = 0; i < frames.size(); ++i) {
            p.push_audio(frames[i], static_cast<std::int64_t>(i * 20));
            p.drain(out);
        }
        EXPECT_EQ(raw->bad_frames.load(), 0);
        const bytes in = flatten(frames);
        ASSERT_EQ(out.media.size(), in.size());
        const auto shift = static_cast<std::size_t>(std::lround(delay_ms * 8.0));
        double signal = 0, noise = 0;
        for (std::size_t i = 400; i + shift < in.size(); ++i) {
            const double x = codec::ulaw_to_linear(in[i]);
            const double e = codec::ulaw_to_linear(out.media[i + shift]) - x;
            signal += x * x;
            noise += e * e;
        }
        const double snr_db = 10.0 * std::log10(signal / noise);
        std::printf("%s: 16 kHz echo delay %.3f ms, SNR after realignment %.1f dB\n", spec,
                    delay_ms, snr_db);
        EXPECT_GE(snr_db, 25.0) << spec; // two μ-law quantisations (~35 dB each) dominate
    }
}

TEST(stream_pipeline, each_processor_gets_audio_at_its_own_rate) {
    struct probe final : processor {
        explicit probe(std::uint32_t r) : rate(r) {}
        std::uint32_t rate;
        std::atomic<int> frames{0};
        std::atomic<int> wrong{0};
        std::atomic<int> sent{0};
        std::uint32_t rate_hz() const noexcept override { return rate; }
        void on_audio(const audio_frame& in, processor_output&) override {
            frames.fetch_add(1);
            if (in.rate_hz != rate || in.count != rate / 50) {
                wrong.fetch_add(1);
            }
        }
        void on_audio_sent(const audio_frame& f) override {
            if (f.rate_hz == 8000 && f.count == 160) {
                sent.fetch_add(1);
            }
        }
    };
    stream_pipeline::processor_chain chain;
    std::vector<probe*> probes;
    for (const std::uint32_t r : {8000U, 16000U, 24000U, 48000U, 16000U}) {
        auto p = std::make_unique<probe>(r);
        probes.push_back(p.get());
        chain.push_back(std::move(p));
    }
    chain.push_back(std::make_unique<echo_processor>());
    stream_pipeline p(std::move(chain));
    p.start({});
    for (const auto& f : tone_frames(10, 300.0)) {
        p.push_audio(f, 0);
    }
    for (probe* pr : probes) {
        EXPECT_EQ(pr->frames.load(), 10);
        EXPECT_EQ(pr->wrong.load(), 0) << pr->rate;
        EXPECT_EQ(pr->sent.load(), 10) << "every processor hears what the call sent";
    }
}

TEST(stream_pipeline, unsupported_processor_rate_is_refused_at_construction) {
    struct odd final : processor {
        std::uint32_t rate_hz() const noexcept override { return 44100; }
        void on_audio(const audio_frame&, processor_output&) override {}
    };
    stream_pipeline::processor_chain chain;
    chain.push_back(std::make_unique<odd>());
    EXPECT_THROW(stream_pipeline{std::move(chain)}, std::invalid_argument);
}

// Counts what reaches it, on whichever thread runs it; shared with the test so it outlives
// the pipeline (the worker may destroy the processor after the pipeline is gone).
struct tally {
    std::atomic<int> started{0};
    std::atomic<int> frames{0};
    std::atomic<int> frames_after_stop{0};
    std::atomic<int> stops{0};
    std::atomic<int> dtmf{0};
    std::atomic<int> marks{0};
    std::atomic<bool> hold{false}; // while set, on_audio stalls the worker
    std::atomic<int> entered{0};   // on_audio calls begun
};

struct counting_processor final : processor {
    explicit counting_processor(std::shared_ptr<tally> t) : t_(std::move(t)) {}
    void on_start(const stream_info& info, processor_output& out) override {
        t_->started.fetch_add(1);
        out.send_mark(info.parameter("greeting", "hello"));
    }
    void on_audio(const audio_frame& in, processor_output& out) override {
        t_->entered.fetch_add(1);
        while (t_->hold.load()) {
            std::this_thread::yield();
        }
        (t_->stops.load() > 0 ? t_->frames_after_stop : t_->frames).fetch_add(1);
        out.send_audio(in);
    }
    void on_dtmf(char, processor_output& out) override {
        t_->dtmf.fetch_add(1);
        out.send_clear();
    }
    void on_mark(std::string_view, processor_output&) override { t_->marks.fetch_add(1); }
    void on_stop(processor_output&) override { t_->stops.fetch_add(1); }
    std::shared_ptr<tally> t_;
};

stream_pipeline::processor_chain counting_chain(const std::shared_ptr<tally>& t) {
    stream_pipeline::processor_chain chain;
    chain.push_back(std::make_unique<counting_processor>(t));
    return chain;
}

// 200 streams on 2 workers, fed by 2 producer threads that each own (and drain) 100 streams,
// as network threads do. With rings large enough nothing is lost and every stream's echo is
// its own audio, in order.
TEST(stream_pipeline, dsp_mode_200_streams_2_workers_2_producers_lose_nothing) {
    dsp_pool pool(2);
    constexpr std::size_t streams_per_producer = 100;
#if defined(__SANITIZE_THREAD__)
    constexpr std::size_t frames_per_stream = 40;
#else
    constexpr std::size_t frames_per_stream = 100;
#endif
    std::atomic<int> failures{0};
    std::atomic<std::uint64_t> wakeups{0};
    const auto producer = [&](std::uint8_t id) {
        struct stream {
            std::unique_ptr<stream_pipeline> pipeline;
            std::vector<bytes> frames;
            collector out;
            std::shared_ptr<tally> t = std::make_shared<tally>();
        };
        std::vector<stream> s(streams_per_producer);
        for (std::size_t i = 0; i < s.size(); ++i) {
            pipeline_options options;
            options.dsp = &pool;
            options.inbound_capacity = frames_per_stream + 4;
            options.outbound_capacity = 2 * frames_per_stream + 8;
            s[i].pipeline = std::make_unique<stream_pipeline>(counting_chain(s[i].t), options);
            s[i].pipeline->set_output_ready([&] { wakeups.fetch_add(1); });
            s[i].frames = tone_frames(frames_per_stream, 200.0 + static_cast<double>(i) * 10.0,
                                      static_cast<std::uint8_t>(id * 7));
            stream_info info;
            info.custom_parameters = {
                {"greeting", "s" + std::to_string(id) + "-" + std::to_string(i)}};
            s[i].pipeline->start(info);
        }
        for (std::size_t f = 0; f < frames_per_stream; ++f) {
            for (auto& st : s) {
                st.pipeline->push_audio(st.frames[f], static_cast<std::int64_t>(f * 20));
            }
            for (auto& st : s) {
                st.pipeline->drain(st.out);
            }
        }
        for (auto& st : s) {
            st.pipeline->push_dtmf('5');
            st.pipeline->stop();
        }
        for (std::size_t i = 0; i < s.size(); ++i) {
            auto& st = s[i];
            const bool done = wait_until([&] {
                st.pipeline->drain(st.out);
                return st.t->stops.load() == 1;
            });
            st.pipeline->drain(st.out);
            const auto c = st.pipeline->counters();
            const bool ok =
                done && st.out.media == flatten(st.frames) && st.out.marks.size() == 1 &&
                st.out.marks[0] == "s" + std::to_string(id) + "-" + std::to_string(i) &&
                st.out.clears == 1 && st.t->started.load() == 1 && st.t->dtmf.load() == 1 &&
                c.frames_in == frames_per_stream && c.frames_out == frames_per_stream &&
                c.frames_dropped == 0 && c.inbound_dropped == 0 && c.control_dropped == 0;
            if (!ok) {
                failures.fetch_add(1);
            }
        }
    };
    std::thread a(producer, std::uint8_t{1});
    std::thread b(producer, std::uint8_t{2});
    a.join();
    b.join();
    EXPECT_EQ(failures.load(), 0);
    const auto pc = pool.counters();
    std::printf("200 streams: %llu task runs, %llu worker wake-ups, %llu output wake-ups\n",
                static_cast<unsigned long long>(pc.runs),
                static_cast<unsigned long long>(pc.wakeups),
                static_cast<unsigned long long>(wakeups.load()));
    EXPECT_GE(wakeups.load(), 200U);
}

// The network side is woken once per burst: the callback fires when the outbound ring goes
// from empty to non-empty, and not again until drain() has run.
TEST(stream_pipeline, output_ready_fires_once_per_burst_not_per_frame) {
    dsp_pool pool(1);
    pipeline_options options;
    options.dsp = &pool;
    options.inbound_capacity = 128;
    options.outbound_capacity = 128;
    stream_pipeline p(echo_chain(), options);
    std::atomic<int> wakes{0};
    p.set_output_ready([&] { wakes.fetch_add(1); });
    p.start({});
    const auto frames = tone_frames(50, 300.0);
    for (const auto& f : frames) {
        p.push_audio(f, 0);
    }
    ASSERT_TRUE(wait_until([&] { return p.counters().frames_out == 50; }));
    EXPECT_EQ(wakes.load(), 1);
    collector out;
    EXPECT_EQ(p.drain(out), 50U);
    p.push_audio(frames[0], 0);
    ASSERT_TRUE(wait_until([&] { return wakes.load() == 2; }));
    EXPECT_EQ(p.drain(out), 1U);
    EXPECT_EQ(p.counters().frames_out, 51U);
}

// Nothing accepted is lost: a network side that does not drain makes the worker pause with the
// caller's frames waiting in the inbound ring; draining resumes it.
TEST(stream_pipeline, a_stalled_consumer_pauses_the_worker_and_loses_nothing) {
    dsp_pool pool(1);
    auto t = std::make_shared<tally>();
    pipeline_options options;
    options.dsp = &pool;
    options.inbound_capacity = 256;
    options.outbound_capacity = 16; // 2 slots kept for marks and clears
    stream_pipeline p(counting_chain(t), options);
    p.start({});
    const auto frames = tone_frames(100, 500.0);
    for (const auto& f : frames) {
        p.push_audio(f, 0); // and do not drain: the network side is stalled
    }
    // The worker fills the ring up to the reserve (start mark + 12 frames), then waits.
    ASSERT_TRUE(wait_until([&] { return p.counters().outbound_depth == 13U; }));
    auto c = p.counters();
    EXPECT_EQ(c.frames_out, 12U);
    EXPECT_EQ(c.frames_dropped, 0U);
    EXPECT_EQ(c.inbound_depth + c.frames_in, 100U);
    p.push_dtmf('1'); // queued behind the waiting audio, never dropped
    collector out;
    ASSERT_TRUE(wait_until([&] {
        p.drain(out);
        return p.counters().frames_out == 100U && t->dtmf.load() == 1;
    }));
    p.drain(out);
    c = p.counters();
    EXPECT_EQ(c.frames_dropped, 0U);
    EXPECT_EQ(c.inbound_dropped, 0U);
    EXPECT_EQ(out.media.size(), 100U * 160U);
    EXPECT_EQ(out.marks.size(), 1U);
    EXPECT_EQ(out.clears, 1U);
}

TEST(stream_pipeline, a_stalled_worker_makes_the_network_side_drop_and_count) {
    dsp_pool pool(1);
    auto t = std::make_shared<tally>();
    pipeline_options options;
    options.dsp = &pool;
    options.inbound_capacity = 8;
    options.outbound_capacity = 256;
    stream_pipeline p(counting_chain(t), options);
    p.start({});
    const auto frames = tone_frames(100, 500.0);
    t->hold.store(true);
    // Release the worker however this test ends, or the pool's destructor would wait forever.
    const std::unique_ptr<tally, void (*)(tally*)> release(t.get(),
                                                           [](tally* x) { x->hold.store(false); });
    p.push_audio(frames[0], 0);
    ASSERT_TRUE(wait_until([&] { return t->entered.load() == 1; }))
        << "the worker took the first frame and is stuck in on_audio";
    // The frame being processed keeps its slot until on_audio returns: 7 more fit.
    for (std::size_t i = 1; i < frames.size(); ++i) {
        p.push_audio(frames[i], 0); // never blocks
    }
    EXPECT_EQ(p.counters().inbound_dropped, 99U - 7U);
    EXPECT_EQ(p.counters().inbound_depth, 8U);
    t->hold.store(false);
    ASSERT_TRUE(wait_until([&] { return p.counters().frames_in == 8; }));
    EXPECT_TRUE(wait_until([&] { return p.counters().inbound_depth == 0; }));
}

// The server may stop and destroy a pipeline while its worker still has frames queued: the
// worker finishes them, calls on_stop once, and nothing touches freed memory (ASan/TSan).
TEST(stream_pipeline, stop_and_destroy_while_frames_are_in_flight) {
    dsp_pool pool(2);
    std::vector<std::shared_ptr<tally>> tallies;
    for (int round = 0; round < 50; ++round) {
        auto t = std::make_shared<tally>();
        tallies.push_back(t);
        pipeline_options options;
        options.dsp = &pool;
        options.inbound_capacity = 64;
        auto p = std::make_unique<stream_pipeline>(counting_chain(t), options);
        p->set_output_ready([] {});
        p->start({});
        for (const auto& f : tone_frames(30, 300.0)) {
            p->push_audio(f, 0);
        }
        if (round % 2 == 0) {
            p->stop(); // odd rounds: destruction alone must stop it
        }
        p.reset();
    }
    for (const auto& t : tallies) {
        ASSERT_TRUE(wait_until([&] { return t->stops.load() == 1; }));
        EXPECT_EQ(t->frames.load(), 30) << "frames queued before stop are still processed";
        EXPECT_EQ(t->frames_after_stop.load(), 0);
        EXPECT_EQ(t->started.load(), 1);
    }
}

TEST(stream_pipeline, inline_stop_runs_once_and_destruction_stops_a_started_stream) {
    auto t = std::make_shared<tally>();
    {
        stream_pipeline p(counting_chain(t));
        p.start({});
        p.push_mark("m1");
        p.stop();
        p.stop();
        p.push_audio(tone_frames(1, 300.0)[0], 0);
        p.push_mark("late");
    }
    EXPECT_EQ(t->stops.load(), 1);
    EXPECT_EQ(t->frames.load() + t->frames_after_stop.load(), 0) << "nothing after stop";
    EXPECT_EQ(t->marks.load(), 1);
    auto u = std::make_shared<tally>();
    { stream_pipeline p(counting_chain(u)); }
    EXPECT_EQ(u->stops.load(), 0) << "never started, never stopped";
    {
        stream_pipeline p(counting_chain(u));
        p.start({});
    }
    EXPECT_EQ(u->stops.load(), 1);
}

// A processor whose consumer is behind (as the recorder's writer is during a burst): the
// pipeline tells the network side to stop reading, and in DSP mode the worker holds the caller's
// frames (none is processed, none dropped) until the backlog clears; then reading_paused()
// resumes the worker and every frame comes through, in order.
struct backlogging_echo final : processor {
    std::atomic<bool>* behind;
    explicit backlogging_echo(std::atomic<bool>* b) : behind(b) {}
    void on_audio(const audio_frame& in, processor_output& out) override { out.send_audio(in); }
    bool backlogged() const noexcept override { return behind->load(); }
};

TEST(stream_pipeline, a_backlogged_processor_pauses_reading_and_holds_frames_without_loss) {
    for (const bool dsp : {false, true}) {
        std::atomic<bool> behind{false};
        dsp_pool pool(1);
        stream_pipeline::processor_chain chain;
        chain.push_back(std::make_unique<backlogging_echo>(&behind));
        pipeline_options options;
        options.dsp = dsp ? &pool : nullptr;
        options.inbound_capacity = 64;
        stream_pipeline p(std::move(chain), options);
        p.start({});
        const auto frames = tone_frames(40, 440.0);
        collector out;
        EXPECT_FALSE(p.reading_paused());
        behind = true;
        EXPECT_TRUE(p.reading_paused()) << "dsp " << dsp;
        for (std::size_t i = 0; i < 10; ++i) {
            p.push_audio(frames[i], static_cast<std::int64_t>(i * 20));
        }
        if (dsp) {
            // The worker runs (start, then each push schedules it) but takes no caller frame.
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            EXPECT_EQ(p.counters().frames_in, 0U);
            EXPECT_EQ(p.counters().inbound_depth, 10U);
        }
        behind = false;
        EXPECT_FALSE(p.reading_paused()) << "dsp " << dsp;
        for (std::size_t i = 10; i < frames.size(); ++i) {
            p.push_audio(frames[i], static_cast<std::int64_t>(i * 20));
        }
        ASSERT_TRUE(wait_until([&] {
            p.drain(out);
            return out.media.size() == frames.size() * telephony_frame_samples;
        })) << "dsp "
            << dsp;
        EXPECT_EQ(out.media, flatten(frames));
        EXPECT_EQ(p.counters().inbound_dropped, 0U);
        EXPECT_EQ(p.counters().frames_dropped, 0U);
    }
}

// DSP mode: an inbound ring a quarter full pauses reading even without a backlogged processor
// (a slow worker), long before the ring would drop.
TEST(stream_pipeline, a_filling_inbound_ring_pauses_reading_before_it_drops) {
    struct stuck_echo final : processor {
        std::atomic<bool>* hold;
        explicit stuck_echo(std::atomic<bool>* h) : hold(h) {}
        void on_audio(const audio_frame& in, processor_output& out) override {
            while (hold->load()) {
                std::this_thread::yield(); // a worker that cannot keep up
            }
            out.send_audio(in);
        }
    };
    dsp_pool pool(1);
    std::atomic<bool> hold{true};
    stream_pipeline::processor_chain chain;
    chain.push_back(std::make_unique<stuck_echo>(&hold));
    pipeline_options options;
    options.dsp = &pool;
    options.inbound_capacity = 64;
    stream_pipeline p(std::move(chain), options);
    p.start({});
    const auto frames = tone_frames(40, 440.0);
    std::size_t pushed = 0;
    while (!p.reading_paused() && pushed < frames.size()) {
        p.push_audio(frames[pushed], static_cast<std::int64_t>(pushed * 20));
        ++pushed;
    }
    EXPECT_TRUE(p.reading_paused());
    EXPECT_LE(pushed, 17U) << "paused at a quarter of 64 (plus the frame the worker holds)";
    EXPECT_EQ(p.counters().inbound_dropped, 0U);
    hold = false;
    EXPECT_TRUE(wait_until([&] { return !p.reading_paused(); }));
    collector out;
    EXPECT_TRUE(wait_until([&] {
        p.drain(out);
        return out.media.size() == pushed * telephony_frame_samples;
    }));
}

TEST(processor_factory, the_default_app_is_echo_and_the_default_resampler_parses) {
    EXPECT_TRUE(parse_resampler_spec(default_resampler_spec).error.empty());
    EXPECT_EQ(pipeline_options{}.resampler.to_string(), default_resampler_spec);
    processor_config config;
    auto r = make_processor_chain("", config);
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.chain.size(), 1U);
}

} // namespace
} // namespace callstream::pipeline
