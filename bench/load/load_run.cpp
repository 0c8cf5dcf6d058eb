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

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "bench/load/proc_stats.hpp"
#include "bench/load/twilio_messages.hpp"
#include "codec/base64.hpp"

namespace callstream::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
using time_point = clock_type::time_point;
using std::chrono::microseconds;
using std::chrono::milliseconds;

// Sockets bound to the concrete io_context executor: no type-erased any_io_executor copies per
// operation (they showed in the generator's profile).
using socket_type = net::basic_stream_socket<tcp, net::io_context::executor_type>;
using plain_ws = websocket::stream<socket_type>;
using tls_ws = websocket::stream<net::ssl::stream<socket_type>>;

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
    tcp::endpoint endpoint;
    net::ssl::context* ssl = nullptr;
    timeline times;
    std::string account_sid;
};

struct thread_stats {
    run_result r; // counters, histograms and per_stream; the window and /proc fields stay unset
    std::uint64_t outstanding = 0; // window frames sent and not yet echoed
    int closed = 0;
};

plain_ws make_ws(net::io_context& ioc, net::ssl::context*) {
    return plain_ws(ioc);
}
tls_ws make_ws_tls(net::io_context& ioc, net::ssl::context* ssl) {
    return tls_ws(ioc, *ssl);
}

template <class Ws> Ws create(net::io_context& ioc, net::ssl::context* ssl) {
    if constexpr (std::is_same_v<Ws, tls_ws>) {
        return make_ws_tls(ioc, ssl);
    } else {
        return make_ws(ioc, ssl);
    }
}

// One simulated call. Owned by its load_thread; every handler runs on that thread.
template <class Ws> class load_stream {
  public:
    load_stream(net::io_context& ioc, const shared_setup& setup, thread_stats& stats, int index,
                std::mt19937_64& rng)
        : setup_(setup), stats_(stats), ws_(create<Ws>(ioc, setup.ssl)),
          index_(index), call_{setup.account_sid, make_sid("CA", rng), make_sid("MZ", rng)},
          media_(call_.stream_sid) {
        audio_offset_ = static_cast<std::size_t>(rng() % setup.audio->frame_count());
        rbuf_.reserve(4096);
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
    bool active() const { return state_ == state::active; }
    bool finished() const { return state_ == state::finished || state_ == state::failed; }

    void connect() {
        state_ = state::connecting;
        beast::get_lowest_layer(ws_).async_connect(
            setup_.endpoint, [this](beast::error_code ec) { on_connect(ec); });
    }

    // A media frame of this stream is due at `scheduled`; `now` is the tick's time.
    void on_due(time_point scheduled) {
        if (state_ != state::active) {
            return;
        }
        if (owed_ == 0) {
            oldest_owed_ = scheduled;
        }
        ++owed_;
        if (writing_) {
            ++stats_.r.deferred; // the previous write is still in flight: generator lag
            return;
        }
        send_next();
    }

    // Sending is over; once echoes are in (or the grace is over) say `stop` and close.
    void finish() {
        stats_.r.relayouts += media_.relayouts();
        if (state_ == state::active) {
            state_ = state::stopping;
            owed_ = 0;
            pending_stop_ = true;
            send_next();
        } else if (state_ == state::connecting) {
            state_ = state::failed;
            ++stats_.r.failed;
            beast::error_code ignored;
            beast::get_lowest_layer(ws_).close(ignored);
        }
    }

  private:
    enum class state { idle, connecting, active, stopping, closing, finished, failed };

    struct sent_frame {
        std::uint64_t frame_no = 0;
        time_point sent_at;
        bool in_window = false;
        bool echoed = true;
    };

    void on_connect(beast::error_code ec) {
        if (ec || state_ != state::connecting) {
            return fail_connect(ec);
        }
        beast::get_lowest_layer(ws_).set_option(tcp::no_delay(true), ec);
        if constexpr (std::is_same_v<Ws, tls_ws>) {
            SSL_set_tlsext_host_name(ws_.next_layer().native_handle(), setup_.config->host.c_str());
            if (!setup_.config->tls_insecure) {
                ws_.next_layer().set_verify_callback(
                    net::ssl::host_name_verification(setup_.config->host));
            }
            ws_.next_layer().async_handshake(net::ssl::stream_base::client,
                                             [this](beast::error_code e) {
                                                 if (e) {
                                                     return fail_connect(e);
                                                 }
                                                 upgrade();
                                             });
        } else {
            upgrade();
        }
    }

    void upgrade() {
        ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
            req.set(beast::http::field::user_agent, "Twilio.TmeWs/1.0 (callstream-load)");
        }));
        ws_.text(true);
        ws_.auto_fragment(false);
        ws_.secure_prng(false); // masking keys need not be secret here; the fast PRNG is cheaper
        ws_.read_message_max(64 * 1024);
        const std::string host = setup_.config->host + ":" + setup_.config->port;
        ws_.async_handshake(host, setup_.config->target, [this](beast::error_code ec) {
            if (ec || state_ != state::connecting) {
                return fail_connect(ec);
            }
            state_ = state::active;
            ++stats_.r.opened;
            pending_connected_ = true;
            pending_start_ = true;
            send_next();
            do_read();
        });
    }

    void fail_connect(beast::error_code ec = {}) {
        if (std::getenv("CALLSTREAM_LOAD_DEBUG")) {
            std::fprintf(stderr, "connect failed: %s\n", ec.message().c_str());
        }
        if (state_ == state::connecting) {
            state_ = state::failed;
            ++stats_.r.failed;
        }
    }

    // Starts the next write if none is in flight: control messages first, then owed media.
    void send_next() {
        if (writing_) {
            return;
        }
        if (pending_connected_) {
            pending_connected_ = false;
            return write_control(connected_message());
        }
        if (pending_start_) {
            pending_start_ = false;
            return write_control(start_message(call_, custom_parameters()));
        }
        if (owed_ > 0) {
            return send_media();
        }
        if (pending_dtmf_) {
            pending_dtmf_ = false;
            static constexpr char digits[] = "0123456789*#";
            const char digit = digits[dtmf_count_++ % 12];
            return write_control(dtmf_message(call_, next_seq_++, digit));
        }
        if (pending_mark_) {
            pending_mark_ = false;
            return write_control(mark_message(call_, next_seq_++, ++mark_count_));
        }
        if (pending_stop_) {
            pending_stop_ = false;
            write_control(stop_message(call_, next_seq_++));
            state_ = state::closing;
        }
    }

    std::string custom_parameters() const {
        return "\"app\":\"" + setup_.config->app + "\",\"caller\":\"+1555" +
               std::to_string(1000000 + index_ % 9000000) + "\",\"load_stream\":\"" +
               std::to_string(index_) + "\"";
    }

    void write_control(std::string message) {
        // Control messages are rare (connected, start, stop, one DTMF/mark per N frames), so
        // building them as strings is off the per-frame path.
        control_ = std::move(message);
        ++stats_.r.control_sent;
        start_write(net::buffer(control_));
    }

    void send_media() {
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
        const time_point scheduled = oldest_owed_;
        --owed_;
        oldest_owed_ += milliseconds(frame_ms);
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
        const int dtmf_every = setup_.config->dtmf_every;
        const int mark_every = setup_.config->mark_every;
        if (dtmf_every > 0 && chunk % static_cast<std::uint64_t>(dtmf_every) == 0) {
            pending_dtmf_ = true;
        }
        if (mark_every > 0 && chunk % static_cast<std::uint64_t>(mark_every) == 0) {
            pending_mark_ = true;
        }
        start_write(net::buffer(media_.view().data(), media_.view().size()));
    }

    void start_write(net::const_buffer buffer) {
        writing_ = true;
        ws_.async_write(buffer, [this](beast::error_code ec, std::size_t) {
            writing_ = false;
            if (ec) {
                return;
            }
            if (state_ == state::closing) {
                ws_.async_close(websocket::close_code::normal, [](beast::error_code) {});
                return;
            }
            send_next();
        });
    }

    void do_read() {
        ws_.async_read(rbuf_, [this](beast::error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        if (ec) {
            if (state_ == state::active || state_ == state::stopping) {
                ++stats_.r.dropped;
                report_.dropped = true;
            }
            if (ec == websocket::error::closed) {
                report_.close_code = ws_.reason().code;
                report_.close_reason =
                    std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
            }
            if (state_ != state::failed) {
                state_ = state::finished;
                ++stats_.closed;
            }
            return;
        }
        const time_point now = clock_type::now();
        const auto data = rbuf_.cdata();
        on_message({static_cast<const char*>(data.data()), data.size()}, now);
        rbuf_.consume(rbuf_.size());
        do_read();
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

    const shared_setup& setup_;
    thread_stats& stats_;
    Ws ws_;
    int index_;
    call_identity call_;
    media_message media_;
    std::string control_;
    beast::flat_buffer rbuf_;
    std::array<sent_frame, ring_size> ring_{};
    state state_ = state::idle;
    bool writing_ = false;
    bool pending_connected_ = false;
    bool pending_start_ = false;
    bool pending_dtmf_ = false;
    bool pending_mark_ = false;
    bool pending_stop_ = false;
    int owed_ = 0;
    time_point oldest_owed_;
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
template <class Ws> class load_thread {
  public:
    load_thread(const shared_setup& setup, int thread_index, int thread_count) : setup_(setup) {
        std::mt19937_64 rng(std::random_device{}() ^
                            (static_cast<std::uint64_t>(thread_index) << 32));
        const int total = setup.config->streams;
        for (int g = thread_index; g < total; g += thread_count) {
            streams_.push_back(std::make_unique<load_stream<Ws>>(ioc_, setup, stats_, g, rng));
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
        timer_.async_wait([this](beast::error_code ec) {
            if (!ec) {
                tick();
            }
        });
    }

    const shared_setup& setup_;
    net::io_context ioc_{1};
    net::steady_timer timer_{ioc_};
    thread_stats stats_;
    std::vector<std::unique_ptr<load_stream<Ws>>> streams_;
    std::array<std::vector<load_stream<Ws>*>, slots_per_period> slots_;
    std::size_t next_open_ = 0;
    std::int64_t next_slot_ = 0;
    phase phase_ = phase::sending;
};

template <class Ws> std::vector<thread_stats> run_threads(const shared_setup& setup) {
    const int n = std::max(1, setup.config->threads);
    std::vector<std::unique_ptr<load_thread<Ws>>> threads;
    for (int i = 0; i < n; ++i) {
        threads.push_back(std::make_unique<load_thread<Ws>>(setup, i, n));
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
    beast::error_code ec;
    const auto endpoints = resolver.resolve(config.host, config.port, ec);
    if (ec || endpoints.empty()) {
        throw std::runtime_error("cannot resolve " + config.host + ":" + config.port + ": " +
                                 ec.message());
    }

    net::ssl::context ssl(net::ssl::context::tls_client);
    if (config.tls) {
        if (config.tls_insecure) {
            ssl.set_verify_mode(net::ssl::verify_none);
        } else {
            ssl.set_default_verify_paths();
            ssl.set_verify_mode(net::ssl::verify_peer);
        }
    }

    std::mt19937_64 rng(std::random_device{}());
    shared_setup setup;
    setup.config = &config;
    setup.audio = &audio;
    setup.endpoint = *endpoints.begin();
    setup.ssl = &ssl;
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
    std::thread runner([&] {
        if (config.tls) {
            stats = run_threads<tls_ws>(setup);
        } else {
            stats = run_threads<plain_ws>(setup);
        }
    });

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
