#pragma once
// A raw TCP client for end-to-end tests that must send what no WebSocket library will: it does
// the HTTP upgrade by hand, then writes frames byte by byte (masked or not, any header) and
// reads the server's frames. Blocking POSIX sockets with receive timeouts, so a server that
// never answers fails the test instead of hanging it. Over TLS (wss://) too: each send() is one
// TLS record, and send_tcp() writes bytes under the TLS layer (a forged record). Test code only.

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <optional>
#include <poll.h>
#include <signal.h>
#include <stdexcept>
#include <string>
#include <string_view>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace callstream::testing {

struct ws_frame {
    bool fin = false;
    int opcode = 0;
    std::string payload;
    // For a close frame: the status code (0 when the payload is empty) and the reason.
    int close_code() const {
        return payload.size() >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                         static_cast<unsigned char>(payload[1])
                                   : 0;
    }
    std::string close_reason() const { return payload.size() > 2 ? payload.substr(2) : ""; }
};

// First header byte bits (RFC 6455 section 5.2): FIN, RSV1-3 and the opcodes.
inline constexpr std::uint8_t fin = 0x80;
inline constexpr std::uint8_t rsv1 = 0x40;
inline constexpr std::uint8_t rsv2 = 0x20;
inline constexpr std::uint8_t rsv3 = 0x10;
inline constexpr std::uint8_t op_cont = 0x0;
inline constexpr std::uint8_t op_text = 0x1;
inline constexpr std::uint8_t op_close = 0x8;
inline constexpr std::uint8_t op_ping = 0x9;

// A client frame: `b0` is the first header byte (FIN, RSV1-3, opcode), the payload is masked
// with a fixed key unless `masked` is false, and the length uses the shortest encoding.
inline std::string make_frame(std::uint8_t b0, std::string_view payload, bool masked = true) {
    std::string out;
    out.push_back(static_cast<char>(b0));
    const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
    const std::size_t n = payload.size();
    if (n < 126) {
        out.push_back(static_cast<char>(mask_bit | n));
    } else if (n < 65536) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>(n >> 8));
        out.push_back(static_cast<char>(n & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((static_cast<std::uint64_t>(n) >> shift) & 0xFF));
        }
    }
    const char key[4] = {0x37, static_cast<char>(0xFA), 0x21, 0x3D};
    if (masked) {
        out.append(key, 4);
    }
    for (std::size_t i = 0; i < n; ++i) {
        out.push_back(masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i]);
    }
    return out;
}

// A masked header that announces `length` bytes via the 64-bit length form (nothing follows).
inline std::string make_header_64(std::uint8_t b0, std::uint64_t length) {
    std::string out;
    out.push_back(static_cast<char>(b0));
    out.push_back(static_cast<char>(0x80 | 127));
    for (int shift = 56; shift >= 0; shift -= 8) {
        out.push_back(static_cast<char>((length >> shift) & 0xFF));
    }
    out.append("\x37\xFA\x21\x3D", 4);
    return out;
}

class raw_socket {
  public:
    // `receive_buffer` (bytes, 0: the system's): SO_RCVBUF before connecting, so the window
    // the server may fill is that small from the start.
    enum class transport { tcp, tls };

    explicit raw_socket(std::uint16_t port, int receive_buffer = 0,
                        transport over = transport::tcp) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) {
            throw std::runtime_error("socket failed");
        }
        if (receive_buffer > 0) {
            ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof(receive_buffer));
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            const int err = errno;
            ::close(fd_);
            throw std::runtime_error(std::string("connect failed: ") + std::strerror(err));
        }
        const int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (over == transport::tls) {
            start_tls();
        }
    }
    ~raw_socket() {
        SSL_free(ssl_);
        SSL_CTX_free(ssl_ctx_);
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    raw_socket(const raw_socket&) = delete;
    raw_socket& operator=(const raw_socket&) = delete;

    // Writes everything (over TLS: as one record, up to 16 KiB); false if the server has closed
    // the connection (EPIPE/ECONNRESET).
    bool send(std::string_view bytes) {
        if (ssl_ != nullptr) {
            std::size_t n = 0;
            return SSL_write_ex(ssl_, bytes.data(), bytes.size(), &n) == 1 && n == bytes.size();
        }
        return send_tcp(bytes);
    }

    // Writes bytes straight to the TCP connection, under any TLS.
    bool send_tcp(std::string_view bytes) {
        while (!bytes.empty()) {
            const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) {
                return false;
            }
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    // Sends a WebSocket upgrade for `path` and reads the response head; returns the status.
    int upgrade(const std::string& path = "/media-stream") {
        send("GET " + path +
             " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
        return read_response_status();
    }

    // Reads an HTTP response head (and leaves any body unread); 0 if the connection ended first.
    int read_response_status(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        std::string head;
        while (head.find("\r\n\r\n") == std::string::npos) {
            char c = 0;
            if (!read_exact(&c, 1, timeout)) {
                return 0;
            }
            head.push_back(c);
        }
        head_ = head;
        return head.size() > 12 ? std::atoi(head.c_str() + 9) : 0;
    }
    const std::string& response_head() const noexcept { return head_; }

    // The next frame from the server, or nullopt on EOF, error or timeout.
    std::optional<ws_frame>
    read_frame(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        unsigned char h[2];
        if (!read_exact(h, 2, timeout)) {
            return std::nullopt;
        }
        ws_frame f;
        f.fin = (h[0] & 0x80) != 0;
        f.opcode = h[0] & 0x0F;
        std::uint64_t len = h[1] & 0x7F;
        if (len == 126 || len == 127) {
            unsigned char ext[8];
            const std::size_t n = len == 126 ? 2 : 8;
            if (!read_exact(ext, n, timeout)) {
                return std::nullopt;
            }
            len = 0;
            for (std::size_t i = 0; i < n; ++i) {
                len = (len << 8) | ext[i];
            }
        }
        if ((h[1] & 0x80) != 0 || len > (1U << 20)) {
            return std::nullopt; // a server must not mask; nor send us a megabyte here
        }
        f.payload.resize(static_cast<std::size_t>(len));
        if (len != 0 && !read_exact(f.payload.data(), f.payload.size(), timeout)) {
            return std::nullopt;
        }
        return f;
    }

    // Reads frames until a close frame arrives; nullopt if the connection ends without one.
    std::optional<ws_frame>
    read_close(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (std::chrono::steady_clock::now() < deadline) {
            auto f = read_frame(remaining(deadline));
            if (!f) {
                return std::nullopt;
            }
            if (f->opcode == 0x8) {
                return f;
            }
        }
        return std::nullopt;
    }

    // True when the server ends the TCP connection (EOF or reset) within `timeout`; any bytes
    // that arrive first are discarded.
    bool wait_eof(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd_, POLLIN, 0};
            const int r = ::poll(&p, 1, static_cast<int>(remaining(deadline).count()));
            if (r <= 0) {
                continue;
            }
            const auto n = receive(buf, sizeof(buf));
            if (n <= 0) {
                return true;
            }
        }
        return false;
    }

    // Over TLS: the server ended the TLS stream with close_notify (seen by a read that ended).
    bool saw_close_notify() const noexcept { return close_notify_; }

    // Closes our end (a FIN; over TLS, close_notify first), as a real client does once it has
    // seen the server's.
    void close() {
        if (ssl_ != nullptr && fd_ >= 0) {
            SSL_shutdown(ssl_);
        }
        if (fd_ >= 0) {
            ::close(fd_);
            fd_ = -1;
        }
    }

    int fd() const noexcept { return fd_; }

  private:
    static std::chrono::milliseconds remaining(std::chrono::steady_clock::time_point deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        return std::max(left, std::chrono::milliseconds(1));
    }

    bool read_exact(void* out, std::size_t n, std::chrono::milliseconds timeout) {
        auto* p = static_cast<char*>(out);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (n > 0) {
            if (std::chrono::steady_clock::now() >= deadline) {
                return false;
            }
            pollfd pfd{fd_, POLLIN, 0};
            if ((ssl_ == nullptr || SSL_pending(ssl_) == 0) &&
                ::poll(&pfd, 1, static_cast<int>(remaining(deadline).count())) <= 0) {
                continue;
            }
            const auto r = receive(p, n);
            if (r <= 0) {
                return false;
            }
            p += r;
            n -= static_cast<std::size_t>(r);
        }
        return true;
    }

    // A TLS client session on the connected socket (any certificate; SNI localhost). A read
    // that waits for the rest of a record is bounded by SO_RCVTIMEO.
    void start_tls() {
        ::signal(SIGPIPE, SIG_IGN); // OpenSSL writes with write(2): a reset peer must not kill us
        const timeval limit{10, 0};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
        ssl_ctx_ = SSL_CTX_new(TLS_client_method());
        ssl_ = ssl_ctx_ != nullptr ? SSL_new(ssl_ctx_) : nullptr;
        if (ssl_ == nullptr || SSL_set_fd(ssl_, fd_) != 1 ||
            SSL_set_tlsext_host_name(ssl_, "localhost") != 1 || SSL_connect(ssl_) != 1) {
            throw std::runtime_error("TLS handshake failed");
        }
    }

    // recv(2), or SSL_read over TLS: bytes read, 0 at the end (close_notify or EOF), -1 on error.
    long receive(void* out, std::size_t n) {
        if (ssl_ == nullptr) {
            return static_cast<long>(::recv(fd_, out, n, 0));
        }
        ERR_clear_error(); // SSL_get_error reads the thread's error queue
        std::size_t got = 0;
        const int r = SSL_read_ex(ssl_, out, n, &got);
        if (r == 1) {
            return static_cast<long>(got);
        }
        const int why = SSL_get_error(ssl_, r);
        close_notify_ = close_notify_ || why == SSL_ERROR_ZERO_RETURN;
        return why == SSL_ERROR_ZERO_RETURN ? 0 : -1;
    }

    int fd_ = -1;
    std::string head_;
    SSL_CTX* ssl_ctx_ = nullptr;
    SSL* ssl_ = nullptr;
    bool close_notify_ = false;
};

} // namespace callstream::testing
