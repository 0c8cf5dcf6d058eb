#include "server/media/websocket_transport.hpp"

#include <array>
#include <atomic>
#include <cassert>
#include <chrono>
#include <cstring>
#include <malloc.h>
#include <optional>
#include <span>
#include <type_traits>
#include <utility>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/basic_waitable_timer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/ssl.hpp>
#include <simdjson.h>

#include "codec/websocket_frame.hpp"
#include "server/app/drained_read.hpp"
#include "server/app/log.hpp"
#include "server/app/polled_reads.hpp"
#include "server/app/tls_socket.hpp"
#include "server/app/write_batch.hpp"
#include "server/app/write_now.hpp"
#include "server/media/media_session_handle.hpp"
#include "server/media/websocket_upgrade.hpp"

namespace callstream::server {
namespace {

constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// The plain socket a WebSocket runs on: bound to its io_context's own executor type.
using plain_socket = tls_socket::socket_type;

// What an outbox entry holds: a text message (framed at write time, header and payload
// gathered), or a whole control frame already framed (pong, ping, close).
enum class entry_type : std::uint8_t { text, frame, close_frame };

struct outbox_entry {
    std::string text;
    message_kind kind = message_kind::control;
    entry_type type = entry_type::text;
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
    void push_back(std::string& text, message_kind kind, entry_type type) {
        if (count_ == slots_.size()) {
            grow();
        }
        auto& slot = at(count_++);
        std::swap(slot.text, text);
        slot.kind = kind;
        slot.type = type;
    }
    void pop_front() noexcept {
        head_ = (head_ + 1) & (slots_.size() - 1);
        --count_;
    }
    void pop_back() noexcept { --count_; }
    void clear() noexcept { count_ = 0; }
    // Keeps the entries that `keep` accepts, in order.
    template <typename Keep> void retain(Keep keep) {
        std::size_t out = 0;
        for (std::size_t i = 0; i < count_; ++i) {
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

// Counts live media sessions; the last one to end hands the heap's free memory back to the
// kernel. glibc keeps freed blocks under its mmap threshold (a session's 64 KiB read buffer, its
// pipeline) in the heap, so after a peak of calls RSS stayed at the peak's size (58 MiB after
// 800 calls against 8 MiB before) with nothing live. Trimming costs a few ms, only when the
// server falls idle. Declared first in the session, so it is destroyed after everything else.
class live_session_count {
  public:
    live_session_count() noexcept { live_.fetch_add(1, std::memory_order_relaxed); }
    ~live_session_count() {
        if (live_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            ::malloc_trim(0);
        }
    }
    live_session_count(const live_session_count&) = delete;
    live_session_count& operator=(const live_session_count&) = delete;

  private:
    static inline std::atomic<int> live_{0};
};

template <typename Stream> constexpr bool is_tls_stream = std::is_same_v<Stream, tls_socket>;
// Streams whose live reads go through the thread's socket_poller rather than Asio's reactor
// (polled_reads.hpp).
template <typename Stream> constexpr bool is_polled_stream = std::is_same_v<Stream, plain_socket>;

// Templated on the stream (plain socket or TLS) rather than type-erased: erasing it would put
// a virtual call and a heap-allocated handler under every read and write; the handler above it
// is erased instead (one virtual call per message, not per I/O operation).
//
// The socket and timers carry their executor's concrete type (io_context::executor_type, ws
// and wss) rather than any_io_executor: every operation otherwise copies and destroys
// a type-erased executor (about 5 % of a frame's CPU in the profile, bench/README.md).
//
// RFC 6455 framing is callstream's own (codec/websocket_frame.hpp) rather than Beast's
// websocket::stream: one read takes everything the socket holds and every complete frame in it
// is handled before the next read, a read that empties the socket makes the next one wait for
// epoll (no recv that returns EAGAIN, drained_read.hpp), and one gather write sends every
// message queued meanwhile (over TLS: as one record, tls_socket.hpp).
template <typename Stream>
class websocket_transport final : public stream_transport,
                                  public media_session_handle,
                                  public deferred_writer,
                                  public std::enable_shared_from_this<websocket_transport<Stream>> {
  public:
    using executor_type = typename Stream::executor_type;
    using timer =
        net::basic_waitable_timer<std::chrono::steady_clock,
                                  net::wait_traits<std::chrono::steady_clock>, executor_type>;

    websocket_transport(Stream&& stream, beast::flat_buffer&& pending,
                        std::shared_ptr<server_context> ctx,
                        std::unique_ptr<stream_handler> handler)
        : stream_(std::move(stream)), ctx_(std::move(ctx)), handler_(std::move(handler)),
          reader_(codec::ws_reader_limits{ctx_->cfg.max_message_bytes, padding}),
          close_timer_(stream_.get_executor()), idle_timer_(stream_.get_executor()),
          pause_timer_(stream_.get_executor()), done_(stream_.get_executor()),
          writes_(write_batch::of_executor(beast::get_lowest_layer(stream_).get_executor())) {
        // The bytes the HTTP reader took past the request are the first frames.
        const auto held = pending.data();
        resize_read_buffer(std::max(read_chunk_bytes, held.size()));
        std::memcpy(rbuf_.get(), held.data(), held.size());
        end_ = held.size();
    }

    net::awaitable<void> run(http_request req);

    // stream_transport
    std::string take_buffer() override;
    void send(std::string text, message_kind kind) override;
    // deferred_writer
    void flush_deferred() override;
    std::size_t drop_queued_media() override;
    void close(std::uint16_t code, std::string_view text, close_reason why) override;
    void close_when_flushed(std::string_view text, close_reason why) override;
    bool closing() const noexcept override { return closing_; }
    std::function<void()> cross_thread_wakeup() override;
    net::any_io_executor executor() override { return stream_.get_executor(); }
    pipeline::warm_lines& hot_lines() override { return warm_; }

    // media_session_handle
    void post_close(std::uint16_t code, std::string reason) override;
    void post_to_pipeline(std::function<void(pipeline::stream_pipeline&)> fn) override;

  private:
    friend class polled_reads<websocket_transport>;
    static constexpr std::size_t padding = simdjson::SIMDJSON_PADDING;
    // One read takes up to this much (everything a busy socket holds); grown for a frame that
    // is bigger (up to --max-message-bytes), shrunk back once it has been handled.
    static constexpr std::size_t read_chunk_bytes = 64 * 1024;
    // One gather write sends at most this many messages (a header and a payload each: 64
    // buffers, what Linux's writev takes in one call through Asio) or this many bytes.
    static constexpr std::size_t max_batch_messages = 32;
    static constexpr std::size_t max_batch_bytes = 256 * 1024;

    void do_read();
    // Waits for `room` to be filled: through the poller while polled, else through Asio.
    void start_read(net::mutable_buffer room);
    void on_read(const beast::error_code& ec, std::size_t bytes);
    void process();
    void await_close_reply();
    bool on_event(const codec::ws_event& e);
    void do_pause();
    void stop_reading();
    void on_read_error(const beast::error_code& ec);
    void continue_teardown();
    void scan_for_close_reply();
    void send_fin();
    // The close handshake is over: the peer's close frame was read, or the peer broke the
    // protocol (then no reply is waited for).
    bool handshake_over() const noexcept { return peer_closed_ || peer_failed_; }
    void finish_socket();
    void start_close(std::uint16_t code, std::string_view text);
    void queue_frame(std::string frame, entry_type type);
    void arm_close_deadline();
    void arm_idle_timer();
    void on_idle_tick();
    void close_socket() {
        unpoll(); // a read waiting on the poller moves to Asio, and the close cancels it
        beast::close_socket(beast::get_lowest_layer(stream_));
    }
    void do_write();
    bool write_batch_now();
    void on_write(const beast::error_code& ec, std::size_t bytes);
    // The batch in flight is written (or failed): true when more is queued to write now.
    bool written(const beast::error_code& ec);
    void recycle(std::string&& s);
    void resize_read_buffer(std::size_t bytes);
    void add_own_hot_lines();
    // The poller's read path (socket_poller.hpp), plain sockets only: the live session's
    // descriptor is taken out of Asio's reactor into the poller's set, and put back (unpoll)
    // before anything else is done with the socket (a write that must wait, the close, FIN).
    void start_polling();
    void unpoll();
    bool polled() const noexcept { return polled_.active(); }
    void read_elsewhere(net::mutable_buffer room) { start_read(room); } // polled_reads: on Asio

    live_session_count live_; // first: destroyed last
    Stream stream_;
    std::shared_ptr<server_context> ctx_;
    std::unique_ptr<stream_handler> handler_;

    // Bytes read: [begin_, end_) of rbuf_ are not yet handled; `padding` readable bytes follow
    // its cap_ (simdjson reads past a message's end).
    std::unique_ptr<std::uint8_t[]> rbuf_;
    std::size_t cap_ = 0;
    std::size_t begin_ = 0;
    std::size_t end_ = 0;
    std::size_t need_ = 0; // bytes the next frame needs in all (from the reader)
    codec::ws_frame_reader reader_;
    bool read_pending_ = false;
    drained_reads reads_; // no recv that returns EAGAIN (drained_read.hpp)
    polled_reads<websocket_transport> polled_{*this}; // while live, plain sockets

    timer close_timer_;
    timer idle_timer_;
    timer pause_timer_;   // re-asks reading_paused() while the stream holds reading
    timer done_;          // never expires: run() waits on it until reading stops (cancel)
    bool reading_ = true; // the session is live (on_closed not yet called)
    frame_counters* frames_ = nullptr; // this network thread's /metrics shard
    bool heard_from_peer_ = true;      // any bytes since the last idle tick
    bool pinging_ = false;             // a keep-alive ping is out and unanswered

    bool closing_ = false;       // our close frame is queued: nothing more is sent
    bool close_written_ = false; // ... and written
    bool peer_closed_ = false;   // the peer's close frame was read
    bool peer_failed_ = false;   // the peer broke RFC 6455 (its frames are not read further)
    bool fin_sent_ = false;
    bool socket_done_ = false;
    bool close_after_flush_ = false;
    std::string close_after_flush_text_;
    std::optional<close_reason> reason_;

    outbox_ring outbox_;
    std::vector<std::string> spare_;
    std::size_t outbox_bytes_ = 0; // queued and in flight
    bool writing_ = false;
    // The write in flight: its strings (swapped out of the ring), headers and buffers.
    std::array<std::string, max_batch_messages> inflight_;
    std::array<codec::ws_frame_header, max_batch_messages> headers_;
    std::array<net::const_buffer, 2 * max_batch_messages> buffers_;
    std::size_t inflight_bytes_ = 0;      // payload bytes of the entries in flight
    std::size_t inflight_text_bytes_ = 0; // of which text messages
    bool inflight_close_ = false;
    write_batch* writes_;   // this thread's end-of-pass writes (null: write at once)
    bool deferred_ = false; // in writes_, its flush to come
    // Prefetched before each read: ours, then the handler's, then per read.
    pipeline::warm_lines warm_;
};

// The members a message reaches on its way in and its reply's way out (not the timers, which a
// message does not touch), and the first outbox slots.
template <typename Stream> void websocket_transport<Stream>::add_own_hot_lines() {
    warm_.add_range(this, &close_timer_);
    warm_.add_range(&reading_, &inflight_);
    warm_.add(&inflight_[0], sizeof inflight_[0]);
    warm_.add(&headers_[0], sizeof headers_[0]);
    warm_.add(&buffers_[0], 2 * sizeof buffers_[0]);
    warm_.add(&writes_, sizeof writes_ + sizeof deferred_);
    warm_.keep();
}

template <typename Stream> void websocket_transport<Stream>::resize_read_buffer(std::size_t bytes) {
    // Uninitialised on purpose: a session's pages are touched only as far as reads fill them.
    auto bigger = std::make_unique_for_overwrite<std::uint8_t[]>(bytes + padding);
    if (end_ > begin_) {
        std::memcpy(bigger.get(), rbuf_.get() + begin_, end_ - begin_);
    }
    end_ -= begin_;
    begin_ = 0;
    rbuf_ = std::move(bigger);
    cap_ = bytes;
}

template <typename Stream> net::awaitable<void> websocket_transport<Stream>::run(http_request req) {
    const auto& cfg = ctx_->cfg;
    // The 101 (or a refusal) must be written within the handshake timeout.
    close_timer_.expires_after(cfg.handshake_timeout);
    close_timer_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
        if (!ec) {
            self->close_socket();
        }
    });
    if (auto refused = refuse_websocket_handshake(req)) {
        log(log_level::warn, "websocket_handshake_failed",
            {{"error", std::string(refused->body())}});
        (void)co_await http::async_write(stream_, *refused, use_nothrow);
        close_timer_.cancel();
        co_return;
    }
    const std::string accept = websocket_upgrade_response(req);
    auto [ec, written] = co_await net::async_write(stream_, net::buffer(accept), use_nothrow);
    close_timer_.cancel();
    if (ec) {
        log(log_level::warn, "websocket_handshake_failed", {{"error", ec.message()}});
        co_return;
    }
    frames_ = &ctx_->stats.frames();
    reads_.watch(stream_);
    add_own_hot_lines();
    start_polling();
    handler_->on_open(*this, this->weak_from_this());
    arm_idle_timer();
    // One long-lived read handler (do_read/on_read) rather than a coroutine resumed per
    // message; this coroutine only waits for the reading to end. It holds the session (the
    // caller's shared_ptr) until then, which is why the read handlers may capture `this`.
    done_.expires_at(timer::time_point::max());
    process(); // frames that came with the request, then the first read
    while (reading_) {
        (void)co_await done_.async_wait(use_nothrow);
    }
}

template <typename Stream> void websocket_transport<Stream>::do_read() {
    // Unhandled bytes (a partial frame) move to the front; a frame bigger than the buffer
    // grows it, and the grown buffer is given back once it is empty again.
    if (begin_ == end_) {
        begin_ = end_ = 0;
        if (cap_ > read_chunk_bytes && need_ <= read_chunk_bytes) {
            resize_read_buffer(read_chunk_bytes);
        }
    } else if (begin_ > 0) {
        std::memmove(rbuf_.get(), rbuf_.get() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
    }
    if (need_ > cap_) {
        resize_read_buffer(need_);
    }
    read_pending_ = true;
    const auto room = net::buffer(rbuf_.get() + end_, cap_ - end_);
    if (reading_) {
        // What moves from message to message: the handler's (a ring's next slot), where the
        // next bytes land, and the spare string the reply is written into.
        warm_.drop_per_frame();
        handler_->add_next_message_lines(warm_);
        warm_.add(rbuf_.get() + end_, 256);
        if (!spare_.empty()) {
            warm_.add(&spare_.back(), sizeof(std::string));
            warm_.add(spare_.back().data(), 320);
        }
    }
    start_read(room);
}

template <typename Stream> void websocket_transport<Stream>::start_read(net::mutable_buffer room) {
    if (polled()) {
        polled_.read(room);
        return;
    }
    if (reading_) {
        // run() holds the session while it is live: a frame costs no reference counting.
        reads_.async_read_some(
            stream_, room,
            [this](const beast::error_code& ec, std::size_t bytes) { on_read(ec, bytes); }, &warm_);
    } else {
        reads_.async_read_some(
            stream_, room,
            [self = this->shared_from_this()](const beast::error_code& ec, std::size_t bytes) {
                self->on_read(ec, bytes);
            });
    }
}

template <typename Stream>
void websocket_transport<Stream>::on_read(const beast::error_code& ec, std::size_t bytes) {
    read_pending_ = false;
    if (!reading_) {
        // The session has ended: what the peer sends now is read only to reach its end of the
        // connection without resetting it.
        if (ec) {
            finish_socket();
            return;
        }
        end_ += bytes;
        continue_teardown();
        return;
    }
    if (ec) {
        on_read_error(ec);
        stop_reading();
        finish_socket();
        return;
    }
    end_ += bytes;
    heard_from_peer_ = true;
    if (closing_) {
        await_close_reply();
        return;
    }
    process();
}

// Moves the live session's descriptor from Asio's reactor to the thread's poller. A socket that
// cannot go there stays on Asio, which reads it the same way, only through more steps.
template <typename Stream> void websocket_transport<Stream>::start_polling() {
    if constexpr (is_polled_stream<Stream>) {
        polled_.start(stream_, this->shared_from_this(), &warm_);
    }
}

// Gives the descriptor back to Asio (a read waiting on the poller moves there): from here the
// session runs on Asio alone, as a TLS one does.
template <typename Stream> void websocket_transport<Stream>::unpoll() {
    if constexpr (is_polled_stream<Stream>) {
        polled_.stop(stream_);
    }
}

// After our close frame (sent from outside the read path: a timer, another thread, the
// outbox): what the peer sends is dropped until its close reply, which ends the session (as a
// violation or the connection's end does). The close deadline bounds the wait.
template <typename Stream> void websocket_transport<Stream>::await_close_reply() {
    scan_for_close_reply();
    if (!handshake_over()) {
        do_read();
        return;
    }
    stop_reading();
    continue_teardown();
}

// Handles every complete frame in the buffer, then reads again (or holds reading).
template <typename Stream> void websocket_transport<Stream>::process() {
    for (;;) {
        const auto e = reader_.next({rbuf_.get() + begin_, end_ - begin_});
        if (e.kind == codec::ws_event_kind::need_more) {
            begin_ += e.consumed;
            need_ = e.bytes_needed;
            break;
        }
        const bool go_on = on_event(e);
        begin_ += e.consumed;
        if (!go_on) {
            stop_reading();
            continue_teardown();
            return;
        }
        if (e.kind == codec::ws_event_kind::message && handler_->reading_paused()) {
            do_pause();
            return;
        }
    }
    do_read();
}

// One message, control frame or protocol error; false when reading must stop.
template <typename Stream> bool websocket_transport<Stream>::on_event(const codec::ws_event& e) {
    using codec::ws_opcode;
    switch (e.kind) {
    case codec::ws_event_kind::error:
        peer_failed_ = true;
        close(e.close_code, e.reason,
              e.close_code == codec::ws_close::too_big ? close_reason::too_big
                                                       : close_reason::websocket_error);
        return false;
    case codec::ws_event_kind::control:
        if (e.opcode == ws_opcode::ping) {
            queue_frame(codec::ws_make_control_frame(ws_opcode::pong, e.payload),
                        entry_type::frame);
        } else if (e.opcode == ws_opcode::close) {
            // The peer closes: echo its code (RFC 6455 section 5.5.1) and end.
            peer_closed_ = true;
            if (!reason_) {
                reason_ = close_reason::peer_closed;
            }
            start_close(e.close_code, {});
            return false;
        }
        return true; // a pong: the peer is alive, which the read itself recorded
    case codec::ws_event_kind::message:
        break;
    case codec::ws_event_kind::need_more:
        return true;
    }
    if (e.opcode != ws_opcode::text) {
        close(close_code::unsupported_data,
              "binary frames are not part of the Twilio protocol; send JSON text",
              close_reason::binary_frame);
        return false;
    }
    const std::string_view text(reinterpret_cast<const char*>(e.payload.data()), e.payload.size());
    // simdjson may read up to SIMDJSON_PADDING bytes past the message: in the read buffer they
    // are the next frame's (or the padding after cap_); the reader pads a reassembled message.
    const auto* buffer_end = rbuf_.get() + cap_ + padding;
    const bool in_buffer = e.payload.data() >= rbuf_.get() && e.payload.data() < buffer_end;
    const std::size_t capacity = in_buffer ? static_cast<std::size_t>(buffer_end - e.payload.data())
                                           : text.size() + e.readable;
    frames_->messages_in.fetch_add(1, std::memory_order_relaxed);
    frames_->bytes_in.fetch_add(text.size(), std::memory_order_relaxed);
    handler_->on_text(text, capacity);
    return !(closing_ || close_after_flush_);
}

// Backpressure: while the stream's consumer is behind, leave the socket unread so TCP slows
// the sender (a burst after a network stall) rather than anything being dropped. Frames already
// read wait in the buffer.
template <typename Stream> void websocket_transport<Stream>::do_pause() {
    heard_from_peer_ = true; // we are the one not reading; the idle timer must not cut
    pause_timer_.expires_after(std::chrono::milliseconds(5));
    pause_timer_.async_wait([self = this->shared_from_this()](const beast::error_code&) {
        if (self->closing_) {
            self->await_close_reply();
            return;
        }
        if (self->handler_->reading_paused()) {
            self->do_pause();
            return;
        }
        self->process();
    });
}

// The session's end, on the handler that saw it: the stream hears on_closed before anything
// else queued on this thread runs. Called once; later calls do nothing.
template <typename Stream> void websocket_transport<Stream>::stop_reading() {
    if (!reading_) {
        return;
    }
    unpoll(); // the teardown's reads, FIN and close go through Asio
    reading_ = false;
    idle_timer_.cancel();
    handler_->on_closed(reason_.value_or(close_reason::vanished));
    // Only the read path ends the session, so no read capturing `this` is left pending.
    assert(!read_pending_);
    done_.cancel(); // run() returns; pending handlers hold the session from here
}

template <typename Stream>
void websocket_transport<Stream>::on_read_error(const beast::error_code& ec) {
    if (closing_ || reason_) {
        return; // we started the close (or the stream stopped); the reason is recorded
    }
    reason_ = close_reason::vanished; // reset, EOF without a close frame, TLS truncation
    log(log_level::warn, "stream_read_failed",
        {{"stream_sid", handler_->log_id()}, {"error", ec.message()}});
}

// After the session: reads until the close handshake is over (the peer's close frame, when it
// has not come yet), then, once our close frame is out, ends our side (plain TCP: FIN, over TLS:
// close_notify) and reads on until the peer's end of the connection. Our FIN waits for the
// peer's close frame because a proxy in between (HAProxy) may drop its client connection when
// the server half-closes, before the client's close reply could pass: the client then saw a
// reset instead of our close frame. The close deadline bounds all of it.
template <typename Stream> void websocket_transport<Stream>::continue_teardown() {
    if (read_pending_ || socket_done_) {
        return;
    }
    if (!handshake_over()) {
        scan_for_close_reply();
    }
    if (handshake_over()) {
        begin_ = end_ = 0; // nothing read from here on is handled
        need_ = 0;
        if (close_written_) {
            send_fin();
        }
    }
    do_read();
}

// Frames that come after the session ended are dropped; only the peer's close frame (or a
// violation) matters: it ends the close handshake.
template <typename Stream> void websocket_transport<Stream>::scan_for_close_reply() {
    for (;;) {
        const auto e = reader_.next({rbuf_.get() + begin_, end_ - begin_});
        begin_ += e.consumed;
        if (e.kind == codec::ws_event_kind::need_more) {
            need_ = e.bytes_needed;
            return;
        }
        if (e.kind == codec::ws_event_kind::error) {
            peer_failed_ = true;
            return;
        }
        if (e.kind == codec::ws_event_kind::control && e.opcode == codec::ws_opcode::close) {
            peer_closed_ = true;
            return;
        }
    }
}

// Our FIN (over TLS: our close_notify) after the close handshake: the peer sees the end and
// closes its side, which the teardown read waits for (so the socket never closes over unread
// bytes). Sent while that read is pending: a peer that waits for our end before its own (a TLS
// client that answers close_notify) would otherwise wait for the close deadline.
template <typename Stream> void websocket_transport<Stream>::send_fin() {
    if (fin_sent_) {
        return;
    }
    fin_sent_ = true;
    if constexpr (is_tls_stream<Stream>) {
        stream_.close_notify();
        if (!stream_.flush_now()) {
            stream_.async_flush([self = this->shared_from_this()](const beast::error_code&) {});
        }
    } else {
        unpoll();
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).shutdown(net::socket_base::shutdown_send, ignored);
    }
}

template <typename Stream> void websocket_transport<Stream>::finish_socket() {
    if (socket_done_) {
        return;
    }
    socket_done_ = true;
    close_timer_.cancel();
    pause_timer_.cancel();
    close_socket();
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
    outbox_.push_back(text, kind, entry_type::text);
    recycle(std::move(text)); // the ring slot's previous string
    if (outbox_bytes_ > ctx_->cfg.outbox_bytes) {
        close(close_code::policy,
              "slow consumer: outbound queue over " + std::to_string(ctx_->cfg.outbox_bytes) +
                  " bytes",
              close_reason::slow_consumer);
        return;
    }
    if (!writing_ && !deferred_) {
        if (writes_ != nullptr) {
            deferred_ = true; // written with the rest of this pass's writes (write_batch.hpp)
            writes_->defer(this->weak_from_this());
        } else {
            do_write();
        }
    }
}

template <typename Stream> void websocket_transport<Stream>::flush_deferred() {
    deferred_ = false;
    if (!writing_ && !outbox_.empty()) {
        do_write();
    }
}

// A whole control frame (pong, ping, close) behind the messages already queued.
template <typename Stream>
void websocket_transport<Stream>::queue_frame(std::string frame, entry_type type) {
    if (closing_ && type != entry_type::close_frame) {
        return;
    }
    outbox_bytes_ += frame.size();
    outbox_.push_back(frame, message_kind::control, type);
    recycle(std::move(frame));
    if (!writing_) {
        do_write();
    }
}

template <typename Stream> std::size_t websocket_transport<Stream>::drop_queued_media() {
    std::size_t dropped = 0;
    // The ring holds only what is not yet handed to the socket (a write takes its entries out).
    outbox_.retain([&](const outbox_entry& e) {
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
    start_close(code, text);
}

template <typename Stream>
void websocket_transport<Stream>::close_when_flushed(std::string_view text, close_reason why) {
    if (closing_ || close_after_flush_) {
        return;
    }
    reason_ = why;
    close_after_flush_ = true;
    if (!writing_ && outbox_.empty()) {
        start_close(close_code::normal, text);
    } else {
        close_after_flush_text_ = text;
        arm_close_deadline(); // a peer that stopped reading must not hold the flush open
    }
}

// Queues our close frame (after the write in flight; what is queued behind it is abandoned).
// The session ends when the read path sees it: at once for a close decided there (a message,
// a violation, the peer's close), else with the peer's close reply (await_close_reply).
template <typename Stream>
void websocket_transport<Stream>::start_close(std::uint16_t code, std::string_view text) {
    if (closing_) {
        return;
    }
    closing_ = true;
    if (!writing_ && !outbox_.empty()) {
        do_write(); // messages held for the end of the pass go out as if written at once
    }
    std::uint64_t abandoned = 0;
    while (!outbox_.empty()) {
        abandoned += outbox_.back().kind == message_kind::media ? 1U : 0U;
        outbox_bytes_ -= outbox_.back().text.size();
        outbox_.pop_back();
    }
    ctx_->stats.frames_dropped_closing.fetch_add(abandoned, std::memory_order_relaxed);
    arm_close_deadline();
    queue_frame(codec::ws_make_close_frame(code, text), entry_type::close_frame);
}

// A peer that never reads can leave our close frame (or a write) stuck behind a full socket
// buffer; the timer cuts the TCP connection so the session is freed regardless.
template <typename Stream> void websocket_transport<Stream>::arm_close_deadline() {
    close_timer_.expires_after(ctx_->cfg.handshake_timeout);
    close_timer_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
        if (!ec) {
            self->finish_socket();
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
    if (closing_ || !reading_) {
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
        queue_frame(codec::ws_make_control_frame(codec::ws_opcode::ping, {}), entry_type::frame);
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

// One gather write of every queued entry (up to the batch bounds): [header, payload] per text
// message, the bytes of a control frame as they are.
template <typename Stream> void websocket_transport<Stream>::do_write() {
    while (write_batch_now()) {
    }
}

// Gathers and writes one batch: at once when the socket takes it all (write_now.hpp), else
// through the reactor. True when it was written at once and more is queued.
template <typename Stream> bool websocket_transport<Stream>::write_batch_now() {
    writing_ = true;
    std::size_t n = 0;
    std::size_t nb = 0;
    inflight_bytes_ = 0;
    inflight_text_bytes_ = 0;
    inflight_close_ = false;
    while (!outbox_.empty() && n < max_batch_messages) {
        auto& e = outbox_.front();
        if (n > 0 && inflight_bytes_ + e.text.size() > max_batch_bytes) {
            break;
        }
        // The ring slot gets the string last written from this place; push_back hands it back.
        std::swap(inflight_[n], e.text);
        const std::string& bytes = inflight_[n];
        if (e.type == entry_type::text) {
            headers_[n] = codec::ws_make_header(codec::ws_opcode::text, bytes.size());
            buffers_[nb++] = net::buffer(headers_[n].data.data(), headers_[n].size);
            inflight_text_bytes_ += bytes.size();
        }
        inflight_close_ = inflight_close_ || e.type == entry_type::close_frame;
        buffers_[nb++] = net::buffer(bytes);
        inflight_bytes_ += bytes.size();
        ++n;
        outbox_.pop_front();
    }
    std::span<net::const_buffer> rest(buffers_.data(), nb);
    if constexpr (is_tls_stream<Stream>) {
        // The whole batch becomes records at once; what the socket does not take at once
        // goes through the reactor (a close frame always does, as below).
        beast::error_code ec;
        if (!stream_.encrypt(rest, ec)) {
            close_socket(); // the read side sees the end and ends the session
            return written(ec);
        }
        if (!inflight_close_) {
            if (stream_.flush_now()) {
                return written({});
            }
            ctx_->stats.writes_waited.fetch_add(1, std::memory_order_relaxed);
        }
        stream_.async_flush([self = this->shared_from_this()](const beast::error_code& ec) {
            self->on_write(ec, 0);
        });
        return false;
    }
    // A close frame goes through the reactor: its completion drives the teardown,
    // which is not done from inside a write.
    if (!inflight_close_) {
        rest = polled() ? unwritten(rest, write_now(polled_.fd(), rest))
                        : write_what_fits(stream_, rest);
        if (rest.empty()) {
            return written({});
        }
        if constexpr (is_tcp_socket<Stream>::value) {
            ctx_->stats.writes_waited.fetch_add(1, std::memory_order_relaxed);
        }
    }
    unpoll(); // the reactor waits for room (and drives the close frame's teardown)
    net::async_write(
        stream_, std::span<const net::const_buffer>(rest.data(), rest.size()),
        [self = this->shared_from_this()](const beast::error_code& ec, std::size_t bytes) {
            self->on_write(ec, bytes);
        });
    return false;
}

template <typename Stream>
void websocket_transport<Stream>::on_write(const beast::error_code& ec, std::size_t) {
    if (written(ec)) {
        do_write();
    }
}

template <typename Stream> bool websocket_transport<Stream>::written(const beast::error_code& ec) {
    writing_ = false;
    outbox_bytes_ -= inflight_bytes_;
    if (ec) {
        // The read side sees the broken connection and ends the session.
        outbox_.clear();
        outbox_bytes_ = 0;
        return false;
    }
    frames_->bytes_out.fetch_add(inflight_text_bytes_, std::memory_order_relaxed);
    if (inflight_close_) {
        close_written_ = true;
        if (handshake_over()) {
            send_fin();
        }
        continue_teardown();
        return false;
    }
    if (!outbox_.empty()) {
        return true;
    }
    if (close_after_flush_ && !closing_) {
        start_close(close_code::normal, close_after_flush_text_);
    }
    return false;
}

template <typename Stream>
std::function<void()> websocket_transport<Stream>::cross_thread_wakeup() {
    return [weak = this->weak_from_this(), executor = stream_.get_executor()] {
        net::post(executor, [weak] {
            if (auto self = weak.lock()) {
                self->handler_->on_wakeup();
            }
        });
    };
}

template <typename Stream>
void websocket_transport<Stream>::post_close(std::uint16_t code, std::string reason) {
    net::post(stream_.get_executor(),
              [self = this->shared_from_this(), code, reason = std::move(reason)] {
                  const auto why = code == close_code::going_away ? close_reason::shutdown
                                                                  : close_reason::protocol_order;
                  self->close(code, reason, why);
              });
}

template <typename Stream>
void websocket_transport<Stream>::post_to_pipeline(
    std::function<void(pipeline::stream_pipeline&)> fn) {
    net::post(stream_.get_executor(), [self = this->shared_from_this(), fn = std::move(fn)] {
        if (!self->closing_) {
            self->handler_->on_pipeline_request(fn);
        }
    });
}

// A connection's socket rebound to a socket of the concrete executor type (no type-erased
// executor per operation). Every connection the server accepts lives on an io_context; empty
// otherwise, with `socket` left as it was.
std::optional<plain_socket> on_own_executor(net::ip::tcp::socket& socket) {
    const auto* ex = socket.get_executor().template target<net::io_context::executor_type>();
    if (ex == nullptr) {
        return std::nullopt;
    }
    beast::error_code ec;
    const auto endpoint = socket.local_endpoint(ec);
    if (ec) {
        return std::nullopt;
    }
    const auto fd = socket.release(ec);
    if (ec) {
        return std::nullopt;
    }
    return plain_socket(ex->context(), endpoint.protocol(), fd);
}

} // namespace

template <typename Stream>
net::awaitable<void> run_websocket_transport(Stream stream, beast::flat_buffer pending,
                                             http_request req, std::shared_ptr<server_context> ctx,
                                             std::unique_ptr<stream_handler> handler) {
    if constexpr (std::is_same_v<Stream, beast::tcp_stream>) {
        // Plain WebSocket runs on the bare socket: tcp_stream's per-operation timer
        // bookkeeping is not needed once the session keeps its own deadlines.
        net::ip::tcp::socket socket = stream.release_socket();
        if (auto own = on_own_executor(socket)) {
            auto session = std::make_shared<websocket_transport<plain_socket>>(
                std::move(*own), std::move(pending), std::move(ctx), std::move(handler));
            co_await session->run(std::move(req));
            co_return;
        }
        auto session = std::make_shared<websocket_transport<net::ip::tcp::socket>>(
            std::move(socket), std::move(pending), std::move(ctx), std::move(handler));
        co_await session->run(std::move(req));
    } else {
        // wss: the TLS session goes on over the bare socket (server/app/tls_socket.hpp), and
        // Asio's TLS stream, its buffers and its reference to the session end here.
        std::optional<tls_socket> tls;
        std::string why = "not on an io_context";
        {
            Stream handed_over = std::move(stream);
            net::ip::tcp::socket socket = beast::get_lowest_layer(handed_over).release_socket();
            if (auto own = on_own_executor(socket)) {
                tls = tls_socket::adopt(handed_over.native_handle(), std::move(*own), why);
            }
        }
        if (!tls) {
            log(log_level::warn, "websocket_handshake_failed", {{"error", why}});
            co_return;
        }
        auto session = std::make_shared<websocket_transport<tls_socket>>(
            std::move(*tls), std::move(pending), std::move(ctx), std::move(handler));
        co_await session->run(std::move(req));
    }
}

template net::awaitable<void>
    run_websocket_transport<beast::tcp_stream>(beast::tcp_stream, beast::flat_buffer, http_request,
                                               std::shared_ptr<server_context>,
                                               std::unique_ptr<stream_handler>);
template net::awaitable<void> run_websocket_transport<beast::ssl_stream<beast::tcp_stream>>(
    beast::ssl_stream<beast::tcp_stream>, beast::flat_buffer, http_request,
    std::shared_ptr<server_context>, std::unique_ptr<stream_handler>);

} // namespace callstream::server
