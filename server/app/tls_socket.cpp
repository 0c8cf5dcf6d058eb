#include "server/app/tls_socket.hpp"

#include <algorithm>
#include <cstring>

#include <boost/asio/error.hpp>
#include <openssl/bio.h>
#include <openssl/err.h>

#include "server/app/write_now.hpp"

namespace callstream::server {

namespace net = boost::asio;

namespace {
// A record's plaintext limit (RFC 8446 5.1): a gather list is coalesced up to it.
constexpr std::size_t max_record_plaintext = 16 * 1024;

// The BIO type that reads and writes tls_socket's buffers (BIO_get_data: its cipher_buffers, or
// null once the socket has let go of the session). A template only so that it can name that
// private type, which attach_bios passes in.
template <typename Buffers> struct buffer_bio {
    static int read(BIO* bio, char* out, int size) {
        auto* io = static_cast<Buffers*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (io == nullptr || size <= 0) {
            return io == nullptr ? -1 : 0;
        }
        const std::size_t n = std::min(io->in_end - io->in_at, static_cast<std::size_t>(size));
        if (n == 0) {
            BIO_set_retry_read(bio); // "wait for more", not the stream's end
            return -1;
        }
        std::memcpy(out, io->in.get() + io->in_at, n);
        io->in_at += n;
        return static_cast<int>(n);
    }

    static int write(BIO* bio, const char* data, int size) {
        auto* io = static_cast<Buffers*>(BIO_get_data(bio));
        BIO_clear_retry_flags(bio);
        if (io == nullptr || size < 0) {
            return -1;
        }
        io->out.append(data, static_cast<std::size_t>(size));
        return size;
    }

    static long ctrl(BIO* bio, int cmd, long, void*) {
        const auto* io = static_cast<const Buffers*>(BIO_get_data(bio));
        switch (cmd) {
        case BIO_CTRL_FLUSH:
            return 1; // queued: the socket's next flush sends it
        case BIO_CTRL_PENDING:
            return io == nullptr ? 0 : static_cast<long>(io->in_end - io->in_at);
        case BIO_CTRL_WPENDING:
            return io == nullptr ? 0 : static_cast<long>(io->out.size());
        default:
            return 0; // no kTLS, no datagrams, no EOF of its own
        }
    }

    static int create(BIO* bio) {
        BIO_set_init(bio, 1);
        return 1;
    }

    // Made once, never freed: every session of the process uses it.
    static const BIO_METHOD* method() {
        static BIO_METHOD* const made = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
                                         "callstream tls_socket buffers");
            if (m != nullptr) {
                BIO_meth_set_read(m, &read);
                BIO_meth_set_write(m, &write);
                BIO_meth_set_ctrl(m, &ctrl);
                BIO_meth_set_create(m, &create);
            }
            return m;
        }();
        return made;
    }
};
} // namespace

void tls_socket::ssl_free::operator()(SSL* ssl) const noexcept {
    BIO_set_data(SSL_get_rbio(ssl), nullptr);
    BIO_set_data(SSL_get_wbio(ssl), nullptr);
    SSL_free(ssl);
}

bool tls_socket::attach_bios(SSL* ssl, cipher_buffers& io, std::string& why) {
    const BIO_METHOD* method = buffer_bio<cipher_buffers>::method();
    BIO* rbio = method == nullptr ? nullptr : BIO_new(method);
    BIO* wbio = method == nullptr ? nullptr : BIO_new(method);
    if (rbio == nullptr || wbio == nullptr) {
        BIO_free(rbio);
        BIO_free(wbio);
        why = "no memory for TLS buffers";
        return false;
    }
    BIO_set_data(rbio, &io);
    BIO_set_data(wbio, &io);
    SSL_set_bio(ssl, rbio, wbio); // frees the BIOs set before (Asio's end of its pair)
    return true;
}

std::optional<tls_socket> tls_socket::adopt(SSL* ssl, socket_type socket, std::string& why) {
    BIO* old_wbio = SSL_get_wbio(ssl);
    if (old_wbio != nullptr && BIO_wpending(old_wbio) > 0) {
        why = "TLS output not yet sent at the upgrade";
        return std::nullopt;
    }
    auto io = std::make_unique<cipher_buffers>();
    io->in = std::make_unique_for_overwrite<std::uint8_t[]>(cipher_in_bytes);
    // Records the client sent before the 101 that SSL has not read yet, in order (the pair
    // holds at most 17 KiB, what our buffer takes).
    if (BIO* old_rbio = SSL_get_rbio(ssl); old_rbio != nullptr) {
        while (BIO_ctrl_pending(old_rbio) > 0 && io->in_end < cipher_in_bytes) {
            const int n = BIO_read(old_rbio, io->in.get() + io->in_end,
                                   static_cast<int>(cipher_in_bytes - io->in_end));
            if (n <= 0) {
                break;
            }
            io->in_end += static_cast<std::size_t>(n);
        }
    }
    if (!attach_bios(ssl, *io, why)) {
        return std::nullopt;
    }
    SSL_up_ref(ssl);
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    return tls_socket(ssl, std::move(socket), std::move(io));
}

std::optional<tls_socket> tls_socket::client(SSL_CTX* context, socket_type socket,
                                             std::string& why) {
    SSL* ssl = SSL_new(context);
    auto io = std::make_unique<cipher_buffers>();
    io->in = std::make_unique_for_overwrite<std::uint8_t[]>(cipher_in_bytes);
    if (ssl == nullptr || !attach_bios(ssl, *io, why)) {
        SSL_free(ssl);
        why = "no memory for a TLS session";
        return std::nullopt;
    }
    SSL_set_connect_state(ssl);
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    return tls_socket(ssl, std::move(socket), std::move(io));
}

int tls_socket::advance_handshake(error_code& ec) {
    ERR_clear_error();
    const int r = SSL_do_handshake(ssl_.get());
    queue_output(); // a flight to send, or the alert that tells the peer why we stop
    if (r == 1) {
        return 1;
    }
    if (SSL_get_error(ssl_.get(), r) == SSL_ERROR_WANT_READ) {
        return 0;
    }
    ec = fail();
    return -1;
}

// The receive buffer is uninitialised on purpose: a connection's pages are touched only as far
// as reads go.
tls_socket::tls_socket(SSL* ssl, socket_type socket, std::unique_ptr<cipher_buffers> io)
    : socket_(std::move(socket)), ssl_(ssl), io_(std::move(io)) {}

net::mutable_buffer tls_socket::cipher_room() noexcept {
    if (io_->in_at > 0) {
        // What OpenSSL has not read moves to the front (in practice nothing: a read stops only
        // once every received byte is taken).
        std::memmove(io_->in.get(), io_->in.get() + io_->in_at, io_->in_end - io_->in_at);
        io_->in_end -= io_->in_at;
        io_->in_at = 0;
    }
    return {io_->in.get() + io_->in_end, cipher_in_bytes - io_->in_end};
}

bool tls_socket::has_unread() const noexcept {
    if (read_error_ || failed_ || ended_) {
        return true; // the next read meets the same end at once
    }
    return maybe_unread_ && (io_->unread() || SSL_pending(ssl_.get()) > 0);
}

tls_socket::error_code tls_socket::take_cipher(const error_code& ec, std::size_t bytes) noexcept {
    if (ec) {
        return ec == net::error::eof ? error_code(net::ssl::error::stream_truncated) : ec;
    }
    io_->in_end += bytes; // the recv wrote into cipher_room()
    return {};
}

tls_socket::error_code tls_socket::fail() noexcept {
    failed_ = true;
    // The newest entry: this call's. (The hot path does not clear the thread's queue before
    // every SSL call, so older entries may be another connection's.)
    const unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    if (e != 0) {
        return {static_cast<int>(e), net::error::get_ssl_category()};
    }
    // A failure OpenSSL queued no reason for: our BIOs do not fail, so it saw the stream end
    // inside a record.
    return net::ssl::error::stream_truncated;
}

std::pair<tls_socket::error_code, std::size_t> tls_socket::decrypt(net::mutable_buffer room) {
    if (read_error_) {
        return {std::exchange(read_error_, {}), 0};
    }
    if (failed_) {
        return {net::ssl::error::stream_truncated, 0};
    }
    if (ended_) {
        return {net::error::eof, 0};
    }
    auto* out = static_cast<char*>(room.data());
    std::size_t total = 0;
    // Until the received bytes are used up: an SSL_read_ex on none would only fail with
    // WANT_READ, through OpenSSL's error queue. (Plaintext left from a record bigger than the
    // room is SSL_pending.)
    while (total < room.size() && (io_->unread() || SSL_pending(ssl_.get()) > 0)) {
        std::size_t n = 0;
        const int r = SSL_read_ex(ssl_.get(), out + total, room.size() - total, &n);
        if (r == 1) {
            total += n;
            continue;
        }
        // Told apart without SSL_get_error, which would misread an entry another connection
        // left in this thread's error queue as this session's failure.
        ended_ = (SSL_get_shutdown(ssl_.get()) & SSL_RECEIVED_SHUTDOWN) != 0;
        if (!ended_ && SSL_want_read(ssl_.get())) {
            break; // part of a record: the rest comes with the next recv
        }
        const error_code ec = ended_ ? error_code(net::error::eof) : fail();
        if (total == 0) {
            return {ec, 0};
        }
        read_error_ = ec;
        break;
    }
    // Stopped for want of bytes: every complete record is read, and the next read goes to the
    // socket without asking OpenSSL first.
    maybe_unread_ = total == room.size() || read_error_;
    return {{}, total};
}

void tls_socket::queue_output() {
    // What OpenSSL wrote waits in its own string until here, since a flush may be sending from
    // cipher_out_ while a read makes OpenSSL write (an alert, a KeyUpdate reply).
    if (cipher_out_.empty()) {
        cipher_out_.swap(io_->out); // no copy: the usual case, everything sent before
    } else {
        cipher_out_.append(io_->out);
    }
    io_->out.clear();
}

bool tls_socket::encrypt(std::span<const net::const_buffer> buffers, error_code& ec) {
    if (failed_) {
        ec = net::ssl::error::stream_truncated;
        return false;
    }
    auto write_record = [&](const void* data, std::size_t size) {
        // Asio set partial writes: a big buffer may take several calls.
        const auto* at = static_cast<const char*>(data);
        while (size > 0) {
            std::size_t n = 0;
            if (SSL_write_ex(ssl_.get(), at, size, &n) != 1) {
                ec = fail();
                return false;
            }
            at += n;
            size -= n;
        }
        return true;
    };
    // Small buffers (a frame header and its payload) share a record; a big one goes as it is
    // (SSL_write cuts it into records itself).
    plain_.clear();
    for (const auto& b : buffers) {
        if (!plain_.empty() && plain_.size() + b.size() > max_record_plaintext) {
            if (!write_record(plain_.data(), plain_.size())) {
                return false;
            }
            plain_.clear();
        }
        if (b.size() >= max_record_plaintext) {
            if (!write_record(b.data(), b.size())) {
                return false;
            }
            continue;
        }
        plain_.append(static_cast<const char*>(b.data()), b.size());
    }
    if (!plain_.empty() && !write_record(plain_.data(), plain_.size())) {
        return false;
    }
    queue_output();
    return true;
}

bool tls_socket::flush_now() noexcept {
    if (sent_ < cipher_out_.size()) {
        const net::const_buffer rest(cipher_out_.data() + sent_, cipher_out_.size() - sent_);
        sent_ += write_now(socket_.native_handle(), std::span(&rest, 1));
    }
    if (sent_ < cipher_out_.size()) {
        return false;
    }
    cipher_out_.clear();
    sent_ = 0;
    return true;
}

void tls_socket::close_notify() {
    if (failed_) {
        return; // OpenSSL must not be asked for a shutdown after a fatal error
    }
    ERR_clear_error();
    SSL_shutdown(ssl_.get());
    ERR_clear_error(); // a peer gone already is the read side's business
    queue_output();
}

} // namespace callstream::server
