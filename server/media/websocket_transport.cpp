#include "server/media/websocket_transport.hpp"

#include <chrono>
#include <optional>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <simdjson.h>

#include "server/app/log.hpp"
#include "server/app/version.hpp"
#include "server/media/media_session_handle.hpp"

namespace callstream::server {
namespace {

namespace websocket = beast::websocket;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

websocket::close_reason make_close(std::uint16_t code, std::string_view text) {
    // RFC 6455 allows 123 bytes of reason in a close frame.
    return websocket::close_reason(static_cast<websocket::close_code>(code), text.substr(0, 123));
}

struct outbox_entry {
    std::string text;
    message_kind kind = message_kind::control;
};

// The outbox: a ring of entries (FIFO) whose strings are swapped in and out rather than freed,
// so a steady stream of messages allocates nothing (std::deque allocated a block every few
// dozen messages). It grows, doubling, only past the deepest queue seen so far; --outbox-bytes
// bounds that.
class outbox_ring {
  public:
    bool empty() const noexcept { return count_ == 0; }
    std::size_t size() const noexcept { return count_; }
    outbox_entry& at(std::size_t i) noexcept { return slots_[(head_ + i) & (slots_.size() - 1)]; }
    outbox_entry& front() noexcept { return at(0); }
    outbox_entry& back() noexcept { return at(count_ - 1); }

    // Takes `text` into the ring and hands back the slot's previous string (cleared of meaning,
    // capacity kept) for reuse.
    void push_back(std::string& text, message_kind kind) {
        if (count_ == slots_.size()) {
            grow();
        }
        auto& slot = at(count_++);
        std::swap(slot.text, text);
        slot.kind = kind;
    }
    void pop_front() noexcept {
        head_ = (head_ + 1) & (slots_.size() - 1);
        --count_;
    }
    void pop_back() noexcept { --count_; }
    void clear() noexcept { count_ = 0; }
    // Keeps entries [0, first) and the entries from `first` on that `keep` accepts, in order.
    template <typename Keep> void retain_from(std::size_t first, Keep keep) {
        std::size_t out = first;
        for (std::size_t i = first; i < count_; ++i) {
            if (keep(at(i))) {
                if (out != i) {
                    std::swap(at(out), at(i));
                }
                ++out;
            }
        }
        count_ = out;
    }

  private:
    void grow() {
        std::vector<outbox_entry> bigger(slots_.empty() ? 8 : slots_.size() * 2);
        for (std::size_t i = 0; i < count_; ++i) {
            bigger[i] = std::move(at(i));
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<outbox_entry> slots_; // a power of two in size (or empty)
    std::size_t head_ = 0;
    std::size_t count_ = 0;
};

// Templated on the stream (plain socket or TLS) rather than type-erased: Beast's websocket
// stream is itself a template, and erasing it would put a virtual call and a heap-allocated
// handler under every read and write; the handler above it is erased instead (one virtual call
// per message, not per I/O operation).
//
// The socket and timers carry their executor's concrete type (io_context::executor_type for
// plain WebSockets) rather than any_io_executor: every operation otherwise copies and destroys
// a type-erased executor (about 5 % of a frame's CPU in the profile, bench/README.md).
template <typename Stream>
class websocket_transport final : public stream_transport,
                                  public media_session_handle,
                                  public std::enable_shared_from_this<websocket_transport<Stream>> {
  public:
    using executor_type = typename websocket::stream<Stream>::executor_type;
    using timer =
        net::basic_waitable_timer<std::chrono::steady_clock,
                                  net::wait_traits<std::chrono::steady_clock>, executor_type>;

    websocket_transport(Stream&& stream, std::shared_ptr<server_context> ctx,
                        std::unique_ptr<stream_handler> handler)
        : ws_(std::move(stream)), ctx_(std::move(ctx)), handler_(std::move(handler)),
          close_timer_(ws_.get_executor()), idle_timer_(ws_.get_executor()),
          pause_timer_(ws_.get_executor()), done_(ws_.get_executor()) {}

    net::awaitable<void> run(http_request req);

    // stream_transport
    std::string take_buffer() override;
    void send(std::string text, message_kind kind) override;
    std::size_t drop_queued_media() override;
    void close(std::uint16_t code, std::string_view text, close_reason why) override;
    void close_when_flushed(std::string_view text, close_reason why) override;
    bool closing() const noexcept override { return closing_; }
    std::function<void()> cross_thread_wakeup() override;
    net::any_io_executor executor() override { return ws_.get_executor(); }

    // media_session_handle
    void post_close(std::uint16_t code, std::string reason) override;
    void post_to_pipeline(std::function<void(pipeline::stream_pipeline&)> fn) override;

  private:
    void do_read();
    void on_read(const beast::error_code& ec, std::size_t bytes);
    void do_pause();
    void stop_reading();
    void on_read_error(const beast::error_code& ec);
    void start_close(const websocket::close_reason& cr);
    void arm_close_deadline();
    void arm_idle_timer();
    void on_idle_tick();
    void close_socket() { beast::close_socket(beast::get_lowest_layer(ws_)); }
    void do_write();
    void on_write(const beast::error_code& ec, std::size_t bytes);
    void recycle(std::string&& s);

    websocket::stream<Stream> ws_;
    std::shared_ptr<server_context> ctx_;
    std::unique_ptr<stream_handler> handler_;
    beast::flat_buffer buffer_;
    timer close_timer_;
    timer idle_timer_;
    timer pause_timer_; // re-asks reading_paused() while the stream holds reading
    timer done_;        // never expires: run() waits on it until reading stops (cancel)
    bool reading_ = true;
    frame_counters* frames_ = nullptr; // this network thread's /metrics shard
    bool heard_from_peer_ = true;      // any message or pong since the last idle tick
    bool pinging_ = false;             // a keep-alive ping is out and unanswered

    bool closing_ = false;
    bool close_after_flush_ = false;
    std::string close_after_flush_text_;
    std::optional<close_reason> reason_;

    outbox_ring outbox_;
    std::vector<std::string> spare_;
    std::size_t outbox_bytes_ = 0;
    bool writing_ = false;
};

template <typename Stream> net::awaitable<void> websocket_transport<Stream>::run(http_request req) {
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
    frames_ = &ctx_->stats.frames();
    handler_->on_open(*this, this->weak_from_this());
    arm_idle_timer();
    // One long-lived read handler (do_read/on_read) rather than a coroutine resumed per
    // message; this coroutine only waits for the reading to end. It holds the session (the
    // caller's shared_ptr) until then, which is why the read handlers may capture `this`.
    done_.expires_at(timer::time_point::max());
    do_read();
    while (reading_) {
        (void)co_await done_.async_wait(use_nothrow);
    }
}

template <typename Stream> void websocket_transport<Stream>::do_read() {
    ws_.async_read(buffer_,
                   [this](const beast::error_code& ec, std::size_t bytes) { on_read(ec, bytes); });
}

// The session's end, on the read handler that saw it (as the read loop's end was): the stream
// hears on_closed before anything else queued on this thread runs.
template <typename Stream> void websocket_transport<Stream>::stop_reading() {
    reading_ = false;
    idle_timer_.cancel();
    handler_->on_closed(reason_.value_or(close_reason::vanished));
    done_.cancel(); // run() returns; pending handlers hold the session from here
}

template <typename Stream>
void websocket_transport<Stream>::on_read(const beast::error_code& ec, std::size_t) {
    if (ec) {
        on_read_error(ec);
        stop_reading();
        return;
    }
    heard_from_peer_ = true;
    if (!ws_.got_text()) {
        close(close_code::unsupported_data,
              "binary frames are not part of the Twilio protocol; send JSON text",
              close_reason::binary_frame);
        stop_reading();
        return;
    }
    // simdjson reads up to SIMDJSON_PADDING bytes past the message; make them exist.
    buffer_.prepare(simdjson::SIMDJSON_PADDING);
    const auto data = buffer_.data();
    const std::string_view text(static_cast<const char*>(data.data()), data.size());
    frames_->messages_in.fetch_add(1, std::memory_order_relaxed);
    frames_->bytes_in.fetch_add(text.size(), std::memory_order_relaxed);
    handler_->on_text(text, text.size() + simdjson::SIMDJSON_PADDING);
    buffer_.consume(buffer_.size());
    if (closing_ || close_after_flush_) {
        stop_reading();
        return;
    }
    do_pause();
}

// Backpressure: while the stream's consumer is behind, leave the socket unread so TCP slows
// the sender (a burst after a network stall) rather than anything being dropped.
template <typename Stream> void websocket_transport<Stream>::do_pause() {
    if (!handler_->reading_paused()) {
        do_read();
        return;
    }
    heard_from_peer_ = true; // we are the one not reading; the idle timer must not cut
    pause_timer_.expires_after(std::chrono::milliseconds(5));
    pause_timer_.async_wait([this](const beast::error_code&) {
        if (closing_) {
            stop_reading();
            return;
        }
        do_pause();
    });
}

template <typename Stream>
void websocket_transport<Stream>::on_read_error(const beast::error_code& ec) {
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
            {{"stream_sid", handler_->log_id()}, {"error", ec.message()}});
    }
}

template <typename Stream> std::string websocket_transport<Stream>::take_buffer() {
    if (spare_.empty()) {
        std::string s;
        s.reserve(512);
        return s;
    }
    std::string s = std::move(spare_.back());
    spare_.pop_back();
    return s;
}

// A recycled string keeps its old contents: the writer sets the size it needs, and a media
// message is the same length as the one before it, so its resize() neither allocates nor
// zero-fills (clearing here made every resize fill ~300 bytes before base64 overwrote them).
template <typename Stream> void websocket_transport<Stream>::recycle(std::string&& s) {
    if (spare_.size() < 8 && s.capacity() > 0) {
        spare_.push_back(std::move(s));
    }
}

template <typename Stream>
void websocket_transport<Stream>::send(std::string text, message_kind kind) {
    if (closing_) {
        if (kind == message_kind::media) {
            ctx_->stats.frames_dropped_closing.fetch_add(1, std::memory_order_relaxed);
        }
        return;
    }
    outbox_bytes_ += text.size();
    outbox_.push_back(text, kind);
    recycle(std::move(text)); // the ring slot's previous string
    if (outbox_bytes_ > ctx_->cfg.outbox_bytes) {
        close(close_code::policy,
              "slow consumer: outbound queue over " + std::to_string(ctx_->cfg.outbox_bytes) +
                  " bytes",
              close_reason::slow_consumer);
        return;
    }
    if (!writing_) {
        do_write();
    }
}

template <typename Stream> std::size_t websocket_transport<Stream>::drop_queued_media() {
    std::size_t dropped = 0;
    // The front entry is the one handed to async_write while writing_: it must stay alive.
    outbox_.retain_from(writing_ ? 1 : 0, [&](const outbox_entry& e) {
        if (e.kind != message_kind::media) {
            return true;
        }
        ++dropped;
        outbox_bytes_ -= e.text.size();
        return false;
    });
    return dropped;
}

template <typename Stream>
void websocket_transport<Stream>::close(std::uint16_t code, std::string_view text,
                                        close_reason why) {
    if (closing_) {
        return;
    }
    if (!reason_ || why == close_reason::shutdown) {
        reason_ = why;
    }
    log(why == close_reason::shutdown ? log_level::info : log_level::warn, "stream_refused",
        {{"stream_sid", handler_->log_id()},
         {"code", static_cast<int>(code)},
         {"reason", std::string(to_string(why))},
         {"detail", text}});
    start_close(make_close(code, text));
}

template <typename Stream>
void websocket_transport<Stream>::close_when_flushed(std::string_view text, close_reason why) {
    if (closing_ || close_after_flush_) {
        return;
    }
    reason_ = why;
    close_after_flush_ = true;
    if (!writing_ && outbox_.empty()) {
        start_close(make_close(close_code::normal, text));
    } else {
        close_after_flush_text_ = text;
        arm_close_deadline(); // a peer that stopped reading must not hold the flush open
    }
}

template <typename Stream>
void websocket_transport<Stream>::start_close(const websocket::close_reason& cr) {
    if (closing_) {
        return;
    }
    closing_ = true;
    // Queued messages are abandoned; one already handed to async_write must stay alive.
    std::uint64_t abandoned = 0;
    while (outbox_.size() > (writing_ ? 1U : 0U)) {
        abandoned += outbox_.back().kind == message_kind::media ? 1U : 0U;
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
template <typename Stream> void websocket_transport<Stream>::arm_close_deadline() {
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
template <typename Stream> void websocket_transport<Stream>::arm_idle_timer() {
    idle_timer_.expires_after(ctx_->cfg.idle_timeout / 2);
    idle_timer_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
        if (!ec) {
            self->on_idle_tick();
        }
    });
}

template <typename Stream> void websocket_transport<Stream>::on_idle_tick() {
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
        {{"stream_sid", handler_->log_id()},
         {"idle_timeout_s", static_cast<long>(ctx_->cfg.idle_timeout.count())}});
    close_socket();
}

template <typename Stream> void websocket_transport<Stream>::do_write() {
    writing_ = true;
    ws_.async_write(
        net::buffer(outbox_.front().text),
        [self = this->shared_from_this()](const beast::error_code& ec, std::size_t bytes) {
            self->on_write(ec, bytes);
        });
}

template <typename Stream>
void websocket_transport<Stream>::on_write(const beast::error_code& ec, std::size_t bytes) {
    writing_ = false;
    outbox_bytes_ -= outbox_.front().text.size();
    outbox_.pop_front(); // the slot keeps its string for the next message
    if (ec) {
        // The read side sees the broken connection and ends the session.
        outbox_.clear();
        outbox_bytes_ = 0;
        return;
    }
    frames_->bytes_out.fetch_add(bytes, std::memory_order_relaxed);
    if (closing_) {
        return;
    }
    if (!outbox_.empty()) {
        do_write();
    } else if (close_after_flush_) {
        start_close(make_close(close_code::normal, close_after_flush_text_));
    }
}

template <typename Stream>
std::function<void()> websocket_transport<Stream>::cross_thread_wakeup() {
    return [weak = this->weak_from_this(), executor = ws_.get_executor()] {
        net::post(executor, [weak] {
            if (auto self = weak.lock()) {
                self->handler_->on_wakeup();
            }
        });
    };
}

template <typename Stream>
void websocket_transport<Stream>::post_close(std::uint16_t code, std::string reason) {
    net::post(ws_.get_executor(),
              [self = this->shared_from_this(), code, reason = std::move(reason)] {
                  const auto why = code == close_code::going_away ? close_reason::shutdown
                                                                  : close_reason::protocol_order;
                  self->close(code, reason, why);
              });
}

template <typename Stream>
void websocket_transport<Stream>::post_to_pipeline(
    std::function<void(pipeline::stream_pipeline&)> fn) {
    net::post(ws_.get_executor(), [self = this->shared_from_this(), fn = std::move(fn)] {
        if (!self->closing_) {
            self->handler_->on_pipeline_request(fn);
        }
    });
}

// The plain socket a WebSocket runs on: bound to its io_context's own executor type.
using plain_socket = net::basic_stream_socket<net::ip::tcp, net::io_context::executor_type>;

} // namespace

template <typename Stream>
net::awaitable<void> run_websocket_transport(Stream stream, http_request req,
                                             std::shared_ptr<server_context> ctx,
                                             std::unique_ptr<stream_handler> handler) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        // Plain WebSocket runs on the bare socket: tcp_stream's per-operation timer
        // bookkeeping is not needed once the session keeps its own deadlines.
        net::ip::tcp::socket socket = stream.release_socket();
        // Every connection the server accepts lives on an io_context; rebind its descriptor to
        // a socket of the concrete executor type (no type-erased executor per operation).
        if (const auto* ex =
                socket.get_executor().template target<net::io_context::executor_type>()) {
            beast::error_code ec;
            const auto endpoint = socket.local_endpoint(ec);
            if (!ec) {
                auto& ioc = ex->context();
                const auto fd = socket.release(ec);
                if (ec) {
                    co_return; // the descriptor is still the old socket's: it closes it
                }
                auto session = std::make_shared<websocket_transport<plain_socket>>(
                    plain_socket(ioc, endpoint.protocol(), fd), std::move(ctx), std::move(handler));
                co_await session->run(std::move(req));
                co_return;
            }
        }
        auto session = std::make_shared<websocket_transport<net::ip::tcp::socket>>(
            std::move(socket), std::move(ctx), std::move(handler));
        co_await session->run(std::move(req));
    } else {
        auto session = std::make_shared<websocket_transport<Stream>>(
            std::move(stream), std::move(ctx), std::move(handler));
        co_await session->run(std::move(req));
    }
}

template net::awaitable<void>
    run_websocket_transport<beast::tcp_stream>(beast::tcp_stream, http_request,
                                               std::shared_ptr<server_context>,
                                               std::unique_ptr<stream_handler>);
template net::awaitable<void> run_websocket_transport<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>, http_request, std::shared_ptr<server_context>,
    std::unique_ptr<stream_handler>);

} // namespace callstream::server
