// callstream-bridge-echo: the cheap upstream of bench/compare --bridge. A WebSocket server that
// answers callstream's `twilio` bridge protocol as a bot that only echoes would: every `media`
// message goes back unchanged (callstream reads it as the caller-bound media it is), everything
// else (connected, start, mark, dtmf, stop) is read and dropped. No JSON parse, no base64.
//
// Why it is a bare epoll loop rather than Beast: it shares CPU 1 with the load generator, and
// at 500 bridged calls a Beast echo (one read, one EAGAIN read and one write per message) took a
// third of that CPU; with the generator on the same core, the run then measured the queue on
// CPU 1 rather than the bridge's added latency. Here one read takes everything a socket holds
// and one write sends every echo that read produced, as c-floor does; the framing is
// callstream's own reader (codec/websocket_frame.hpp), so a frame that breaks RFC 6455 closes
// the connection rather than being echoed.
//
//   callstream-bridge-echo PORT        (127.0.0.1; PORT 0 picks one; prints "listening on N")
//
// One thread. Errors on a connection close that connection; errors at startup exit with 1.
#include <algorithm>
#include <arpa/inet.h>
#include <array>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <string_view>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <unordered_map>
#include <vector>

#include "codec/websocket_frame.hpp"
#include "server/media/websocket_upgrade.hpp"

namespace {

using namespace callstream;

// How callstream's Twilio writer starts every media message (server/bridge/twilio_protocol.cpp).
constexpr std::string_view media_prefix = R"({"event":"media")";
constexpr std::size_t read_chunk_bytes = 64 * 1024;
constexpr std::size_t max_request_bytes = 8 * 1024;

// The Sec-WebSocket-Key header's value in an HTTP request (case-insensitive name), or empty.
std::string_view websocket_key(std::string_view request) {
    constexpr std::string_view name = "sec-websocket-key:";
    for (std::size_t at = request.find("\r\n"); at != std::string_view::npos;
         at = request.find("\r\n", at + 2)) {
        const auto line = request.substr(at + 2, request.find("\r\n", at + 2) - at - 2);
        if (line.size() > name.size() &&
            std::equal(name.begin(), name.end(), line.begin(), [](char a, char b) {
                return a == std::tolower(static_cast<unsigned char>(b));
            })) {
            auto value = line.substr(name.size());
            while (!value.empty() && value.front() == ' ') {
                value.remove_prefix(1);
            }
            while (!value.empty() && value.back() == ' ') {
                value.remove_suffix(1);
            }
            return value;
        }
    }
    return {};
}

class connection {
  public:
    explicit connection(int fd)
        : fd_(fd), reader_(codec::ws_reader_limits{1 << 20, 64, codec::ws_peer::client}),
          in_(read_chunk_bytes) {}
    ~connection() { ::close(fd_); }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    // The socket is readable: false when the connection is done (close it).
    bool on_readable() {
        for (;;) {
            if (in_.size() - end_ < 4096) {
                in_.resize(in_.size() * 2);
            }
            const std::size_t room = in_.size() - end_;
            const ssize_t n = ::recv(fd_, in_.data() + end_, room, 0);
            if (n < 0) {
                if (errno == EINTR) {
                    continue;
                }
                return errno == EAGAIN && flush();
            }
            if (n == 0) {
                return false;
            }
            end_ += static_cast<std::size_t>(n);
            if (!(upgraded_ ? handle_frames() : handle_request())) {
                return false;
            }
            if (closing_ || static_cast<std::size_t>(n) < room) {
                return flush(); // a short read emptied the socket: the echoes go in one write
            }
        }
    }

    // The socket is writable again (after a write that did not all go).
    bool on_writable() { return flush(); }
    bool wants_write() const noexcept { return !out_.empty(); }
    int fd() const noexcept { return fd_; }

  private:
    bool handle_request() {
        const std::string_view seen(reinterpret_cast<const char*>(in_.data()), end_);
        const auto head_end = seen.find("\r\n\r\n");
        if (head_end == std::string_view::npos) {
            return end_ < max_request_bytes;
        }
        const auto key = websocket_key(seen.substr(0, head_end + 2));
        if (key.empty()) {
            return false;
        }
        out_ = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Accept: " +
               server::websocket_accept_key(key) + "\r\n\r\n";
        upgraded_ = true;
        const std::size_t used = head_end + 4;
        std::memmove(in_.data(), in_.data() + used, end_ - used);
        end_ -= used;
        return handle_frames();
    }

    // Every complete frame in the buffer: media echoed into out_, a close answered.
    bool handle_frames() {
        std::size_t begin = 0;
        bool go_on = true;
        while (go_on) {
            const auto e = reader_.next({in_.data() + begin, end_ - begin});
            if (e.kind == codec::ws_event_kind::need_more) {
                begin += e.consumed;
                break;
            }
            if (e.kind == codec::ws_event_kind::error) {
                return false;
            }
            if (e.kind == codec::ws_event_kind::control) {
                if (e.opcode == codec::ws_opcode::close) {
                    const auto close = codec::ws_make_close_frame(codec::ws_close::normal, {});
                    out_.append(close.begin(), close.end());
                    closing_ = true;
                    go_on = false;
                } else if (e.opcode == codec::ws_opcode::ping) {
                    const auto pong =
                        codec::ws_make_control_frame(codec::ws_opcode::pong, e.payload);
                    out_.append(pong.begin(), pong.end());
                }
            } else if (e.opcode == codec::ws_opcode::text) {
                const std::string_view text(reinterpret_cast<const char*>(e.payload.data()),
                                            e.payload.size());
                if (text.starts_with(media_prefix)) {
                    const auto header = codec::ws_make_header(codec::ws_opcode::text, text.size());
                    out_.append(reinterpret_cast<const char*>(header.bytes().data()), header.size);
                    out_.append(text);
                }
            }
            begin += e.consumed;
        }
        std::memmove(in_.data(), in_.data() + begin, end_ - begin);
        end_ -= begin;
        return true;
    }

    // Writes what is queued; false when the connection is done.
    bool flush() {
        while (written_ < out_.size()) {
            const ssize_t n = ::send(fd_, out_.data() + written_, out_.size() - written_,
                                     MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n < 0) {
                if (errno == EAGAIN) {
                    return true; // the loop waits for EPOLLOUT
                }
                if (errno == EINTR) {
                    continue;
                }
                return false;
            }
            written_ += static_cast<std::size_t>(n);
        }
        out_.clear();
        written_ = 0;
        return !closing_;
    }

    int fd_;
    codec::ws_frame_reader reader_;
    std::vector<std::uint8_t> in_;
    std::size_t end_ = 0;
    std::string out_;
    std::size_t written_ = 0;
    bool upgraded_ = false;
    bool closing_ = false;
};

int fail(const char* what) {
    std::fprintf(stderr, "callstream-bridge-echo: %s: %s\n", what, std::strerror(errno));
    return 1;
}

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: callstream-bridge-echo PORT\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);
    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    const int on = 1;
    ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<std::uint16_t>(std::atoi(argv[1])));
    if (::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, 4096) != 0) {
        return fail("listen");
    }
    socklen_t len = sizeof addr;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);
    const int poll = ::epoll_create1(0);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr; // the listener
    if (poll < 0 || ::epoll_ctl(poll, EPOLL_CTL_ADD, listener, &ev) != 0) {
        return fail("epoll");
    }
    std::printf("callstream-bridge-echo listening on %u\n", ntohs(addr.sin_port));
    std::fflush(stdout);

    std::unordered_map<connection*, std::unique_ptr<connection>> connections;
    auto watch = [&](connection* c, int op) {
        epoll_event e{};
        e.events = EPOLLIN | (c->wants_write() ? EPOLLOUT : 0U);
        e.data.ptr = c;
        ::epoll_ctl(poll, op, c->fd(), &e);
    };
    std::array<epoll_event, 256> events{};
    for (;;) {
        const int n = ::epoll_wait(poll, events.data(), static_cast<int>(events.size()), -1);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return fail("epoll_wait");
        }
        for (std::size_t i = 0; i < static_cast<std::size_t>(n); ++i) {
            auto* c = static_cast<connection*>(events[i].data.ptr);
            if (c == nullptr) {
                for (;;) {
                    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
                    if (fd < 0) {
                        break;
                    }
                    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                    auto owned = std::make_unique<connection>(fd);
                    auto* added = owned.get();
                    connections.emplace(added, std::move(owned));
                    watch(added, EPOLL_CTL_ADD);
                }
                continue;
            }
            const bool had_output = c->wants_write();
            bool alive = true;
            if ((events[i].events & EPOLLOUT) != 0U) {
                alive = c->on_writable();
            }
            if (alive && (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) != 0U) {
                alive = c->on_readable();
            }
            if (!alive) {
                connections.erase(c); // closes the descriptor, which leaves the epoll set
            } else if (had_output != c->wants_write()) {
                watch(c, EPOLL_CTL_MOD);
            }
        }
    }
}
