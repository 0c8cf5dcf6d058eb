#include "server/media/media_session.hpp"

#include <chrono>
#include <deque>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "codec/base64.hpp"
#include "pipeline/processor_factory.hpp"
#include "pipeline/stream_pipeline.hpp"
#include "server/app/log.hpp"
#include "server/app/version.hpp"
#include "server/calls/call_registry.hpp"
#include "server/twilio/media_messages.hpp"

namespace callstream::server {
namespace {

namespace websocket = beast::websocket;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// A parser and a decode buffer per network thread rather than per stream: a thread handles one
// message at a time and nothing awaits between parsing a message and finishing with it, and a
// simdjson parser sized for a 64 KiB message would cost every idle stream that much memory.
struct thread_scratch {
    simdjson::ondemand::parser parser;
    std::vector<std::uint8_t> ulaw;
};
thread_scratch& scratch() {
    thread_local thread_scratch s;
    return s;
}

websocket::close_reason make_close(websocket::close_code code, std::string_view text) {
    // RFC 6455 allows 123 bytes of reason in a close frame.
    return websocket::close_reason(code, text.substr(0, 123));
}

struct outbox_entry {
    std::string text;
    bool media = false;
};

template <typename Stream>
class media_session final : public media_session_handle,
                            public std::enable_shared_from_this<media_session<Stream>> {
  public:
    media_session(Stream&& stream, std::shared_ptr<server_context> ctx)
        : ws_(std::move(stream)), ctx_(std::move(ctx)), close_timer_(ws_.get_executor()),
          idle_timer_(ws_.get_executor()) {}

    net::awaitable<void> run(http_request req);

    void post_close(std::uint16_t code, std::string reason) override {
        net::post(ws_.get_executor(), [self = this->shared_from_this(), code,
                                       reason = std::move(reason)] {
            const auto why = code == static_cast<std::uint16_t>(websocket::close_code::going_away)
                                 ? close_reason::shutdown
                                 : close_reason::protocol_order;
            self->fail(static_cast<websocket::close_code>(code), reason, why);
        });
    }

    void post_to_pipeline(std::function<void(pipeline::stream_pipeline&)> fn) override {
        net::post(ws_.get_executor(), [self = this->shared_from_this(), fn = std::move(fn)] {
            if (self->pipeline_ && self->state_ == state::streaming && !self->closing_) {
                fn(*self->pipeline_);
                self->flush_pipeline();
            }
        });
    }

  private:
    enum class state { awaiting_start, streaming, stopped };

    net::awaitable<void> read_loop();
    void handle_message(std::string_view text, std::size_t capacity);
    void on_start();
    bool check_streaming(const inbound_message& msg);
    void on_read_error(const beast::error_code& ec);
    void fail(websocket::close_code code, std::string_view text, close_reason why);
    void start_close(const websocket::close_reason& cr);
    void arm_close_deadline();
    void arm_idle_timer();
    void on_idle_tick();
    void close_socket() { beast::close_socket(beast::get_lowest_layer(ws_)); }
    void flush_pipeline();
    void do_write();
    void on_write(const beast::error_code& ec, std::size_t bytes);
    void finish();

    std::string take_buffer() {
        if (spare_.empty()) {
            std::string s;
            s.reserve(512);
            return s;
        }
        std::string s = std::move(spare_.back());
        spare_.pop_back();
        return s;
    }
    void recycle(std::string&& s) {
        if (spare_.size() < 8) {
            s.clear();
            spare_.push_back(std::move(s));
        }
    }

    websocket::stream<Stream> ws_;
    std::shared_ptr<server_context> ctx_;
    beast::flat_buffer buffer_;
    net::steady_timer close_timer_;
    net::steady_timer idle_timer_;
    bool heard_from_peer_ = true; // any message or pong since the last idle tick
    bool pinging_ = false;        // a keep-alive ping is out and unanswered

    state state_ = state::awaiting_start;
    bool closing_ = false;
    bool close_after_flush_ = false;
    std::optional<close_reason> reason_;
    std::uint64_t registry_id_ = 0;

    inbound_message msg_;
    pipeline::stream_info parsed_start_;
    pipeline::stream_info info_;
    std::unique_ptr<pipeline::stream_pipeline> pipeline_;
    outbound_writer writer_;
    std::uint64_t frames_in_ = 0;
    std::uint64_t frames_out_ = 0;
    std::uint64_t pipeline_dropped_ = 0; // pipeline drops already added to the metrics

    std::deque<outbox_entry> outbox_;
    std::vector<std::string> spare_;
    std::size_t outbox_bytes_ = 0;
    bool writing_ = false;
};

template <typename Stream> net::awaitable<void> media_session<Stream>::run(http_request req) {
    const auto& cfg = ctx_->cfg;
    // Beast's timer bounds the opening and closing handshakes.
    websocket::stream_base::timeout timeouts{};
    timeouts.handshake_timeout = cfg.handshake_timeout;
    // Not Beast's idle timeout: it re-arms a timer on every read, which costs more than the
    // rest of a frame's work. arm_idle_timer() checks twice per idle period instead.
    timeouts.idle_timeout = websocket::stream_base::none();
    timeouts.keep_alive_pings = false;
    ws_.set_option(timeouts);
    ws_.control_callback([this](websocket::frame_type, beast::string_view) {
        heard_from_peer_ = true; // pings and pongs count as the peer being alive
    });
    ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& res) {
        res.set(http::field::server, std::string("callstream/") + version);
    }));
    ws_.read_message_max(cfg.max_message_bytes);
    ws_.text(true);

    auto [ec] = co_await ws_.async_accept(req, use_nothrow);
    if (ec) {
        log(log_level::warn, "websocket_handshake_failed", {{"error", ec.message()}});
        co_return;
    }
    registry_id_ = ctx_->sessions.add(this->weak_from_this());
    ctx_->stats.streams_active.fetch_add(1, std::memory_order_relaxed);
    arm_idle_timer();
    co_await read_loop();
    finish();
}

template <typename Stream> net::awaitable<void> media_session<Stream>::read_loop() {
    for (;;) {
        auto [ec, bytes] = co_await ws_.async_read(buffer_, use_nothrow);
        if (ec) {
            on_read_error(ec);
            co_return;
        }
        if (!ws_.got_text()) {
            fail(websocket::close_code::unknown_data,
                 "binary frames are not part of the Twilio protocol; send JSON text",
                 close_reason::binary_frame);
            co_return;
        }
        // simdjson reads up to SIMDJSON_PADDING bytes past the message; make them exist.
        buffer_.prepare(simdjson::SIMDJSON_PADDING);
        const auto data = buffer_.data();
        const std::string_view text(static_cast<const char*>(data.data()), data.size());
        handle_message(text, text.size() + simdjson::SIMDJSON_PADDING);
        buffer_.consume(buffer_.size());
        if (closing_ || close_after_flush_) {
            co_return;
        }
    }
}

template <typename Stream>
void media_session<Stream>::handle_message(std::string_view text, std::size_t capacity) {
    auto& stats = ctx_->stats;
    heard_from_peer_ = true;
    stats.messages_in.fetch_add(1, std::memory_order_relaxed);
    stats.bytes_in.fetch_add(text.size(), std::memory_order_relaxed);
    auto& s = scratch();
    if (auto ec = parse_inbound(s.parser, text, capacity, msg_, parsed_start_)) {
        const bool order =
            ec == protocol_errc::missing_stream_sid || ec == protocol_errc::bad_start;
        fail(order ? websocket::close_code::policy_error : websocket::close_code::bad_payload,
             ec.message(), order ? close_reason::protocol_order : close_reason::invalid_json);
        return;
    }
    switch (msg_.event) {
    case inbound_event::connected:
        if (state_ != state::awaiting_start) {
            fail(websocket::close_code::policy_error, "connected after start",
                 close_reason::protocol_order);
        }
        return;
    case inbound_event::start:
        on_start();
        return;
    case inbound_event::media: {
        if (!check_streaming(msg_)) {
            return;
        }
        if (msg_.track == "outbound") {
            return; // a <Start> stream's outbound track is what we sent; never echo it back
        }
        const std::size_t max_bytes = codec::base64_decoded_max_size(msg_.payload.size());
        if (s.ulaw.size() < max_bytes) {
            s.ulaw.resize(max_bytes);
        }
        std::size_t n = 0;
        if (auto ec = codec::base64_decode(msg_.payload, s.ulaw, n)) {
            fail(websocket::close_code::bad_payload, "media.payload: " + ec.message(),
                 close_reason::bad_base64);
            return;
        }
        ++frames_in_;
        stats.frames_in.fetch_add(1, std::memory_order_relaxed);
        const auto t0 = std::chrono::steady_clock::now();
        pipeline_->push_audio({s.ulaw.data(), n}, msg_.timestamp_ms);
        // The pipeline counts its own drops per stream; /metrics wants the process total.
        const auto dropped = pipeline_->counters().frames_dropped;
        if (dropped != pipeline_dropped_) {
            stats.frames_dropped_pipeline.fetch_add(dropped - pipeline_dropped_,
                                                    std::memory_order_relaxed);
            pipeline_dropped_ = dropped;
        }
        flush_pipeline();
        const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - t0);
        stats.frame_processing.observe(static_cast<std::uint64_t>(us.count()));
        return;
    }
    case inbound_event::dtmf:
        if (!check_streaming(msg_)) {
            return;
        }
        if (msg_.digit.size() != 1) {
            fail(websocket::close_code::bad_payload, "dtmf.digit must be one character",
                 close_reason::invalid_json);
            return;
        }
        stats.dtmf_in.fetch_add(1, std::memory_order_relaxed);
        pipeline_->push_dtmf(msg_.digit[0]);
        flush_pipeline();
        return;
    case inbound_event::mark:
        if (!check_streaming(msg_)) {
            return;
        }
        pipeline_->push_mark(msg_.mark_name);
        flush_pipeline();
        return;
    case inbound_event::stop:
        if (!check_streaming(msg_)) {
            return;
        }
        pipeline_->stop();
        flush_pipeline();
        state_ = state::stopped;
        reason_ = close_reason::stop;
        close_after_flush_ = true;
        if (!writing_ && outbox_.empty()) {
            start_close(make_close(websocket::close_code::normal, "stream stopped"));
        } else {
            arm_close_deadline(); // a peer that stopped reading must not hold the flush open
        }
        return;
    case inbound_event::unknown:
        // Twilio may add events; an unknown one is not an error, only counted.
        stats.messages_unknown.fetch_add(1, std::memory_order_relaxed);
        log(log_level::debug, "unknown_event", {{"event", msg_.event_name}});
        return;
    }
}

template <typename Stream> void media_session<Stream>::on_start() {
    if (state_ != state::awaiting_start) {
        fail(websocket::close_code::policy_error,
             state_ == state::streaming ? "start received twice" : "start after stop",
             close_reason::protocol_order);
        return;
    }
    info_ = std::move(parsed_start_);
    const std::string app(info_.parameter("app"));
    auto chain = pipeline::make_processor_chain(app, ctx_->processors);
    if (!chain.error.empty()) {
        fail(websocket::close_code::policy_error, chain.error, close_reason::bad_app);
        return;
    }
    try {
        pipeline_ =
            std::make_unique<pipeline::stream_pipeline>(std::move(chain.chain), ctx_->pipeline);
    } catch (const std::exception& e) {
        fail(websocket::close_code::policy_error, e.what(), close_reason::bad_app);
        return;
    }
    if (pipeline_->dsp_mode()) {
        // Called on a DSP worker when output appears (once per burst): hop to our thread.
        pipeline_->set_output_ready([weak = this->weak_from_this(), executor = ws_.get_executor()] {
            net::post(executor, [weak] {
                if (auto self = weak.lock()) {
                    self->flush_pipeline();
                }
            });
        });
    }
    writer_.set_stream_sid(info_.stream_sid);
    ctx_->sessions.set_stream_sid(registry_id_, info_.stream_sid, chain.play_control);
    state_ = state::streaming;
    log(log_level::info, "stream_started",
        {{"call_sid", info_.call_sid},
         {"stream_sid", info_.stream_sid},
         {"app", app.empty() ? ctx_->processors.default_app : app}});
    if (ctx_->calls) {
        ctx_->calls->on_stream_started(info_.call_sid, info_.stream_sid,
                                       app.empty() ? ctx_->processors.default_app : app);
    }
    pipeline_->start(info_);
    flush_pipeline();
}

template <typename Stream> bool media_session<Stream>::check_streaming(const inbound_message& msg) {
    if (state_ != state::streaming) {
        fail(websocket::close_code::policy_error,
             std::string(to_string(msg.event)) +
                 (state_ == state::awaiting_start ? " before start" : " after stop"),
             close_reason::protocol_order);
        return false;
    }
    if (msg.stream_sid != info_.stream_sid) {
        fail(websocket::close_code::policy_error, "streamSid does not match this stream's",
             close_reason::protocol_order);
        return false;
    }
    return true;
}

template <typename Stream> void media_session<Stream>::on_read_error(const beast::error_code& ec) {
    if (closing_ || reason_) {
        return; // we started the close (or the stream stopped); the reason is recorded
    }
    if (ec == websocket::error::closed) {
        reason_ = close_reason::peer_closed;
    } else if (ec == websocket::error::message_too_big) {
        reason_ = close_reason::too_big; // Beast has already sent close 1009
    } else if (ec == beast::error::timeout) {
        reason_ = close_reason::idle_timeout;
    } else if (ec.category() == websocket::make_error_code(websocket::error::closed).category()) {
        reason_ = close_reason::websocket_error; // Beast has already sent close 1002
    } else {
        reason_ = close_reason::vanished; // reset, EOF without a close frame, TLS truncation
    }
    if (*reason_ != close_reason::peer_closed) {
        log(log_level::warn, "stream_read_failed",
            {{"stream_sid", info_.stream_sid}, {"error", ec.message()}});
    }
}

template <typename Stream>
void media_session<Stream>::fail(websocket::close_code code, std::string_view text,
                                 close_reason why) {
    if (closing_) {
        return;
    }
    if (!reason_ || why == close_reason::shutdown) {
        reason_ = why;
    }
    log(why == close_reason::shutdown ? log_level::info : log_level::warn, "stream_refused",
        {{"stream_sid", info_.stream_sid},
         {"code", static_cast<int>(code)},
         {"reason", std::string(to_string(why))},
         {"detail", text}});
    start_close(make_close(code, text));
}

template <typename Stream>
void media_session<Stream>::start_close(const websocket::close_reason& cr) {
    if (closing_) {
        return;
    }
    closing_ = true;
    // Queued messages are abandoned; one already handed to async_write must stay alive.
    std::uint64_t abandoned = 0;
    while (outbox_.size() > (writing_ ? 1U : 0U)) {
        abandoned += outbox_.back().media ? 1U : 0U;
        outbox_bytes_ -= outbox_.back().text.size();
        outbox_.pop_back();
    }
    ctx_->stats.frames_dropped_closing.fetch_add(abandoned, std::memory_order_relaxed);
    arm_close_deadline();
    ws_.async_close(cr, [self = this->shared_from_this()](const beast::error_code&) {
        self->close_timer_.cancel();
    });
}

// A peer that never reads can leave our close frame (or a write) stuck behind a full socket
// buffer; the timer cuts the TCP connection so the session is freed regardless.
template <typename Stream> void media_session<Stream>::arm_close_deadline() {
    close_timer_.expires_after(ctx_->cfg.handshake_timeout);
    close_timer_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
        if (!ec) {
            self->close_socket();
        }
    });
}

// A live Twilio leg may go quiet (no media during silence), so silence alone is no reason to
// close: after half an idle period without a message we ping, and only a peer that answers
// nothing for a whole idle period (half-open TCP, a vanished host) is cut off.
template <typename Stream> void media_session<Stream>::arm_idle_timer() {
    idle_timer_.expires_after(ctx_->cfg.idle_timeout / 2);
    idle_timer_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
        if (!ec) {
            self->on_idle_tick();
        }
    });
}

template <typename Stream> void media_session<Stream>::on_idle_tick() {
    if (closing_) {
        return;
    }
    if (heard_from_peer_) {
        heard_from_peer_ = false;
        pinging_ = false;
        arm_idle_timer();
        return;
    }
    if (!pinging_) {
        pinging_ = true;
        ws_.async_ping({}, [self = this->shared_from_this()](const beast::error_code&) {});
        arm_idle_timer();
        return;
    }
    if (!reason_) {
        reason_ = close_reason::idle_timeout;
    }
    log(log_level::warn, "stream_idle_timeout",
        {{"stream_sid", info_.stream_sid},
         {"idle_timeout_s", static_cast<long>(ctx_->cfg.idle_timeout.count())}});
    close_socket();
}

template <typename Stream> void media_session<Stream>::flush_pipeline() {
    if (closing_) {
        return;
    }
    auto& stats = ctx_->stats;
    pipeline_->drain([&](const pipeline::outbound_event& ev) {
        outbox_entry entry{take_buffer(), false};
        switch (ev.type) {
        case pipeline::outbound_event::kind::media:
            writer_.media(ev.media(), entry.text);
            entry.media = true;
            ++frames_out_;
            stats.frames_out.fetch_add(1, std::memory_order_relaxed);
            break;
        case pipeline::outbound_event::kind::mark:
            writer_.mark(ev.mark_name(), entry.text);
            stats.marks_out.fetch_add(1, std::memory_order_relaxed);
            break;
        case pipeline::outbound_event::kind::clear:
            // Media still queued here would only be discarded by Twilio after the clear.
            for (auto it = outbox_.begin() + (writing_ ? 1 : 0); it != outbox_.end();) {
                if (it->media) {
                    stats.frames_dropped_cleared.fetch_add(1, std::memory_order_relaxed);
                    outbox_bytes_ -= it->text.size();
                    recycle(std::move(it->text));
                    it = outbox_.erase(it);
                } else {
                    ++it;
                }
            }
            writer_.clear(entry.text);
            stats.clears_out.fetch_add(1, std::memory_order_relaxed);
            break;
        }
        outbox_bytes_ += entry.text.size();
        outbox_.push_back(std::move(entry));
    });
    if (outbox_bytes_ > ctx_->cfg.outbox_bytes) {
        fail(websocket::close_code::policy_error,
             "slow consumer: outbound queue over " + std::to_string(ctx_->cfg.outbox_bytes) +
                 " bytes",
             close_reason::slow_consumer);
        return;
    }
    if (!writing_ && !outbox_.empty()) {
        do_write();
    }
}

template <typename Stream> void media_session<Stream>::do_write() {
    writing_ = true;
    ws_.async_write(
        net::buffer(outbox_.front().text),
        [self = this->shared_from_this()](const beast::error_code& ec, std::size_t bytes) {
            self->on_write(ec, bytes);
        });
}

template <typename Stream>
void media_session<Stream>::on_write(const beast::error_code& ec, std::size_t bytes) {
    writing_ = false;
    outbox_bytes_ -= outbox_.front().text.size();
    recycle(std::move(outbox_.front().text));
    outbox_.pop_front();
    if (ec) {
        // The read side sees the broken connection and ends the session.
        outbox_.clear();
        outbox_bytes_ = 0;
        return;
    }
    ctx_->stats.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    if (closing_) {
        return;
    }
    if (!outbox_.empty()) {
        do_write();
    } else if (close_after_flush_) {
        start_close(make_close(websocket::close_code::normal, "stream stopped"));
    }
}

template <typename Stream> void media_session<Stream>::finish() {
    if (pipeline_ && state_ == state::streaming) {
        pipeline_->stop(); // the peer vanished without stop: let processors close their files
    }
    idle_timer_.cancel();
    ctx_->sessions.remove(registry_id_);
    if (ctx_->calls && !info_.stream_sid.empty()) {
        ctx_->calls->on_stream_stopped(info_.call_sid, info_.stream_sid);
    }
    ctx_->stats.streams_active.fetch_sub(1, std::memory_order_relaxed);
    const auto why = reason_.value_or(close_reason::vanished);
    ctx_->stats.count_close(why);
    log(log_level::info, "stream_closed",
        {{"call_sid", info_.call_sid},
         {"stream_sid", info_.stream_sid},
         {"reason", std::string(to_string(why))},
         {"frames_in", frames_in_},
         {"frames_out", frames_out_}});
}

} // namespace

template <typename Stream>
net::awaitable<void> run_media_session(Stream stream, http_request req,
                                       std::shared_ptr<server_context> ctx) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        // Plain WebSocket runs on the bare socket: tcp_stream's per-operation timer
        // bookkeeping is not needed once the session keeps its own deadlines.
        auto session = std::make_shared<media_session<net::ip::tcp::socket>>(
            stream.release_socket(), std::move(ctx));
        co_await session->run(std::move(req));
    } else {
        auto session = std::make_shared<media_session<Stream>>(std::move(stream), std::move(ctx));
        co_await session->run(std::move(req));
    }
}

template net::awaitable<void> run_media_session<beast::tcp_stream>(beast::tcp_stream, http_request,
                                                                   std::shared_ptr<server_context>);
template net::awaitable<void> run_media_session<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>, http_request, std::shared_ptr<server_context>);

} // namespace callstream::server
