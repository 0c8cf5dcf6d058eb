#include "bench/load/load_run.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>

#include "bench/load/proc_stats.hpp"
#include "bench/load/twilio_messages.hpp"
#include "codec/base64.hpp"
#include "server/bridge/upstream_socket.hpp"

namespace callstream::bench {
namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using std::chrono::microseconds;
using std::chrono::milliseconds;

constexpr int slots_per_period = frame_ms; // 1 ms slots
constexpr std::size_t ring_size = 256;     // frames remembered per stream: 5.12 s of echo delay

std::uint64_t micros(clock_type::duration d) {
    const auto us = std::chrono::duration_cast<microseconds>(d).count();
    return us < 0 ? 0 : static_cast<std::uint64_t>(us);
}

// The absolute timeline of one run, shared read-only by every thread.
struct timeline {
    time_point t0;           // slot 0; the first stream opens here
    double ramp_per_s = 1;   // streams per second
    time_point window_start; // first scheduled frame that counts
    time_point window_end;   // no media is scheduled at or after this
    time_point drain_end;    // stop waiting for echoes
    time_point close_end;    // stop waiting for closes

    time_point open_at(int global_index) const {
        return t0 + std::chrono::duration_cast<clock_type::duration>(
                        std::chrono::duration<double>(global_index / ramp_per_s));
    }
};

struct shared_setup {
    const load_config* config = nullptr;
    const audio_source* audio = nullptr;
    std::string url;                        // ws://… or wss://…
    std::shared_ptr<net::ssl::context> tls; // wss://: verifies the server (upstream_socket)
    timeline times;
    std::string account_sid;
};

struct thread_stats {
    run_result r; // counters, histograms and per_stream; the window and /proc fields stay unset
    std::uint64_t outstanding = 0; // window frames sent and not yet echoed
};

// One simulated call over callstream's own WebSocket client (server/bridge/upstream_socket.hpp:
// RFC 6455 framing of its own, drained reads, writes straight on the descriptor, TLS through
// OpenSSL directly), so the generator costs about what the servers it drives do and its CPU,
// not theirs, bounds fewer runs. Owned by its load_thread (shared, as the socket reports to a
// weak_ptr); every handler runs on that thread.
class load_stream final : public server::bridge::upstream_socket_events,
                          public std::enable_shared_from_this<load_stream> {
  public:
    load_stream(net::io_context& ioc, const shared_setup& setup, thread_stats& stats, int index,
                std::mt19937_64& rng)
        : ioc_(ioc), setup_(setup), stats_(stats),
          index_(index), call_{setup.account_sid, make_sid("CA", rng), make_sid("MZ", rng)},
          media_(call_.stream_sid) {
        audio_offset_ = static_cast<std::size_t>(rng() % setup.audio->frame_count());
    }

    int index() const { return index_; }
    stream_report report() const {
        stream_report out = report_;
        out.index = index_;
        out.call_sid = call_.call_sid;
        out.stream_sid = call_.stream_sid;
        out.failed = state_ == state::failed;
        return out;
    }
    // Done: failed, closed by the server, or closed by us and the socket gone (its close
    // handshake over, or abandoned at its deadline).
    bool finished() const {
        return state_ == state::finished || state_ == state::failed ||
               (state_ == state::closing && closed_socket_.expired());
    }

    void connect() {
        state_ = state::connecting;
        server::bridge::upstream_target target;
        target.url = setup_.url;
        target.connect_timeout = std::chrono::seconds(10);
        target.max_message_bytes = 64 * 1024;
        target.write_at_once = true; // sent_at is when the frame is written
        socket_ = server::bridge::upstream_socket::create(ioc_.get_executor(), std::move(target),
                                                          setup_.tls, weak_from_this());
    }

    // A media frame of this stream is due at `scheduled`.
    void on_due(time_point scheduled) {
        if (state_ != state::active) {
            return;
        }
        if (socket_->queued_bytes() > 0) {
            ++stats_.r.deferred; // the previous message is not written yet: generator lag
        }
        send_media(scheduled);
    }

    // Sending is over; once echoes are in (or the grace is over) say `stop` and close.
    void finish() {
        stats_.r.relayouts += media_.relayouts();
        if (state_ == state::active) {
            write_control(stop_message(call_, next_seq_++));
            close_socket();
        } else if (state_ == state::connecting) {
            state_ = state::failed;
            ++stats_.r.failed;
            if (socket_) {
                socket_->close();
                socket_.reset();
            }
        }
    }

    void on_upstream_open() override {
        if (state_ != state::connecting) {
            return;
        }
        state_ = state::active;
        ++stats_.r.opened;
        write_control(connected_message());
        write_control(start_message(call_, custom_parameters()));
    }

    void on_upstream_message(bool, std::string_view message) override {
        on_message(message, clock_type::now());
    }

    void on_upstream_close_frame(std::uint16_t code, std::string_view reason) override {
        report_.close_code = code;
        report_.close_reason = std::string(reason);
    }

    void on_upstream_closed(std::string_view label, std::string detail) override {
        if (std::getenv("CALLSTREAM_LOAD_DEBUG")) {
            std::fprintf(stderr, "stream %d: %.*s: %s\n", index_, static_cast<int>(label.size()),
                         label.data(), detail.c_str());
        }
        if (state_ == state::connecting) {
            state_ = state::failed;
            ++stats_.r.failed;
        } else if (state_ == state::active) {
            ++stats_.r.dropped;
            report_.dropped = true;
            if (report_.close_reason.empty()) {
                report_.close_reason = std::string(label) + ": " + detail;
            }
            state_ = state::finished;
        }
        // The socket, done now, stays held until the stream goes: nothing uses it again.
    }

  private:
    enum class state { idle, connecting, active, closing, finished, failed };

    struct sent_frame {
        std::uint64_t frame_no = 0;
        time_point sent_at;
        bool in_window = false;
        bool echoed = true;
    };

    std::string custom_parameters() const {
        return "\"app\":\"" + setup_.config->app + "\",\"caller\":\"+1555" +
               std::to_string(1000000 + index_ % 9000000) + "\",\"load_stream\":\"" +
               std::to_string(index_) + "\"";
    }

    // Control messages are rare (connected, start, stop, one DTMF/mark per N frames), so
    // building them as strings is off the per-frame path.
    void write_control(std::string message) {
        ++stats_.r.control_sent;
        socket_->send(std::move(message), true);
    }

    // `stop` is queued; the socket closes after it (normal closure) and dies once the server
    // has answered our close frame.
    void close_socket() {
        state_ = state::closing;
        closed_socket_ = socket_;
        socket_->close();
        socket_.reset();
    }

    void send_media(time_point scheduled) {
        const auto& audio = *setup_.audio;
        const std::uint64_t chunk = next_chunk_++;
        const std::size_t frame_index =
            static_cast<std::size_t>((audio_offset_ + chunk - 1) % audio.frame_count());
        const std::uint8_t* ulaw = audio.frame(frame_index);
        std::array<std::uint8_t, 6> head{};
        embed_frame_id(head, static_cast<std::uint16_t>(chunk & 0xFFFF));
        head[4] = ulaw[4];
        head[5] = ulaw[5];
        std::array<char, 8> head_b64{};
        codec::base64_encode(head, head_b64.data());
        media_.set(next_seq_++, chunk, (chunk - 1) * frame_ms, audio.frame_base64(frame_index),
                   {head_b64.data(), head_b64.size()});

        const time_point now = clock_type::now();
        const auto& times = setup_.times;
        const bool in_window = scheduled >= times.window_start && scheduled < times.window_end;
        auto& slot = ring_[chunk % ring_size];
        if (!slot.echoed && slot.in_window) {
            // Overwritten before its echo came: 5 s late or never; it stays counted as lost.
            --stats_.outstanding;
        }
        slot = sent_frame{chunk, now, in_window, false};
        if (in_window) {
            ++report_.frames_sent;
            ++stats_.r.frames_sent;
            ++stats_.outstanding;
            stats_.r.jitter_us.record(micros(now - scheduled));
        }
        // The socket masks the message in place, so it gets a copy (in a string it hands back
        // for reuse: no allocation per frame).
        std::string message = socket_->take_buffer();
        message.assign(media_.view().data(), media_.view().size());
        socket_->send(std::move(message), true);

        const int dtmf_every = setup_.config->dtmf_every;
        const int mark_every = setup_.config->mark_every;
        if (dtmf_every > 0 && chunk % static_cast<std::uint64_t>(dtmf_every) == 0) {
            static constexpr char digits[] = "0123456789*#";
            const char digit = digits[dtmf_count_++ % 12];
            write_control(dtmf_message(call_, next_seq_++, digit));
        }
        if (mark_every > 0 && chunk % static_cast<std::uint64_t>(mark_every) == 0) {
            write_control(mark_message(call_, next_seq_++, ++mark_count_));
        }
    }

    void on_message(std::string_view message, time_point now) {
        const auto payload = find_payload(message);
        if (payload.empty()) {
            ++stats_.r.other_received;
            return;
        }
        std::uint64_t frame_no = 0;
        if (const auto id = frame_id_from_base64(payload)) {
            // Widen the 16-bit id to the frame number nearest the last one we sent.
            const std::uint64_t last = next_chunk_ - 1;
            frame_no = last - ((last - *id) & 0xFFFF);
        } else {
            frame_no = next_by_order_;
            ++stats_.r.matched_by_order;
        }
        next_by_order_ = frame_no + 1;
        auto& slot = ring_[frame_no % ring_size];
        if (slot.frame_no != frame_no) {
            ++stats_.r.late_or_unknown;
            return;
        }
        if (slot.echoed) {
            ++stats_.r.duplicates;
            return;
        }
        slot.echoed = true;
        if (frame_no < highest_echoed_) {
            ++stats_.r.out_of_order;
        }
        highest_echoed_ = std::max(highest_echoed_, frame_no);
        if (slot.in_window) {
            ++report_.frames_echoed;
            ++stats_.r.frames_echoed;
            --stats_.outstanding;
            stats_.r.rtt_us.record(micros(now - slot.sent_at));
        }
    }

    net::io_context& ioc_;
    const shared_setup& setup_;
    thread_stats& stats_;
    int index_;
    call_identity call_;
    media_message media_;
    std::shared_ptr<server::bridge::upstream_socket> socket_;
    std::weak_ptr<server::bridge::upstream_socket> closed_socket_;
    std::array<sent_frame, ring_size> ring_{};
    state state_ = state::idle;
    std::uint64_t next_seq_ = 2; // `start` is sequence 1
    std::uint64_t next_chunk_ = 1;
    std::uint64_t next_by_order_ = 1;
    std::uint64_t highest_echoed_ = 0;
    std::uint64_t dtmf_count_ = 0;
    std::uint64_t mark_count_ = 0;
    std::size_t audio_offset_ = 0;
    stream_report report_;
};

// One network thread: its io_context, its streams and the one pacing timer that drives them.
class load_thread {
  public:
    load_thread(const shared_setup& setup, int thread_index, int thread_count) : setup_(setup) {
        std::mt19937_64 rng(std::random_device{}() ^
                            (static_cast<std::uint64_t>(thread_index) << 32));
        const int total = setup.config->streams;
        for (int g = thread_index; g < total; g += thread_count) {
            streams_.push_back(std::make_shared<load_stream>(ioc_, setup, stats_, g, rng));
            slots_[static_cast<std::size_t>(g % slots_per_period)].push_back(streams_.back().get());
        }
    }

    void run() {
        tick();
        ioc_.run();
        for (const auto& s : streams_) {
            stats_.r.per_stream.push_back(s->report());
        }
    }

    thread_stats& stats() { return stats_; }

  private:
    enum class phase { sending, draining, closing };

    void tick() {
        const auto& times = setup_.times;
        const time_point now = clock_type::now();
        while (next_open_ < streams_.size() &&
               times.open_at(streams_[next_open_]->index()) <= now) {
            streams_[next_open_++]->connect();
        }
        if (phase_ == phase::sending) {
            const auto elapsed = now - times.t0;
            const std::int64_t current =
                elapsed < clock_type::duration::zero()
                    ? -1
                    : std::chrono::duration_cast<milliseconds>(elapsed).count();
            // Catch up every slot since the last tick, in order, if this one fired late.
            for (; next_slot_ <= current; ++next_slot_) {
                const time_point scheduled = times.t0 + milliseconds(next_slot_);
                if (scheduled >= times.window_end) {
                    phase_ = phase::draining;
                    break;
                }
                for (auto* s : slots_[static_cast<std::size_t>(next_slot_ % slots_per_period)]) {
                    s->on_due(scheduled);
                }
            }
        }
        if (phase_ == phase::draining && (stats_.outstanding == 0 || now >= times.drain_end) &&
            next_open_ == streams_.size()) {
            phase_ = phase::closing;
            for (auto& s : streams_) {
                s->finish();
            }
        }
        if (phase_ == phase::closing) {
            bool all_done = true;
            for (auto& s : streams_) {
                all_done = all_done && s->finished();
            }
            if (all_done || now >= times.close_end) {
                ioc_.stop();
                return;
            }
        }
        const time_point next =
            phase_ == phase::sending ? times.t0 + milliseconds(next_slot_) : now + milliseconds(5);
        timer_.expires_at(next);
        timer_.async_wait([this](boost::system::error_code ec) {
            if (!ec) {
                tick();
            }
        });
    }

    const shared_setup& setup_;
    net::io_context ioc_{1};
    net::steady_timer timer_{ioc_};
    thread_stats stats_;
    std::vector<std::shared_ptr<load_stream>> streams_;
    std::array<std::vector<load_stream*>, slots_per_period> slots_;
    std::size_t next_open_ = 0;
    std::int64_t next_slot_ = 0;
    phase phase_ = phase::sending;
};

std::vector<thread_stats> run_threads(const shared_setup& setup) {
    const int n = std::max(1, setup.config->threads);
    std::vector<std::unique_ptr<load_thread>> threads;
    for (int i = 0; i < n; ++i) {
        threads.push_back(std::make_unique<load_thread>(setup, i, n));
    }
    std::vector<std::thread> running;
    for (auto& t : threads) {
        running.emplace_back([&t] { t->run(); });
    }

    std::vector<thread_stats> out;
    for (auto& r : running) {
        r.join();
    }
    for (auto& t : threads) {
        out.push_back(std::move(t->stats()));
    }
    return out;
}

} // namespace

run_result run_load(const load_config& config, const audio_source& audio) {
    net::io_context resolver_ioc;
    tcp::resolver resolver(resolver_ioc);
    boost::system::error_code ec;
    const auto endpoints = resolver.resolve(config.host, config.port, ec);
    if (ec || endpoints.empty()) {
        throw std::runtime_error("cannot resolve " + config.host + ":" + config.port + ": " +
                                 ec.message());
    }

    std::shared_ptr<net::ssl::context> tls;
    if (config.tls) {
        tls = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
        tls->set_verify_mode(net::ssl::verify_peer);
        if (config.tls_ca_file.empty()) {
            tls->set_default_verify_paths(ec);
        } else {
            tls->load_verify_file(config.tls_ca_file, ec);
        }
        if (ec) {
            throw std::runtime_error("--tls-ca " + config.tls_ca_file + ": " + ec.message());
        }
    }

    std::mt19937_64 rng(std::random_device{}());
    shared_setup setup;
    setup.config = &config;
    setup.audio = &audio;
    const bool ipv6 = config.host.find(':') != std::string::npos;
    setup.url = std::string(config.tls ? "wss://" : "ws://") +
                (ipv6 ? "[" + config.host + "]" : config.host) + ":" + config.port + config.target;
    setup.tls = std::move(tls);
    setup.account_sid = make_sid("AC", rng);

    auto& t = setup.times;
    const auto seconds = [](double s) {
        return std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s));
    };
    t.ramp_per_s = config.ramp_per_s > 0 ? config.ramp_per_s : 1e9;
    t.t0 = clock_type::now() + milliseconds(50);
    const time_point ramp_end = t.open_at(config.streams);
    t.window_start = ramp_end + seconds(config.warmup_s);
    t.window_end = t.window_start + seconds(config.duration_s);
    t.drain_end = t.window_end + seconds(config.grace_s);
    t.close_end = t.drain_end + seconds(2.0);

    run_result result;
    result.streams = config.streams;
    if (config.server_pid > 0) {
        result.server_rss_base_kib = process_rss_kib(config.server_pid);
    }

    std::vector<thread_stats> stats;
    std::thread runner([&] { stats = run_threads(setup); });

    // Sample CPU and memory at the window's edges from this (otherwise idle) thread.
    std::this_thread::sleep_until(t.window_start);
    const auto w0 = clock_type::now();
    const double gen0 = self_cpu_seconds();
    std::optional<double> srv0;
    if (config.server_pid > 0) {
        srv0 = process_cpu_seconds(config.server_pid);
    }
    std::this_thread::sleep_until(t.window_end);
    const auto w1 = clock_type::now();
    const double gen1 = self_cpu_seconds();
    if (config.server_pid > 0) {
        const auto srv1 = process_cpu_seconds(config.server_pid);
        if (srv0 && srv1) {
            result.server_cpu_s = *srv1 - *srv0;
        }
        result.server_rss_load_kib = process_rss_kib(config.server_pid);
    }
    runner.join();

    result.window_s = std::chrono::duration<double>(w1 - w0).count();
    result.generator_cpu_s = gen1 - gen0;
    for (auto& s : stats) {
        auto& r = s.r;
        result.opened += r.opened;
        result.failed += r.failed;
        result.dropped += r.dropped;
        result.frames_sent += r.frames_sent;
        result.frames_echoed += r.frames_echoed;
        result.out_of_order += r.out_of_order;
        result.duplicates += r.duplicates;
        result.matched_by_order += r.matched_by_order;
        result.late_or_unknown += r.late_or_unknown;
        result.deferred += r.deferred;
        result.control_sent += r.control_sent;
        result.other_received += r.other_received;
        result.relayouts += r.relayouts;
        result.rtt_us.merge(r.rtt_us);
        result.jitter_us.merge(r.jitter_us);
        for (auto& p : r.per_stream) {
            result.per_stream.push_back(std::move(p));
        }
    }
    std::sort(result.per_stream.begin(), result.per_stream.end(),
              [](const stream_report& a, const stream_report& b) { return a.index < b.index; });
    result.frames_lost = result.frames_sent - result.frames_echoed;
    result.valid = static_cast<double>(result.jitter_us.value_at_percentile(99.0)) <=
                   config.max_jitter_p99_ms * 1000.0;
    return result;
}

} // namespace callstream::bench
