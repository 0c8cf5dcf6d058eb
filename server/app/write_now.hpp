#pragma once
// A gather write tried at once with one non-blocking sendmsg, before (instead of) Asio's
// asynchronous write.
//
// Why: net::async_write on an idle socket also writes at once ("speculatively"), but only after
// it has registered the operation with the reactor: it locks the socket's descriptor_state,
// allocates the operation, and, written or not, runs the handler later through the scheduler's
// queue. With hundreds of calls on a thread the descriptor_state is out of the caches by the
// time a call writes again; perf put 80 % of epoll_reactor::start_op on the load of its mutex
// flag, about 0.5 µs of a bridged frame's 27 (a bridged frame writes twice: to the upstream and
// to the caller). Writing directly touches only the descriptor and our buffers; the reactor is
// used when the socket's send buffer is full, as before.
//
// Use: the caller builds its gather list, calls write_now(), and when it returns less than the
// whole, hands unwritten() of the list to net::async_write. An error (a peer that went away)
// writes nothing and returns 0: the asynchronous write that follows meets the same error and
// reports it through the usual path, so error handling stays in one place.
//
// Calling thread: the socket's own (no write of the socket's may be in flight).
// Ownership: borrows the buffers for the call. Errors: none thrown; see above.
// Plain TCP sockets only; tls_socket.hpp sends its records through write_now().

#include <cstddef>
#include <span>
#include <type_traits>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace callstream::server {

// Bytes of `buffers` the socket `fd` took (0 when its send buffer is full or on any error);
// never blocks and never raises SIGPIPE. At most 64 buffers are written (the rest is left).
std::size_t write_now(int fd, std::span<const boost::asio::const_buffer> buffers) noexcept;

// `buffers` without its first `written` bytes: whole buffers dropped from the front, the first
// remaining one advanced in place. `written` must not exceed the total.
std::span<boost::asio::const_buffer> unwritten(std::span<boost::asio::const_buffer> buffers,
                                               std::size_t written) noexcept;

template <typename Stream> struct is_tcp_socket : std::false_type {};
template <typename Executor>
struct is_tcp_socket<boost::asio::basic_stream_socket<boost::asio::ip::tcp, Executor>>
    : std::true_type {};

// Writes what the socket takes of `buffers` at once and returns the rest, for net::async_write
// (empty: all written). A stream that is not a plain TCP socket writes nothing here.
template <typename Stream>
std::span<boost::asio::const_buffer>
write_what_fits(Stream& stream, std::span<boost::asio::const_buffer> buffers) noexcept {
    if constexpr (is_tcp_socket<Stream>::value) {
        return unwritten(buffers, write_now(stream.native_handle(), buffers));
    } else {
        return buffers;
    }
}

} // namespace callstream::server
