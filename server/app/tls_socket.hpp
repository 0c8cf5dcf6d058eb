#pragma once
// A TLS connection read and written through OpenSSL directly over the bare TCP socket: a media
// WebSocket over wss:// takes its session over from Asio's ssl::stream at the upgrade; the
// bridge's upstream over wss:// runs its client handshake here too (client()).
//
// Why: Asio's ssl::stream runs every read and write through a state machine over a BIO pair
// (ciphertext copied from the socket into Asio's buffer, into the pair, into SSL, and back),
// under Beast's tcp_stream and flat_stream, with the recv that returns EAGAIN after every read
// (drained_read.hpp); a wss frame cost 2.2x a ws frame (bench/README.md). Here a read is one
// drained recv of ciphertext and an SSL_read of every complete record it completed; a write
// encrypts its whole gather list (up to 16 KiB of plaintext a record) and sends the records with
// one sendmsg (write_now.hpp), through the reactor only when the socket's send buffer is full.
//
// How: the SSL object gets a reference of ours (SSL_up_ref) and two BIOs of ours in place of
// Asio's pair: the read BIO hands OpenSSL the ciphertext a recv left in our buffer, the write BIO
// appends records to the string the next flush sends. (OpenSSL's memory BIOs cost a copy and a
// memset of their whole buffer per record, and an SSL_read that fails with WANT_READ after every
// read; here a read stops when the received bytes are used up.) The ciphertext the pair still
// held (a client that sent frames before the 101) moves to our buffer, in order. Ciphertext Asio
// had taken from the socket but not yet put in the pair (only possible when a client sent over
// 17 KiB before the 101, which RFC 6455 forbids) is lost with the ssl::stream: the next record
// then fails authentication and the read completes with that TLS error, so no bytes are
// silently dropped. Renegotiation is refused (SSL_OP_NO_RENEGOTIATION); what OpenSSL writes
// while reading (alerts, a TLS 1.3 KeyUpdate reply) goes out ahead of the next write's records,
// as RFC 8446 asks of a KeyUpdate reply.
//
// Calling thread: the socket's io_context thread, for every call and completion. At most one
// read (or handshake) and one write (or flush) in flight; the object must not move while one is.
// Ownership: owns the socket and its reference to the SSL object (adopted or made by client()).
// Errors: a read completes with net::error::eof after the peer's close_notify,
// net::ssl::error::stream_truncated when TCP ends without one, and the OpenSSL error (Asio's ssl
// category) when a record fails; after a TLS failure every later read fails too. Socket errors
// are passed on as they are.

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <type_traits>
#include <utility>

#include <boost/asio/async_result.hpp>
#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl/error.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>
#include <openssl/ssl.h>

#include "server/app/drained_read.hpp"

namespace callstream::server {

class tls_socket {
  public:
    using executor_type = boost::asio::io_context::executor_type;
    using socket_type = boost::asio::basic_stream_socket<boost::asio::ip::tcp, executor_type>;
    using next_layer_type = socket_type;
    using error_code = boost::system::error_code;

    // Takes over `ssl`, whose handshake is done (the caller keeps and frees its own reference),
    // and `socket`, which carries it. Empty, with the reason in `why`, when OpenSSL cannot make
    // the BIOs or Asio's engine still holds output not yet sent (neither happens in practice).
    static std::optional<tls_socket> adopt(SSL* ssl, socket_type socket, std::string& why);
    // A client session from `context` (its verification settings, CA store and options) on
    // `socket`, to connect and then run async_handshake(); empty when OpenSSL has no memory.
    static std::optional<tls_socket> client(SSL_CTX* context, socket_type socket, std::string& why);

    tls_socket(tls_socket&&) noexcept = default;
    tls_socket& operator=(tls_socket&&) noexcept = default;
    ~tls_socket() = default;

    executor_type get_executor() noexcept { return socket_.get_executor(); }
    socket_type& next_layer() noexcept { return socket_; }
    int native_handle() noexcept { return socket_.native_handle(); }
    // The session, for settings before the handshake (SNI, the host name to verify) and for
    // its verify result after it. Owned here.
    SSL* ssl() const noexcept { return ssl_.get(); }

    // The client handshake (a session from client()), once the socket is connected.
    // Token: any Asio completion token for void(error_code); a failed verification completes
    // with OpenSSL's error ("certificate verify failed") and SSL_get_verify_result says why.
    template <typename Token> auto async_handshake(Token&& token) {
        return boost::asio::async_initiate<Token, void(error_code)>(
            [this](auto handler) { this->handshake_step(std::move(handler)); }, token);
    }

    // Reads plaintext into `room` (a mutable_buffer, or a drained_buffer whose warm lines are
    // prefetched before the recv): completes with what every complete record received so far
    // holds, at least one byte unless it fails. Handler: void(error_code, std::size_t).
    template <typename Buffer, typename Handler>
    void async_read_some(const Buffer& room, Handler&& handler);

    // AsyncWriteStream, for the upgrade response: encrypts all of `buffers` (at most 64) and
    // completes once their records are sent. Handler: void(error_code, std::size_t).
    template <typename ConstBufferSequence, typename Handler>
    void async_write_some(const ConstBufferSequence& buffers, Handler&& handler);

    // The hot path's write, in steps: encrypt() turns the whole gather list into records queued
    // here; flush_now() sends what the socket takes at once (true: nothing is left queued);
    // async_flush() sends the rest through the reactor. Handler: void(error_code).
    // encrypt() fails (false, `ec` set) only when OpenSSL does (then nothing more is written).
    bool encrypt(std::span<const boost::asio::const_buffer> buffers, error_code& ec);
    bool flush_now() noexcept;
    template <typename Handler> void async_flush(Handler&& handler);

    // Queues our close_notify, for flush_now() and async_flush() to send (nothing after a TLS
    // failure); reads go on until the peer's, which completes one with eof.
    void close_notify();

  private:
    // What the BIOs read from and write to. On the heap, so that the socket can move while
    // OpenSSL's BIOs point here.
    struct cipher_buffers {
        std::unique_ptr<std::uint8_t[]> in; // received ciphertext, cipher_in_bytes long
        std::size_t in_at = 0;              // the next byte OpenSSL reads
        std::size_t in_end = 0;             // the end of what was received
        std::string out;                    // records OpenSSL wrote since queue_output()
        bool unread() const noexcept { return in_at < in_end; }
    };
    // Detaches our BIOs from the buffers before the reference is dropped: Asio's ssl::stream may
    // hold the session a little longer.
    struct ssl_free {
        void operator()(SSL* ssl) const noexcept;
    };
    // One recv takes up to this much ciphertext: a full record and its header, and more.
    static constexpr std::size_t cipher_in_bytes = 17 * 1024;

    tls_socket(SSL* ssl, socket_type socket, std::unique_ptr<cipher_buffers> io);
    // Our read and write BIOs on `ssl`, over `io`; false when OpenSSL has no memory.
    static bool attach_bios(SSL* ssl, cipher_buffers& io, std::string& why);
    // Where the next recv puts ciphertext: after what OpenSSL has not read yet.
    boost::asio::mutable_buffer cipher_room() noexcept;

    // SSL_read of every complete record received, into `room`; {error, 0} on a failure found
    // before any data (one found after some is kept for the next call).
    std::pair<error_code, std::size_t> decrypt(boost::asio::mutable_buffer room);
    bool has_unread() const noexcept;
    // A read's room: a drained_buffer or a mutable buffer sequence's first buffer (the HTTP
    // reader of the upstream's handshake reads into one buffer at a time).
    template <typename Buffer> static boost::asio::mutable_buffer first_buffer(const Buffer& b) {
        if constexpr (std::is_convertible_v<const Buffer&, boost::asio::mutable_buffer>) {
            return b;
        } else {
            return *boost::asio::buffer_sequence_begin(b);
        }
    }
    // A ciphertext recv's completion: its bytes for the read BIO; the error to report, if any
    // (TCP's end is a truncation: a TLS stream ends with close_notify).
    error_code take_cipher(const error_code& ec, std::size_t bytes) noexcept;
    void queue_output();        // what OpenSSL wrote, onto cipher_out_ (moved when that is empty)
    error_code fail() noexcept; // a fatal TLS error: its code, and no more SSL calls

    template <typename Buffer, typename Handler> void read_socket(Buffer room, Handler&& handler);
    template <typename Handler> void handshake_step(Handler&& handler);
    // SSL_do_handshake on what has arrived: 1 done, 0 wants more from the peer, -1 failed.
    int advance_handshake(error_code& ec);

    socket_type socket_;
    std::unique_ptr<SSL, ssl_free> ssl_;
    std::unique_ptr<cipher_buffers> io_;
    std::string cipher_out_;   // records to send; [sent_, size) not yet sent
    std::size_t sent_ = 0;     // of cipher_out_
    std::string plain_;        // a gather list coalesced into one record
    error_code read_error_;    // found after data that was delivered: the next read's
    bool failed_ = false;      // a fatal TLS error: no more SSL calls but SSL_free
    bool ended_ = false;       // the peer's close_notify was read
    bool maybe_unread_ = true; // records (or an error) may wait: the room was full, or adopted
};

template <typename Buffer, typename Handler>
void tls_socket::async_read_some(const Buffer& room, Handler&& handler) {
    // Records already received (the last read's room was full), or a failure found after the
    // data already delivered: completed without reading the socket.
    if (has_unread()) {
        const auto [ec, bytes] = decrypt(first_buffer(room));
        if (ec || bytes > 0) {
            // Named copies: clang before 16 cannot capture structured bindings.
            boost::asio::post(socket_.get_executor(),
                              [h = std::forward<Handler>(handler), e = ec, n = bytes]() mutable {
                                  std::move(h)(e, n);
                              });
            return;
        }
    }
    read_socket(room, std::forward<Handler>(handler));
}

template <typename Buffer, typename Handler>
void tls_socket::read_socket(Buffer room, Handler&& handler) {
    const boost::asio::mutable_buffer in = cipher_room();
    auto on_cipher = [this, room, h = std::forward<Handler>(handler)](const error_code& ec,
                                                                      std::size_t bytes) mutable {
        if (const auto failed = take_cipher(ec, bytes)) {
            std::move(h)(failed, 0);
            return;
        }
        auto [failure, plain] = decrypt(first_buffer(room));
        if (!failure && plain == 0) {
            read_socket(room, std::move(h)); // part of a record: the rest is still to come
            return;
        }
        std::move(h)(failure, plain);
    };
    if constexpr (std::is_same_v<Buffer, drained_buffer>) {
        socket_.async_read_some(drained_buffer(in, room.warm, room.also), std::move(on_cipher));
    } else {
        socket_.async_read_some(in, std::move(on_cipher));
    }
}

template <typename Handler> void tls_socket::handshake_step(Handler&& handler) {
    error_code ec;
    const int state = advance_handshake(ec);
    if (state < 0) {
        // The alert that tells the peer why goes out before the failure is reported.
        auto report = [h = std::forward<Handler>(handler), ec](const error_code&) mutable {
            std::move(h)(ec);
        };
        if (cipher_out_.empty()) {
            boost::asio::post(socket_.get_executor(),
                              [r = std::move(report)]() mutable { std::move(r)(error_code()); });
        } else {
            async_flush(std::move(report));
        }
        return;
    }
    // What OpenSSL wrote goes out first (the last flight too, once the handshake is done).
    auto sent = [this, done = state == 1,
                 h = std::forward<Handler>(handler)](const error_code& ec) mutable {
        if (ec || done) {
            std::move(h)(ec);
            return;
        }
        socket_.async_read_some(cipher_room(), [this, h = std::move(h)](const error_code& ec,
                                                                        std::size_t bytes) mutable {
            if (const auto failed = take_cipher(ec, bytes)) {
                std::move(h)(failed);
                return;
            }
            handshake_step(std::move(h));
        });
    };
    if (cipher_out_.empty()) {
        if (state == 1) {
            boost::asio::post(socket_.get_executor(),
                              [s = std::move(sent)]() mutable { std::move(s)(error_code()); });
        } else {
            sent(error_code()); // starts the read: completes later, not here
        }
        return;
    }
    async_flush(std::move(sent));
}

template <typename ConstBufferSequence, typename Handler>
void tls_socket::async_write_some(const ConstBufferSequence& buffers, Handler&& handler) {
    std::array<boost::asio::const_buffer, 64> list;
    std::size_t n = 0;
    std::size_t bytes = 0;
    for (auto it = boost::asio::buffer_sequence_begin(buffers);
         it != boost::asio::buffer_sequence_end(buffers) && n < list.size(); ++it) {
        list[n] = boost::asio::const_buffer(*it);
        bytes += list[n++].size();
    }
    error_code ec;
    if (!encrypt(std::span(list.data(), n), ec)) {
        boost::asio::post(socket_.get_executor(), [h = std::forward<Handler>(handler),
                                                   ec]() mutable { std::move(h)(ec, 0); });
        return;
    }
    async_flush([h = std::forward<Handler>(handler), bytes](const error_code& ec) mutable {
        std::move(h)(ec, ec ? 0 : bytes);
    });
}

template <typename Handler> void tls_socket::async_flush(Handler&& handler) {
    boost::asio::async_write(
        socket_, boost::asio::buffer(cipher_out_.data() + sent_, cipher_out_.size() - sent_),
        [this, h = std::forward<Handler>(handler)](const error_code& ec, std::size_t) mutable {
            cipher_out_.clear();
            sent_ = 0;
            std::move(h)(ec);
        });
}

} // namespace callstream::server
