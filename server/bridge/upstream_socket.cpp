#include "server/bridge/upstream_socket.hpp"

#include <stdexcept>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <boost/url/parse.hpp>
#include <simdjson.h>

#include "server/app/version.hpp"

namespace callstream::server::bridge {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;
using tcp = net::ip::tcp;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

// The socket, its WebSocket stream and the deadline carry the io_context's concrete executor
// type, not any_io_executor: every operation otherwise copies and destroys a type-erased
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
// deepest queue seen; max_outbox_bytes bounds it.
class outbox_ring {
  public:
    struct entry {
        std::string data;
        bool text = true;
    };

    bool empty() const noexcept { return count_ == 0; }
    entry& front() noexcept { return slots_[head_]; }

    void push_back(std::string& data, bool text) {
        if (count_ == slots_.size()) {
            grow();
        }
        auto& slot = slots_[(head_ + count_) & (slots_.size() - 1)];
        slot.data.swap(data); // `data` now holds the slot's old string
        slot.text = text;
        ++count_;
        keep_spare(std::move(data));
    }

    void pop_front() noexcept {
        head_ = (head_ + 1) & (slots_.size() - 1);
        --count_;
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

template <typename Next>
class ws_client final : public upstream_socket,
                        public std::enable_shared_from_this<ws_client<Next>> {
  public:
    ws_client(Next&& next, net::any_io_executor executor, upstream_target target,
              parsed_ws_url where, std::weak_ptr<upstream_socket_events> events)
        : ws_(std::move(next)), executor_(std::move(executor)), target_(std::move(target)),
          where_(std::move(where)), events_(std::move(events)), resolver_(executor_),
          deadline_(ws_.get_executor()) {}

    void start() {
        deadline_.expires_after(target_.connect_timeout);
        deadline_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
            if (!ec && !self->open_) {
                self->timed_out_ = true;
                self->resolver_.cancel();
                beast::close_socket(beast::get_lowest_layer(self->ws_));
            }
        });
        net::co_spawn(executor_, run(this->shared_from_this()), net::detached);
    }

    void send(std::string data, bool text) override {
        if (done_ || closing_) {
            return;
        }
        outbox_bytes_ += data.size();
        outbox_.push_back(data, text);
        if (outbox_bytes_ > target_.max_outbox_bytes) {
            report("slow_upstream",
                   "write queue over " + std::to_string(target_.max_outbox_bytes) + " bytes");
            abort();
            return;
        }
        if (open_ && !writing_) {
            do_write();
        }
    }

    void close() override {
        events_.reset();
        if (closing_ || done_) {
            return;
        }
        closing_ = true;
        if (!open_) {
            abort();
            return;
        }
        if (!writing_) {
            do_close();
        }
    }

    std::string take_buffer() override { return outbox_.take_spare(); }

    bool open() const noexcept override { return open_ && !done_ && !closing_; }
    void set_events(std::weak_ptr<upstream_socket_events> events) override {
        events_ = std::move(events);
    }
    net::any_io_executor executor() const override { return executor_; }

  private:
    static net::awaitable<void> run(std::shared_ptr<ws_client> self) { co_await self->session(); }

    net::awaitable<void> session() {
        auto [rec, results] =
            co_await resolver_.async_resolve(where_.host, where_.port, use_nothrow);
        if (rec) {
            fail_connect("resolve_failed", rec.message());
            co_return;
        }
        auto& lowest = beast::get_lowest_layer(ws_);
        auto [cec, endpoint] = co_await net::async_connect(lowest, results, use_nothrow);
        if (cec) {
            fail_connect("connect_failed", cec.message());
            co_return;
        }
        lowest.set_option(tcp::no_delay(true));
        if constexpr (!std::is_same_v<Next, plain_socket>) {
            auto& tls = ws_.next_layer();
            // SNI, and the certificate must name the host we asked for.
            if (!SSL_set_tlsext_host_name(tls.native_handle(), where_.host.c_str())) {
                fail_connect("tls_failed", "cannot set SNI host name");
                co_return;
            }
            tls.set_verify_mode(net::ssl::verify_peer);
            tls.set_verify_callback(net::ssl::host_name_verification(where_.host));
            auto [tec] = co_await tls.async_handshake(net::ssl::stream_base::client, use_nothrow);
            if (tec) {
                fail_connect("tls_failed", tec.message());
                co_return;
            }
        }
        websocket::stream_base::timeout timeouts{};
        timeouts.handshake_timeout = target_.connect_timeout;
        timeouts.idle_timeout = websocket::stream_base::none();
        timeouts.keep_alive_pings = false;
        ws_.set_option(timeouts);
        ws_.set_option(websocket::stream_base::decorator([this](websocket::request_type& req) {
            req.set(http::field::user_agent, std::string("callstream/") + version);
            for (const auto& [name, value] : target_.headers) {
                req.set(name, value);
            }
            if (!target_.subprotocol.empty()) {
                req.set(http::field::sec_websocket_protocol, target_.subprotocol);
            }
        }));
        ws_.read_message_max(target_.max_message_bytes);
        const bool default_port = where_.port == (where_.tls ? "443" : "80");
        const std::string host = default_port ? where_.host : where_.host + ":" + where_.port;
        websocket::response_type res;
        auto [hec] = co_await ws_.async_handshake(res, host, where_.target, use_nothrow);
        if (hec) {
            fail_connect("handshake_failed",
                         hec.message() + (res.result_int() != 0
                                              ? " (HTTP " + std::to_string(res.result_int()) + ")"
                                              : std::string{}));
            co_return;
        }
        const auto answered = res[http::field::sec_websocket_protocol];
        if (answered != target_.subprotocol) {
            fail_connect("bad_subprotocol", "asked for '" + target_.subprotocol +
                                                "', the upstream answered '" +
                                                std::string(answered) + "'");
            co_return;
        }
        open_ = true;
        deadline_.cancel();
        if (closing_) {
            do_close();
            co_return;
        }
        if (auto ev = events_.lock()) {
            ev->on_upstream_open();
        }
        if (!outbox_.empty() && !writing_ && !done_) {
            do_write();
        }
        if (!done_) {
            do_read();
        }
    }

    // One read always pending once open, each completion a plain callback (no coroutine frame
    // resumed per message); the handler's shared_ptr keeps the socket alive while it waits.
    void do_read() {
        ws_.async_read(buffer_,
                       [self = this->shared_from_this()](const beast::error_code& ec, std::size_t) {
                           self->on_read(ec);
                       });
    }

    void on_read(const beast::error_code& ec) {
        if (ec) {
            if (ec == websocket::error::closed) {
                report("upstream_closed",
                       "the upstream closed the WebSocket (" + std::to_string(ws_.reason().code) +
                           " " +
                           std::string(ws_.reason().reason.data(), ws_.reason().reason.size()) +
                           ")");
            } else if (ec == websocket::error::message_too_big) {
                report("too_big",
                       "a message over " + std::to_string(target_.max_message_bytes) + " bytes");
            } else {
                report("upstream_lost", ec.message());
            }
            done_ = true;
            return;
        }
        buffer_.prepare(simdjson::SIMDJSON_PADDING);
        const auto data = buffer_.data();
        const std::string_view view(static_cast<const char*>(data.data()), data.size());
        if (auto ev = events_.lock(); ev && !closing_) {
            ev->on_upstream_message(ws_.got_text(), view);
        }
        buffer_.consume(buffer_.size());
        if (!done_) {
            do_read();
        }
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
        beast::close_socket(beast::get_lowest_layer(ws_));
    }

    void do_write() {
        writing_ = true;
        ws_.text(outbox_.front().text);
        ws_.async_write(net::buffer(outbox_.front().data),
                        [self = this->shared_from_this()](const beast::error_code& ec,
                                                          std::size_t) { self->on_write(ec); });
    }

    void on_write(const beast::error_code& ec) {
        writing_ = false;
        outbox_bytes_ -= outbox_.front().data.size();
        outbox_.pop_front(); // the string stays in its slot, to be swapped out by a later send
        if (ec || done_) {
            return; // the read side reports the broken connection
        }
        if (!outbox_.empty()) {
            do_write();
        } else if (closing_) {
            do_close();
        }
    }

    void do_close() {
        // Bounded: a peer that never answers our close frame loses the TCP connection.
        deadline_.expires_after(target_.connect_timeout);
        deadline_.async_wait([self = this->shared_from_this()](const beast::error_code& ec) {
            if (!ec) {
                beast::close_socket(beast::get_lowest_layer(self->ws_));
            }
        });
        ws_.async_close(websocket::close_code::normal,
                        [self = this->shared_from_this()](const beast::error_code&) {
                            self->done_ = true;
                            self->deadline_.cancel();
                        });
    }

    websocket::stream<Next> ws_;
    net::any_io_executor executor_;
    upstream_target target_;
    parsed_ws_url where_;
    std::weak_ptr<upstream_socket_events> events_;
    tcp::resolver resolver_;
    deadline_timer deadline_;
    beast::flat_buffer buffer_;
    outbox_ring outbox_;
    std::size_t outbox_bytes_ = 0;
    bool open_ = false;
    bool writing_ = false;
    bool closing_ = false;
    bool done_ = false;
    bool timed_out_ = false;
    bool reported_ = false;
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
    if (!where.error.empty() || io == nullptr) {
        // Startup validates URLs, so either is a programming error; still, fail the call only.
        // A socket that never opens, on a context that never runs, stands in for the call.
        static net::io_context dormant;
        auto s = std::make_shared<ws_client<plain_socket>>(
            plain_socket(io ? io->context() : dormant), executor, std::move(target), where, events);
        if (auto ev = events.lock()) {
            ev->on_upstream_closed("bad_url",
                                   io ? where.error : std::string("not an io_context executor"));
        }
        return s;
    }
    if (where.tls) {
        using tls_stream = beast::ssl_stream<plain_socket>;
        auto s = std::make_shared<ws_client<tls_stream>>(
            tls_stream(plain_socket(io->context()), *tls), executor, std::move(target),
            std::move(where), std::move(events));
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
