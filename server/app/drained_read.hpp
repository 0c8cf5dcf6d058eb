#pragma once
// A receive buffer that tells Asio's reactor when a read left the socket empty, so the next
// read waits for epoll instead of first trying a recv that returns EAGAIN.
//
// Why: Asio's epoll reactor registers sockets edge-triggered and, after every completed read,
// tries the next read at once ("speculatively"). It stops speculating only when a read returns
// 0 bytes, so a socket that gets one message per 20 ms costs a second recv per message, which
// fails with EAGAIN (1 of callstream's 3.3 syscalls per echoed frame, 2 of a bridged frame's).
// A read that returns fewer bytes than it asked for has emptied the socket's receive queue of
// data at that moment; data that arrives later raises a new epoll edge, which re-enables the
// speculative read. That is what nginx does for its edge-triggered reads (ngx_unix_recv).
//
// The exception is the peer's end: a FIN (or RST) that arrived with the last data, in the same
// edge, is not seen by the short read that took the data, and raises no later edge, so the
// session would wait for a read that never completes (a caller's last frame and its FIN often
// come in one segment). nginx knows of it from EPOLLRDHUP; Asio does not ask epoll for that.
// So every socket read this way is also watched by its thread's peer_end_watch, an epoll set of
// its own that asks for EPOLLRDHUP alone: on the peer's FIN or RST it shuts the socket's
// receive side (SHUT_RD, which on Linux keeps what is queued readable), whose wake-up is a new
// edge for Asio's reactor, and the next read finds the end. Each socket is reported once
// (EPOLLONESHOT: the SHUT_RD wakes it again). It costs one epoll_ctl per connection and nothing
// per frame: data wake-ups do not match its event mask.
//
// How: reading into a `drained_buffer` (instead of a mutable_buffer) picks the specialisation of
// Asio's receive operation below, whose perform step reports a short read as
// done_and_exhausted, the status Asio already uses for a 0-byte read. It is a specialisation of
// an Asio detail template for Boost 1.81's epoll reactor (Debian 12); a Boost whose operation
// differs fails to compile here rather than behaving differently.
//
// Use: stream sockets only (TCP), one buffer, through drained_reads (which watches the socket
// first). A media WebSocket over TLS reads its ciphertext this way too (tls_socket.hpp).
// Calling thread: the socket's io_context thread. Ownership: the watch holds no reference to
// the socket (closing the descriptor removes it from the watch's set). Errors: a watch that
// cannot be set up (no epoll descriptor left) leaves drained_reads on ordinary buffers.

#include <array>
#include <cstddef>
#include <utility>

#include <boost/asio/buffer.hpp>
#include <boost/asio/socket_base.hpp>
// After socket_base.hpp: the operation header uses it without including it.
#include <boost/asio/detail/reactive_socket_recv_op.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/version.hpp>

#include "pipeline/warm_lines.hpp"
#include "server/app/io_context_of.hpp"

static_assert(BOOST_VERSION / 100 == 1081,
              "drained_read.hpp specialises Boost 1.81's reactive_socket_recv_op_base; check "
              "that the reactor's speculative-read rules are unchanged before moving on");

namespace callstream::server {

struct drained_buffer : boost::asio::mutable_buffer {
    explicit drained_buffer(boost::asio::mutable_buffer b,
                            const pipeline::warm_lines* warm = nullptr,
                            const pipeline::warm_lines* also = nullptr) noexcept
        : mutable_buffer(b), warm(warm), also(also) {}
    // Prefetched just before the recv (pipeline/warm_lines.hpp); null: nothing. Must outlive
    // the read.
    const pipeline::warm_lines* warm;
    const pipeline::warm_lines* also;
};

// One per io_context (an Asio service): the epoll set that sees a watched socket's peer end.
class peer_end_watch final : public boost::asio::execution_context::service {
  public:
    static inline boost::asio::execution_context::id id;

    static peer_end_watch& of(boost::asio::io_context& context);
    explicit peer_end_watch(boost::asio::execution_context& context);

    // Watches `fd` until it is closed; false when it cannot.
    bool watch(int fd) noexcept;

  private:
    void shutdown() override;
    void arm();
    void on_ready();

    boost::asio::posix::stream_descriptor epoll_; // the set's epoll descriptor, in Asio's reactor
    bool armed_ = false;
};

// A socket's reads: into a drained_buffer once watch() has put the socket on its thread's
// peer_end_watch, into the plain buffer otherwise (a watch that could not be set up).
class drained_reads {
  public:
    // After the socket is connected (it has its descriptor), on its io_context's thread.
    template <typename Socket> void watch(Socket& socket) {
        auto* io = io_context_of(socket.get_executor());
        on_ = io != nullptr && peer_end_watch::of(*io).watch(socket.native_handle());
    }

    // `warm`, `also`: the lines the handler will touch, prefetched before the recv (drained
    // reads only); they must outlive the read.
    template <typename Stream, typename Handler>
    void async_read_some(Stream& stream, boost::asio::mutable_buffer room, Handler&& handler,
                         const pipeline::warm_lines* warm = nullptr,
                         const pipeline::warm_lines* also = nullptr) {
        if (on_) {
            stream.async_read_some(drained_buffer(room, warm, also),
                                   std::forward<Handler>(handler));
        } else {
            stream.async_read_some(room, std::forward<Handler>(handler));
        }
    }

  private:
    bool on_ = false;
};

} // namespace callstream::server

namespace boost::asio::detail {

template <>
class reactive_socket_recv_op_base<callstream::server::drained_buffer> : public reactor_op {
  public:
    reactive_socket_recv_op_base(const boost::system::error_code& success_ec, socket_type socket,
                                 socket_ops::state_type state,
                                 const callstream::server::drained_buffer& buffer,
                                 socket_base::message_flags flags, func_type complete_func)
        : reactor_op(success_ec, &reactive_socket_recv_op_base::do_perform, complete_func),
          socket_(socket), state_(state), buffer_(buffer), flags_(flags) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<reactive_socket_recv_op_base*>(base);
        const bool stream = (o->state_ & socket_ops::stream_oriented) != 0;
        // Lands while the kernel copies the data in.
        if (o->buffer_.warm != nullptr) {
            o->buffer_.warm->prefetch();
        }
        if (o->buffer_.also != nullptr) {
            o->buffer_.also->prefetch();
        }
        if (!socket_ops::non_blocking_recv1(o->socket_, o->buffer_.data(), o->buffer_.size(),
                                            o->flags_, stream, o->ec_, o->bytes_transferred_)) {
            return not_done; // EAGAIN: wait for the socket's next edge
        }
        // 0 bytes (the peer's end, or an error) or a short read: the socket is empty now.
        if (stream && o->bytes_transferred_ < o->buffer_.size()) {
            return done_and_exhausted;
        }
        return done;
    }

  private:
    socket_type socket_;
    socket_ops::state_type state_;
    callstream::server::drained_buffer buffer_;
    socket_base::message_flags flags_;
};

} // namespace boost::asio::detail
