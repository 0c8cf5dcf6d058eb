#include "server/monitor/monitor_socket.hpp"

#include <array>
#include <cstring>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "server/app/log.hpp"
#include "server/monitor/monitor_hub.hpp"

namespace callstream::server::monitor {
namespace {

namespace websocket = beast::websocket;
constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);
constexpr std::string_view events_path = "/monitor/events";
constexpr std::string_view listen_prefix = "/monitor/listen/";
constexpr std::chrono::milliseconds listen_poll{20};
constexpr std::size_t frame_header_bytes = 16;

// "/i/{instance}/monitor/…" is "/monitor/…" pinned to an instance: HAProxy's use-server rule
// routes on the instance segment (scripts/deploy/haproxy.cfg), and whichever instance gets it
// serves it (a stream held elsewhere is a 404, as unpinned).
std::string_view unpinned(std::string_view path) {
    if (path.substr(0, 3) != "/i/") {
        return path;
    }
    const auto slash = path.find('/', 3);
    if (slash == std::string_view::npos || slash == 3) {
        return path;
    }
    return path.substr(slash);
}

std::string_view path_of(std::string_view target) {
    return unpinned(target.substr(0, target.find('?')));
}

// The value of `name` in the target's query string (tokens are [0-9a-f.]: nothing to decode).
std::string_view query_param(std::string_view target, std::string_view name) {
    const auto q = target.find('?');
    if (q == std::string_view::npos) {
        return {};
    }
    std::string_view rest = target.substr(q + 1);
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        if (pair.size() > name.size() && pair.substr(0, name.size()) == name &&
            pair[name.size()] == '=') {
            return pair.substr(name.size() + 1);
        }
        rest = amp == std::string_view::npos ? std::string_view{} : rest.substr(amp + 1);
    }
    return {};
}

std::string_view listen_sid(std::string_view pinned_or_not) {
    const auto path = unpinned(pinned_or_not);
    if (path.substr(0, listen_prefix.size()) != listen_prefix) {
        return {};
    }
    const auto sid = path.substr(listen_prefix.size());
    return sid.find('/') == std::string_view::npos ? sid : std::string_view{};
}

template <typename Stream> void set_options(websocket::stream<Stream>& ws, bool binary) {
    auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
    ws.set_option(timeouts);
    ws.read_message_max(4096); // the page sends nothing but control frames
    ws.binary(binary);
}

// Keeps a read pending until the browser goes (pings, pongs and the close handshake only move
// inside a pending read), then tells the session.
template <typename Session> net::awaitable<void> read_until_closed(std::shared_ptr<Session> self) {
    beast::flat_buffer buffer;
    for (;;) {
        auto [ec, n] = co_await self->ws().async_read(buffer, use_nothrow);
        if (ec) {
            break;
        }
        buffer.consume(n);
    }
    self->on_peer_gone();
}

// An events socket: the hub offers snapshots; the newest unwritten one wins.
template <typename Stream>
class events_session : public watcher, public std::enable_shared_from_this<events_session<Stream>> {
  public:
    explicit events_session(websocket::stream<Stream> ws)
        : ws_(std::move(ws)), wake_(ws_.get_executor()) {}

    void offer(std::shared_ptr<const std::string> snapshot, bool full) override {
        net::post(ws_.get_executor(),
                  [self = this->shared_from_this(), s = std::move(snapshot), full] {
                      if (self->pending_ && self->pending_full_ && !full) {
                          return; // keep the facts; the next tick brings fresh levels
                      }
                      self->pending_ = s;
                      self->pending_full_ = full;
                      self->wake_.cancel();
                  });
    }

    net::awaitable<void> run() {
        auto self = this->shared_from_this();
        net::co_spawn(ws_.get_executor(), read_until_closed(self), net::detached);
        while (!closed_) {
            if (!pending_) {
                wake_.expires_after(std::chrono::hours(24));
                co_await wake_.async_wait(use_nothrow);
                continue;
            }
            const auto snapshot = std::move(pending_);
            pending_.reset();
            pending_full_ = false;
            auto [ec, n] = co_await ws_.async_write(net::buffer(*snapshot), use_nothrow);
            if (ec) {
                break;
            }
        }
        closed_ = true;
    }

    websocket::stream<Stream>& ws() { return ws_; }
    void on_peer_gone() {
        closed_ = true;
        wake_.cancel();
    }

  private:
    websocket::stream<Stream> ws_;
    net::steady_timer wake_;
    std::shared_ptr<const std::string> pending_;
    bool pending_full_ = false;
    bool closed_ = false;
};

// A listen socket: every 20 ms, what the tap's ring holds goes out as one binary message.
template <typename Stream>
class listen_session : public std::enable_shared_from_this<listen_session<Stream>> {
  public:
    listen_session(websocket::stream<Stream> ws, std::shared_ptr<monitor_hub> hub,
                   std::shared_ptr<stream_tap> tap)
        : ws_(std::move(ws)), timer_(ws_.get_executor()), hub_(std::move(hub)),
          tap_(std::move(tap)) {}

    net::awaitable<void> run(std::string remote) {
        auto self = this->shared_from_this();
        const auto& f = tap_->facts();
        if (!tap_->attach_listener()) {
            co_await ws_.async_close(
                {websocket::close_code::try_again_later, "someone already listens to this call"},
                use_nothrow);
            co_return;
        }
        const auto started = std::chrono::steady_clock::now();
        log(log_level::info, "monitor_listen_started",
            {{"call_sid", f.call_sid}, {"stream_sid", f.stream_sid}, {"remote", remote}});
        std::string hello = R"({"type":"listen","call_sid":")" + f.call_sid +
                            R"(","stream_sid":")" + f.stream_sid +
                            R"(","codec":"ulaw","sample_rate":8000,"legs":["caller","outbound"]})";
        ws_.text(true);
        auto [hello_ec, hn] = co_await ws_.async_write(net::buffer(hello), use_nothrow);
        ws_.binary(true);
        std::uint64_t frames_sent = 0;
        std::string why = "listener left";
        if (!hello_ec) {
            net::co_spawn(ws_.get_executor(), read_until_closed(self), net::detached);
            std::vector<listen_frame> frames(stream_tap::ring_frames);
            std::string message;
            while (!closed_) {
                timer_.expires_after(listen_poll);
                co_await timer_.async_wait(use_nothrow);
                if (closed_) {
                    break;
                }
                const std::size_t n = tap_->drain(frames);
                if (n == 0) {
                    if (!hub_->running(*tap_)) {
                        why = "call ended";
                        co_await ws_.async_close({websocket::close_code::normal, "call ended"},
                                                 use_nothrow);
                        break;
                    }
                    continue;
                }
                message.clear();
                for (std::size_t i = 0; i < n; ++i) {
                    append_frame(message, frames[i]);
                }
                auto [ec, written] = co_await ws_.async_write(net::buffer(message), use_nothrow);
                if (ec) {
                    break;
                }
                frames_sent += n;
            }
        }
        tap_->detach_listener();
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::steady_clock::now() - started)
                            .count();
        log(log_level::info, "monitor_listen_ended",
            {{"call_sid", f.call_sid},
             {"stream_sid", f.stream_sid},
             {"remote", remote},
             {"duration_ms", static_cast<std::uint64_t>(ms)},
             {"frames", frames_sent},
             {"reason", why}});
    }

    websocket::stream<Stream>& ws() { return ws_; }
    void on_peer_gone() {
        closed_ = true;
        timer_.cancel();
    }

  private:
    static void append_frame(std::string& out, const listen_frame& f) {
        std::array<char, frame_header_bytes> h{};
        const auto size = static_cast<std::uint16_t>(f.size);
        h[0] = static_cast<char>(f.leg);
        // x86 and ARM Linux are little endian, as the header is documented.
        std::memcpy(&h[2], &size, 2);
        std::memcpy(&h[4], &f.seq, 4);
        std::memcpy(&h[8], &f.captured_unix_ms, 8);
        out.append(h.data(), h.size());
        out.append(reinterpret_cast<const char*>(f.ulaw.data()), f.size);
    }

    websocket::stream<Stream> ws_;
    net::steady_timer timer_;
    std::shared_ptr<monitor_hub> hub_;
    std::shared_ptr<stream_tap> tap_;
    bool closed_ = false;
};

} // namespace

bool is_monitor_socket_path(std::string_view path) {
    return unpinned(path) == events_path || !listen_sid(path).empty();
}

std::optional<http_response> check_monitor_upgrade(request_context& rc) {
    auto& hub = rc.server.monitor;
    if (!hub) {
        return json_error(rc.request, http::status::not_found,
                          "the monitor is off (start callstream with --monitor)");
    }
    const std::string_view target = rc.request.target();
    const auto token = query_param(target, "token");
    const auto verdict = token.empty()
                             ? token_verdict::malformed
                             : hub->tokens().check(token, std::chrono::system_clock::now());
    if (verdict != token_verdict::ok) {
        log(log_level::warn, "monitor_token_refused",
            {{"path", path_of(target)}, {"remote", rc.remote}, {"why", to_string(verdict)}});
        auto res = json_error(rc.request, http::status::unauthorized,
                              token.empty() ? std::string_view("no monitor token: POST "
                                                               "/monitor/token first")
                                            : to_string(verdict));
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    if (const auto sid = listen_sid(rc.path()); !sid.empty() && !hub->find(sid)) {
        return json_error(rc.request, http::status::not_found,
                          "no running stream " + std::string(sid));
    }
    return std::nullopt;
}

template <typename Stream>
net::awaitable<void> run_monitor_socket(Stream stream, http_request req,
                                        std::shared_ptr<server_context> ctx, std::string remote) {
    const std::string path(path_of(req.target()));
    websocket::stream<Stream> ws(std::move(stream));
    const bool listen = path != events_path;
    set_options(ws, listen);
    auto [ec] = co_await ws.async_accept(req, use_nothrow);
    if (ec) {
        co_return;
    }
    auto hub = ctx->monitor;
    if (!listen) {
        auto session = std::make_shared<events_session<Stream>>(std::move(ws));
        hub->add_watcher(session);
        co_await session->run();
        co_return;
    }
    auto tap = hub->find(listen_sid(path));
    if (!tap) {
        co_await ws.async_close({websocket::close_code::normal, "call ended"}, use_nothrow);
        co_return;
    }
    auto session = std::make_shared<listen_session<Stream>>(std::move(ws), hub, std::move(tap));
    co_await session->run(std::move(remote));
}

template net::awaitable<void> run_monitor_socket(beast::tcp_stream, http_request,
                                                 std::shared_ptr<server_context>, std::string);
template net::awaitable<void> run_monitor_socket(beast::ssl_stream<beast::tcp_stream>, http_request,
                                                 std::shared_ptr<server_context>, std::string);

} // namespace callstream::server::monitor
