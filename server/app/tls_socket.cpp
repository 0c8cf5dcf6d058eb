#include "server/app/tls_socket.hpp"

#include <climits>
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
} // namespace

namespace {
// A read BIO and a write BIO in memory; false (none made) when OpenSSL has no memory.
bool make_memory_bios(BIO*& rbio, BIO*& wbio, std::string& why) {
    rbio = BIO_new(BIO_s_mem());
    wbio = BIO_new(BIO_s_mem());
    if (rbio == nullptr || wbio == nullptr) {
        BIO_free(rbio);
        BIO_free(wbio);
        why = "no memory for TLS buffers";
        return false;
    }
    // An empty read BIO means "wait for more", not the end of the stream.
    BIO_set_mem_eof_return(rbio, -1);
    return true;
}
} // namespace

std::optional<tls_socket> tls_socket::adopt(SSL* ssl, socket_type socket, std::string& why) {
    BIO* old_wbio = SSL_get_wbio(ssl);
    if (old_wbio != nullptr && BIO_wpending(old_wbio) > 0) {
        why = "TLS output not yet sent at the upgrade";
        return std::nullopt;
    }
    BIO* rbio = nullptr;
    BIO* wbio = nullptr;
    if (!make_memory_bios(rbio, wbio, why)) {
        return std::nullopt;
    }
    // Records the client sent before the 101 that SSL has not read yet, in order.
    if (BIO* old_rbio = SSL_get_rbio(ssl); old_rbio != nullptr) {
        std::array<char, 4096> chunk;
        while (BIO_ctrl_pending(old_rbio) > 0) {
            const int n = BIO_read(old_rbio, chunk.data(), static_cast<int>(chunk.size()));
            if (n <= 0 || BIO_write(rbio, chunk.data(), n) != n) {
                break;
            }
        }
    }
    SSL_up_ref(ssl);
    SSL_set_bio(ssl, rbio, wbio); // frees Asio's end of the pair
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    return tls_socket(ssl, std::move(socket), rbio, wbio);
}

std::optional<tls_socket> tls_socket::client(SSL_CTX* context, socket_type socket,
                                             std::string& why) {
    SSL* ssl = SSL_new(context);
    BIO* rbio = nullptr;
    BIO* wbio = nullptr;
    if (ssl == nullptr || !make_memory_bios(rbio, wbio, why)) {
        SSL_free(ssl);
        why = "no memory for a TLS session";
        return std::nullopt;
    }
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    SSL_set_options(ssl, SSL_OP_NO_RENEGOTIATION);
    return tls_socket(ssl, std::move(socket), rbio, wbio);
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

tls_socket::tls_socket(SSL* ssl, socket_type socket, BIO* rbio, BIO* wbio)
    : socket_(std::move(socket)), ssl_(ssl), rbio_(rbio), wbio_(wbio),
      // Uninitialised on purpose: a connection's pages are touched only as far as reads go.
      cipher_in_(std::make_unique_for_overwrite<std::uint8_t[]>(cipher_in_bytes)) {}

bool tls_socket::has_unread() const noexcept {
    if (read_error_ || failed_ || ended_) {
        return true; // the next read meets the same end at once
    }
    return maybe_unread_ && (SSL_pending(ssl_.get()) > 0 || SSL_has_pending(ssl_.get()) == 1 ||
                             BIO_ctrl_pending(rbio_) > 0);
}

tls_socket::error_code tls_socket::take_cipher(const error_code& ec, std::size_t bytes) noexcept {
    if (ec) {
        return ec == net::error::eof ? error_code(net::ssl::error::stream_truncated) : ec;
    }
    if (bytes > INT_MAX ||
        BIO_write(rbio_, cipher_in_.get(), static_cast<int>(bytes)) != static_cast<int>(bytes)) {
        return net::error::no_memory;
    }
    return {};
}

tls_socket::error_code tls_socket::fail() noexcept {
    failed_ = true;
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e != 0) {
        return {static_cast<int>(e), net::error::get_ssl_category()};
    }
    // SSL_ERROR_SYSCALL with an empty queue: a memory BIO does not fail, so OpenSSL saw the
    // stream end inside a record.
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
    // SSL_get_error reads the thread's error queue, which other connections' TLS on this
    // thread may have left entries in.
    ERR_clear_error();
    auto* out = static_cast<char*>(room.data());
    std::size_t total = 0;
    while (total < room.size()) {
        std::size_t n = 0;
        const int r = SSL_read_ex(ssl_.get(), out + total, room.size() - total, &n);
        if (r == 1) {
            total += n;
            continue;
        }
        const int why = SSL_get_error(ssl_.get(), r);
        if (why == SSL_ERROR_WANT_READ) {
            break;
        }
        ended_ = why == SSL_ERROR_ZERO_RETURN;
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
    // Appended straight from the BIO's buffer, which is then emptied: one copy per record, no
    // zero-filled room for BIO_read to overwrite.
    char* records = nullptr;
    const long bytes = BIO_get_mem_data(wbio_, &records);
    if (bytes > 0) {
        cipher_out_.append(records, static_cast<std::size_t>(bytes));
        (void)BIO_reset(wbio_);
    }
}

bool tls_socket::encrypt(std::span<const net::const_buffer> buffers, error_code& ec) {
    if (failed_) {
        ec = net::ssl::error::stream_truncated;
        return false;
    }
    ERR_clear_error();
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
