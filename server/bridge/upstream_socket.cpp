#include "server/bridge/upstream_socket.hpp"

#include <array>
#include <cstring>
#include <random>
#include <span>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/url/parse.hpp>
#include <simdjson.h>

#include "codec/websocket_frame.hpp"
#include "server/app/drained_read.hpp"
#include "server/app/polled_reads.hpp"
#include "server/app/tls_socket.hpp"
#include "server/app/version.hpp"
#include "server/app/write_batch.hpp"
#include "server/app/write_now.hpp"
#include "server/bridge/upstream_handshake.hpp"

namespace callstream::server::bridge {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// The socket, its TLS session (server/app/tls_socket.hpp: OpenSSL driven directly, as the
// media WebSocket's) and the deadline carry the io_context's concrete executor type, not
// any_io_executor: every operation otherwise copies and destroys a type-erased
// executor, per frame and per call.
using io_executor = net::io_context::executor_type;
using plain_socket = net::basic_stream_socket<tcp, io_executor>;
using deadline_timer =
    net::basic_waitable_timer<std::chrono::steady_clock,
                              net::wait_traits<std::chrono::steady_clock>, io_executor>;

// The write queue: a FIFO ring of messages whose strings are swapped in and out rather than
// freed, so a call in steady state (one media message queued, written, the next queued) does not
// allocate: send() takes the caller's string into a slot and keeps the slot's old string as a
// spare, which take_buffer() hands back for the next message. The ring doubles only past the
// deepest queue seen; max_outbox_bytes bounds it. `Kind` says what an entry is.
template <typename Kind> class outbox_ring {
  public:
    struct entry {
        std::string data;
        Kind kind{};
    };

    bool empty() const noexcept { return count_ == 0; }
    entry& front() noexcept { return slots_[head_]; }

    void push_back(std::string& data, Kind kind) {
        if (count_ == slots_.size()) {
            grow();
        }
        auto& slot = slots_[(head_ + count_) & (slots_.size() - 1)];
        slot.data.swap(data); // `data` now holds the slot's old string
        slot.kind = kind;
        ++count_;
        keep_spare(std::move(data));
    }

    void pop_front() noexcept {
        head_ = (head_ + 1) & (slots_.size() - 1);
        --count_;
    }

    void clear() noexcept {
        while (!empty()) {
            pop_front();
        }
    }

    std::string take_spare() {
        if (spare_.empty()) {
            return {};
        }
        std::string s = std::move(spare_.back());
        spare_.pop_back();
        s.clear();
        return s;
    }

  private:
    static constexpr std::size_t max_spares = 4;

    void keep_spare(std::string&& s) {
        if (s.capacity() > 0 && spare_.size() < max_spares) {
            spare_.push_back(std::move(s));
        }
    }

    void grow() {
        std::vector<entry> bigger(slots_.empty() ? 4 : slots_.size() * 2);
        for (std::size_t i = 0; i < count_; ++i) {
            bigger[i] = std::move(slots_[(head_ + i) & (slots_.size() - 1)]);
        }
        slots_ = std::move(bigger);
        head_ = 0;
    }

    std::vector<entry> slots_; // a power of two in size (or empty)
    std::size_t head_ = 0;
    std::size_t count_ = 0;
    std::vector<std::string> spare_;
};

// Entries of the write queue: messages (framed and masked when written) and control frames
// (framed and masked when queued).
enum class entry_kind : std::uint8_t { text, binary, control };

// RFC 6455 section 5.3 wants masking keys an attacker cannot predict from earlier ones; a
// 64-bit generator seeded from the system's entropy per socket does that at no cost per frame.
class mask_source {
  public:
    mask_source() {
        std::random_device rd;
        state_ = (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
    }
    std::array<std::uint8_t, 4> next() noexcept {
        state_ += 0x9E3779B97F4A7C15ULL; // splitmix64
        std::uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        z ^= z >> 31;
        std::array<std::uint8_t, 4> key{};
        std::memcpy(key.data(), &z, key.size());
        return key;
    }
    std::array<std::uint8_t, 16> nonce() noexcept {
        std::array<std::uint8_t, 16> out{};
        for (std::size_t i = 0; i < out.size(); i += 4) {
            const auto k = next();
            std::memcpy(out.data() + i, k.data(), 4);
        }
        return out;
    }

  private:
    std::uint64_t state_ = 0;
};

// One upstream connection. RFC 6455 framing is callstream's own (codec/websocket_frame.hpp), as
// in the media transport: each read takes what the socket holds and every complete frame in it
// is handled before the next read, and each write gathers every message queued since the last
// (written at the end of the event loop's pass, server/app/write_batch.hpp). Beast is used for
// the HTTP of the opening handshake only.
template <typename Next>
class ws_client final : public upstream_socket,
                        public deferred_writer,
                        public std::enable_shared_from_this<ws_client<Next>> {
  public:
    ws_client(Next&& next, net::any_io_executor executor, upstream_target target,
              parsed_ws_url where, std::weak_ptr<upstream_socket_events> events)
        : stream_(std::move(next)), executor_(std::move(executor)), target_(std::move(target)),
          where_(std::move(where)), events_(std::move(events)), resolver_(executor_),
          deadline_(beast::get_lowest_layer(stream_).get_executor()),
          reader_(codec::ws_reader_limits{target_.max_message_bytes, simdjson::SIMDJSON_PADDING,
                                          codec::ws_peer::server}),
          writes_(target_.write_at_once
                      ? nullptr
                      : write_batch::of_executor(beast::get_lowest_layer(stream_).get_executor())) {
    }

    void start() {
        deadline_.expires_after(target_.connect_timeout);
        deadline_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
            if (!ec && !self->open_) {
                self->timed_out_ = true;
                self->resolver_.cancel();
                beast::close_socket(beast::get_lowest_layer(self->stream_));
            }
        });
        net::co_spawn(executor_, run(this->shared_from_this()), net::detached);
    }

    void send(std::string data, bool text) override {
        if (done_ || closing_) {
            return;
        }
        outbox_bytes_ += data.size();
        outbox_.push_back(data, text ? entry_kind::text : entry_kind::binary);
        if (outbox_bytes_ > target_.max_outbox_bytes) {
            report("slow_upstream",
                   "write queue over " + std::to_string(target_.max_outbox_bytes) + " bytes");
            abort();
            return;
        }
        schedule_write();
    }

    void flush_deferred() override {
        deferred_ = false;
        if (open_ && !writing_ && !done_ && !outbox_.empty()) {
            do_write();
        }
    }

    void close() override {
        events_.reset();
        if (closing_ || done_) {
            return;
        }
        if (!open_) {
            closing_ = true;
            abort();
            return;
        }
        start_close(codec::ws_close::normal, {});
    }

    std::string take_buffer() override { return outbox_.take_spare(); }

    bool open() const noexcept override { return open_ && !done_ && !closing_; }
    std::size_t queued_bytes() const noexcept override { return outbox_bytes_; }
    // The members a message reaches on its way in and a reply on its way out (not the
    // resolver, the timer or the handshake's state).
    void add_own_hot_lines() {
        warm_.add(&events_, sizeof events_);
        warm_.add_range(&reader_, &inflight_); // reader, read buffer, outbox
        warm_.add(&inflight_[0], sizeof inflight_[0]);
        warm_.add(&headers_[0], sizeof headers_[0]);
        warm_.add(&buffers_[0], 2 * sizeof buffers_[0]);
        warm_.add_range(&inflight_bytes_, &close_written_);
        warm_.keep();
    }

    pipeline::warm_lines& receiver_lines() override { return receiver_lines_; }
    void set_events(std::weak_ptr<upstream_socket_events> events) override {
        events_ = std::move(events);
    }
    net::any_io_executor executor() const override { return executor_; }

  private:
    friend class polled_reads<ws_client>;
    // Reads grow the buffer to hold a whole frame: at most a message, its header, and the
    // padding simdjson may read past a message that is a view into the buffer.
    static constexpr std::size_t read_chunk_bytes = 16 * 1024;
    static constexpr std::size_t max_batch_messages = 16;

    static net::awaitable<void> run(std::shared_ptr<ws_client> self) { co_await self->session(); }

    net::awaitable<void> session() {
        auto [rec, results] =
            co_await resolver_.async_resolve(where_.host, where_.port, use_nothrow);
        if (rec) {
            fail_connect("resolve_failed", rec.message());
            co_return;
        }
        auto& lowest = beast::get_lowest_layer(stream_);
        auto [cec, endpoint] = co_await net::async_connect(lowest, results, use_nothrow);
        if (cec) {
            fail_connect("connect_failed", cec.message());
            co_return;
        }
        lowest.set_option(tcp::no_delay(true));
        reads_.watch(lowest);
        add_own_hot_lines();
        if constexpr (std::is_same_v<Next, tls_socket>) {
            SSL* ssl = stream_.ssl();
            // SNI names the host we asked for; RFC 6066 (3) allows no IP literal in it.
            beast::error_code not_ip;
            net::ip::make_address(where_.host, not_ip);
            if (not_ip && !SSL_set_tlsext_host_name(ssl, where_.host.c_str())) {
                fail_connect("tls_failed", "cannot set SNI host name");
                co_return;
            }
            // The certificate must name the host we asked for. OpenSSL checks it as part of the
            // chain verification, so a mismatch is a verify error of its own ("hostname
            // mismatch", named in the failure below) and the upstream gets a certificate alert;
            // asio's host_name_verification callback refused without an error, which OpenSSL
            // reports as "unspecified" and alerts as "internal error".
            const bool name_set = not_ip ? SSL_set1_host(ssl, where_.host.c_str()) == 1
                                         : X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
                                                                         where_.host.c_str()) == 1;
            if (!name_set) {
                fail_connect("tls_failed", "cannot set the host name to verify");
                co_return;
            }
            SSL_set_verify(ssl, SSL_VERIFY_PEER, nullptr);
            auto [tec] = co_await stream_.async_handshake(use_nothrow);
            if (tec) {
                // "certificate verify failed" alone does not tell an untrusted issuer from a
                // certificate for another host.
                std::string detail = tec.message();
                if (const auto result = SSL_get_verify_result(ssl); result != X509_V_OK) {
                    detail += ": ";
                    detail += X509_verify_cert_error_string(result);
                }
                fail_connect("tls_failed", std::move(detail));
                co_return;
            }
        }
        if (!co_await handshake()) {
            co_return;
        }
        open_ = true;
        deadline_.cancel();
        if (closing_) {
            start_close(codec::ws_close::normal, {});
            co_return;
        }
        if (auto ev = events_.lock()) {
            ev->on_upstream_open();
        }
        if (!outbox_.empty() && !writing_ && !done_) {
            do_write();
        }
        if (!done_) {
            handle_frames(); // frames the upstream sent right behind its 101
        }
        if (!done_) {
            if constexpr (std::is_same_v<Next, plain_socket>) {
                // Reads through the thread's poller while open (polled_reads.hpp), which holds
                // the client until stop_polling().
                polled_.start(stream_, this->shared_from_this(), &warm_, &receiver_lines_);
            }
            do_read();
        }
    }

    // The opening handshake; true when the upstream accepted it. What the upstream sent after
    // its response is kept as the first bytes of the frame stream.
    net::awaitable<bool> handshake() {
        const bool default_port = where_.port == (where_.tls ? "443" : "80");
        const bool ipv6 = where_.host.find(':') != std::string::npos;
        upgrade_request_fields fields;
        fields.host = ipv6 ? "[" + where_.host + "]" : where_.host;
        if (!default_port) {
            fields.host += ":" + where_.port;
        }
        fields.target = where_.target;
        fields.key = websocket_client_key(masks_.nonce());
        fields.user_agent = std::string("callstream/") + version;
        fields.headers = &target_.headers;
        fields.subprotocol = target_.subprotocol;
        std::string refused;
        const auto req = websocket_upgrade_request(fields, &refused);
        if (!refused.empty()) {
            fail_connect("handshake_failed",
                         "header '" + refused + "' holds CR, LF or NUL and was not sent");
            co_return false;
        }
        auto [wec, written] = co_await http::async_write(stream_, req, use_nothrow);
        if (wec) {
            fail_connect("handshake_failed", wec.message());
            co_return false;
        }
        beast::flat_buffer buffer;
        http::response_parser<http::string_body> parser;
        parser.header_limit(16 * 1024);
        parser.body_limit(16 * 1024);
        auto [rec, read] = co_await http::async_read(stream_, buffer, parser, use_nothrow);
        if (rec) {
            fail_connect("handshake_failed", rec.message());
            co_return false;
        }
        bool subprotocol_mismatch = false;
        const auto why = check_upgrade_response(parser.get(), fields.key, target_.subprotocol,
                                                &subprotocol_mismatch);
        if (!why.empty()) {
            fail_connect(subprotocol_mismatch ? "bad_subprotocol" : "handshake_failed", why);
            co_return false;
        }
        const auto held = buffer.data();
        reserve(std::max(read_chunk_bytes, held.size()));
        std::memcpy(rbuf_.data(), held.data(), held.size());
        end_ = held.size();
        co_return true;
    }

    // Room for `bytes` in the read buffer (plus the padding behind it), keeping what it holds.
    void reserve(std::size_t bytes) {
        if (bytes > capacity_) {
            rbuf_.resize(bytes + simdjson::SIMDJSON_PADDING);
            capacity_ = bytes;
        }
    }

    // One read always pending once open, each completion a plain callback (no coroutine frame
    // resumed per message); the handler's shared_ptr keeps the socket alive while it waits.
    void do_read() {
        if (end_ == capacity_) {
            reserve(capacity_ * 2); // only when a frame needs more (handle_frames grows it)
        }
        // A plain socket reads into a drained_buffer: no recv that returns EAGAIN after a read
        // that emptied it (server/app/drained_read.hpp).
        // Prefetched before the recv: this socket's members a message reaches, where its bytes
        // land, and the receiver's lines (the call's bridge).
        warm_.drop_per_frame();
        warm_.add(rbuf_.data() + end_, 256);
        const auto room = net::buffer(rbuf_.data() + end_, capacity_ - end_);
        if (polled_.active()) {
            polled_.read(room);
            return;
        }
        read_elsewhere(room);
    }

    // A read on Asio's reactor (polled_reads.hpp calls it when it stops with a read waiting).
    void read_elsewhere(net::mutable_buffer room) {
        reads_.async_read_some(
            stream_, room,
            [self = this->shared_from_this()](const beast::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            },
            &warm_, &receiver_lines_);
    }

    // Back to Asio alone: before a write waits for room, and before the socket closes.
    void stop_polling() {
        if constexpr (std::is_same_v<Next, plain_socket>) {
            polled_.stop(stream_);
        }
    }

    void on_read(const beast::error_code& ec, std::size_t n) {
        if (ec) {
            if (!close_received_) {
                report("upstream_lost", ec.message());
            }
            finish();
            return;
        }
        end_ += n;
        handle_frames();
        if (!done_ && !peer_failed_) {
            do_read(); // after a violation its bytes are not read: our close frame ends it
        }
    }

    // Every complete frame in the buffer, in order; then what is left moves to the front.
    void handle_frames() {
        std::size_t start = 0;
        while (!done_) {
            const auto e = reader_.next({rbuf_.data() + start, end_ - start});
            if (e.kind == codec::ws_event_kind::need_more) {
                start += e.consumed;
                reserve(e.bytes_needed);
                break;
            }
            if (e.kind == codec::ws_event_kind::error) {
                fail_protocol(e.close_code, e.reason);
                return;
            }
            if (e.kind == codec::ws_event_kind::message) {
                const std::string_view view(reinterpret_cast<const char*>(e.payload.data()),
                                            e.payload.size());
                if (auto ev = events_.lock(); ev && !closing_) {
                    ev->on_upstream_message(e.opcode == codec::ws_opcode::text, view);
                }
            } else {
                on_control(e);
            }
            start += e.consumed;
        }
        if (done_) {
            return;
        }
        const std::size_t left = end_ - start;
        if (start != 0 && left != 0) {
            std::memmove(rbuf_.data(), rbuf_.data() + start, left);
        }
        end_ = left;
    }

    void on_control(const codec::ws_event& e) {
        if (e.opcode == codec::ws_opcode::ping) {
            const auto key = masks_.next();
            queue_control(codec::ws_make_control_frame(codec::ws_opcode::pong, e.payload, &key));
        } else if (e.opcode == codec::ws_opcode::close) {
            close_received_ = true;
            if (!closing_) {
                // Echo its code (RFC 6455 section 5.5.1); 1005 is never sent, answer 1000. The
                // reply is queued before the owner hears of the close, which may close() us.
                const auto code = e.close_code == codec::ws_close::no_status
                                      ? codec::ws_close::normal
                                      : e.close_code;
                auto ev = events_.lock();
                start_close(code, {});
                if (ev) {
                    ev->on_upstream_close_frame(e.close_code, e.reason);
                }
                events_ = ev;
                report("upstream_closed", "the upstream closed the WebSocket (" +
                                              std::to_string(e.close_code) + " " +
                                              std::string(e.reason) + ")");
                events_.reset();
            } else if (!writing_ && close_written_) {
                finish(); // the reply to our close: the handshake is over
            }
        }
    }

    // The upstream broke RFC 6455 (or sent a message over the limit): counted for the call,
    // answered with the code, and the connection dropped after it.
    void fail_protocol(std::uint16_t code, std::string_view reason) {
        if (code == codec::ws_close::too_big) {
            report("too_big",
                   "a message over " + std::to_string(target_.max_message_bytes) + " bytes");
        } else {
            report("upstream_lost", "the upstream broke RFC 6455: " + std::string(reason));
        }
        close_received_ = true; // nothing more is read from it
        peer_failed_ = true;
        start_close(code, reason);
    }

    void start_close(std::uint16_t code, std::string_view reason) {
        if (closing_ && close_queued_) {
            return;
        }
        closing_ = true;
        close_queued_ = true;
        events_.reset();
        // Bounded: an upstream that never answers our close frame loses the TCP connection.
        deadline_.expires_after(target_.connect_timeout);
        deadline_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
            if (!ec) {
                self->finish();
            }
        });
        const auto key = masks_.next();
        queue_control(codec::ws_make_close_frame(code, reason, &key));
    }

    void queue_control(std::string frame) {
        if (done_ || close_written_) {
            return;
        }
        outbox_bytes_ += frame.size();
        outbox_.push_back(frame, entry_kind::control);
        schedule_write();
    }

    void schedule_write() {
        if (!open_ || writing_ || deferred_) {
            return;
        }
        if (writes_ != nullptr) {
            deferred_ = true; // written with the rest of this pass's writes
            writes_->defer(this->weak_from_this());
        } else {
            do_write();
        }
    }

    // One gather write of every queued entry (up to max_batch_messages): [header, payload]
    // per message, masked in place (the strings are ours), a control frame as it is.
    void do_write() {
        while (write_batch_now()) {
        }
    }

    // Gathers and writes one batch: at once when the socket takes it all (write_now.hpp), else
    // through the reactor. True when it was written at once and more is queued.
    bool write_batch_now() {
        writing_ = true;
        std::size_t n = 0;
        std::size_t nb = 0;
        inflight_bytes_ = 0;
        inflight_close_ = false;
        while (!outbox_.empty() && n < max_batch_messages) {
            auto& e = outbox_.front();
            std::swap(inflight_[n], e.data);
            std::string& bytes = inflight_[n];
            if (e.kind != entry_kind::control) {
                const auto key = masks_.next();
                headers_[n] = codec::ws_make_masked_header(
                    e.kind == entry_kind::text ? codec::ws_opcode::text : codec::ws_opcode::binary,
                    bytes.size(), key);
                codec::ws_apply_mask({reinterpret_cast<std::uint8_t*>(bytes.data()), bytes.size()},
                                     key);
                buffers_[nb++] = net::buffer(headers_[n].data.data(), headers_[n].size);
            } else {
                inflight_close_ = inflight_close_ || is_close_frame(bytes);
            }
            buffers_[nb++] = net::buffer(bytes);
            inflight_bytes_ += bytes.size();
            ++n;
            outbox_.pop_front();
        }
        std::span<net::const_buffer> rest(buffers_.data(), nb);
        if constexpr (std::is_same_v<Next, tls_socket>) {
            // The batch becomes records at once; what the socket does not take goes through
            // the reactor (a close frame always does, as below).
            beast::error_code ec;
            if (!stream_.encrypt(rest, ec)) {
                report("upstream_lost", ec.message());
                abort();
                return written(ec);
            }
            if (!inflight_close_ && stream_.flush_now()) {
                return written({});
            }
            stream_.async_flush([self = this->shared_from_this()](const beast::error_code& ec) {
                self->on_write(ec);
            });
            return false;
        }
        // A close frame goes through the reactor: its completion may finish the socket,
        // which is not done from inside a write.
        if (!inflight_close_) {
            rest = polled_.active() ? unwritten(rest, write_now(polled_.fd(), rest))
                                    : write_what_fits(stream_, rest);
            if (rest.empty()) {
                return written({});
            }
        }
        stop_polling();
        net::async_write(stream_, std::span<const net::const_buffer>(rest.data(), rest.size()),
                         [self = this->shared_from_this()](const beast::error_code& ec,
                                                           std::size_t) { self->on_write(ec); });
        return false;
    }

    static bool is_close_frame(const std::string& frame) {
        return !frame.empty() && (static_cast<std::uint8_t>(frame[0]) & 0x0F) ==
                                     static_cast<std::uint8_t>(codec::ws_opcode::close);
    }

    void on_write(const beast::error_code& ec) {
        if (written(ec)) {
            do_write();
        }
    }

    // The batch in flight is written (or failed): true when more is queued to write now.
    bool written(const beast::error_code& ec) {
        writing_ = false;
        outbox_bytes_ -= inflight_bytes_;
        if (ec || done_) {
            return false; // the read side reports the broken connection
        }
        if (inflight_close_) {
            close_written_ = true;
            outbox_.clear();
            if (close_received_) {
                finish(); // the upstream's close came first (or it broke the protocol)
            }
            return false;
        }
        return !outbox_.empty();
    }

    // The connection is over: the socket is closed and the pending operations complete.
    void finish() {
        if (done_) {
            return;
        }
        done_ = true;
        events_.reset();
        deadline_.cancel();
        stop_polling(); // a read waiting on the poller moves to Asio, and the close ends it
        beast::error_code ignored;
        beast::get_lowest_layer(stream_).shutdown(tcp::socket::shutdown_both, ignored);
        beast::close_socket(beast::get_lowest_layer(stream_));
    }

    void fail_connect(std::string_view label, std::string detail) {
        if (timed_out_) {
            report("connect_timeout",
                   "no WebSocket after " + std::to_string(target_.connect_timeout.count()) + " ms");
        } else {
            report(label, std::move(detail));
        }
        done_ = true;
        deadline_.cancel();
    }

    void report(std::string_view label, std::string detail) {
        if (reported_) {
            return;
        }
        reported_ = true;
        if (auto ev = events_.lock()) {
            events_.reset();
            ev->on_upstream_closed(label, std::move(detail));
        }
    }

    void abort() {
        done_ = true;
        events_.reset();
        resolver_.cancel();
        deadline_.cancel();
        stop_polling();
        beast::close_socket(beast::get_lowest_layer(stream_));
    }

    // Prefetched before each read (drained reads): ours, then per read; and the receiver's.
    pipeline::warm_lines warm_;
    pipeline::warm_lines receiver_lines_;

    Next stream_;
    net::any_io_executor executor_;
    upstream_target target_;
    parsed_ws_url where_;
    std::weak_ptr<upstream_socket_events> events_;
    tcp::resolver resolver_;
    deadline_timer deadline_;
    mask_source masks_;

    codec::ws_frame_reader reader_;
    std::vector<std::uint8_t> rbuf_; // capacity_ bytes read into, then SIMDJSON_PADDING
    std::size_t capacity_ = 0;
    std::size_t end_ = 0; // bytes held in rbuf_

    outbox_ring<entry_kind> outbox_;
    std::size_t outbox_bytes_ = 0; // queued and in flight
    std::array<std::string, max_batch_messages> inflight_;
    std::array<codec::ws_frame_header, max_batch_messages> headers_;
    std::array<net::const_buffer, 2 * max_batch_messages> buffers_;
    std::size_t inflight_bytes_ = 0;
    bool inflight_close_ = false;
    write_batch* writes_; // this thread's end-of-pass writes (null: write at once)

    bool open_ = false;
    bool writing_ = false;
    bool deferred_ = false;       // in writes_, its flush to come
    bool closing_ = false;        // close() or a close frame queued: nothing more is sent
    bool close_queued_ = false;   // our close frame is in the queue
    bool close_written_ = false;  // ... and written
    bool close_received_ = false; // the upstream's close frame read (or its frames abandoned)
    bool peer_failed_ = false;    // it broke RFC 6455: nothing more is read
    bool done_ = false;
    bool timed_out_ = false;
    drained_reads reads_; // no recv that returns EAGAIN (drained_read.hpp)
    bool reported_ = false;
    polled_reads<ws_client> polled_{*this}; // while open, plain sockets
};

} // namespace

parsed_ws_url parse_ws_url(std::string_view url) {
    parsed_ws_url out;
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        out.error = "not a URL";
        return out;
    }
    const auto scheme = parsed->scheme();
    if (scheme == "wss") {
        out.tls = true;
    } else if (scheme != "ws") {
        out.error = "the scheme must be ws:// or wss://";
        return out;
    }
    out.host = std::string(parsed->encoded_host());
    if (out.host.empty()) {
        out.error = "no host";
        return out;
    }
    if (out.host.front() == '[' && out.host.back() == ']') {
        out.host = out.host.substr(1, out.host.size() - 2); // IPv6 literal
    }
    out.port = parsed->has_port() ? std::string(parsed->port()) : (out.tls ? "443" : "80");
    out.target = std::string(parsed->encoded_path());
    if (out.target.empty()) {
        out.target = "/";
    }
    if (parsed->has_query()) {
        out.target += "?" + std::string(parsed->encoded_query());
    }
    return out;
}

std::shared_ptr<net::ssl::context> make_upstream_tls_context(const std::string& ca_file) {
    auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_client);
    ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1);
    ctx->set_verify_mode(net::ssl::verify_peer);
    beast::error_code ec;
    if (ca_file.empty()) {
        ctx->set_default_verify_paths(ec);
    } else {
        ctx->load_verify_file(ca_file, ec);
    }
    if (ec) {
        throw std::runtime_error("--bridge-ca-file " + ca_file + ": " + ec.message());
    }
    return ctx;
}

std::shared_ptr<upstream_socket>
upstream_socket::create(net::any_io_executor executor, upstream_target target,
                        std::shared_ptr<net::ssl::context> tls,
                        std::weak_ptr<upstream_socket_events> events) {
    auto where = parse_ws_url(target.url);
    // Every network thread runs an io_context; the socket is bound to its concrete executor.
    const auto* io = executor.target<io_executor>();
    // A socket that never opens stands in for a call whose upstream failed before connecting;
    // the call hears `label` at once.
    auto failed_at_once = [&](net::io_context& context, std::string_view label,
                              std::string detail) -> std::shared_ptr<upstream_socket> {
        auto s = std::make_shared<ws_client<plain_socket>>(plain_socket(context), executor,
                                                           std::move(target), where, events);
        if (auto ev = events.lock()) {
            ev->on_upstream_closed(label, std::move(detail));
        }
        return s;
    };
    if (!where.error.empty() || io == nullptr) {
        // Startup validates URLs, so either is a programming error; still, fail the call only
        // (without an io_context, on one that never runs).
        static net::io_context dormant;
        return failed_at_once(io ? io->context() : dormant, "bad_url",
                              io ? where.error : std::string("not an io_context executor"));
    }
    if (where.tls) {
        std::string why;
        auto session = tls_socket::client(tls->native_handle(), plain_socket(io->context()), why);
        if (!session) {
            return failed_at_once(io->context(), "tls_failed", why);
        }
        auto s = std::make_shared<ws_client<tls_socket>>(
            std::move(*session), executor, std::move(target), std::move(where), std::move(events));
        s->start();
        return s;
    }
    auto s = std::make_shared<ws_client<plain_socket>>(plain_socket(io->context()), executor,
                                                       std::move(target), std::move(where),
                                                       std::move(events));
    s->start();
    return s;
}

} // namespace callstream::server::bridge
