#pragma once
// A network thread's own epoll set for the sockets of live plain-TCP media streams: their reads
// bypass Asio's reactor while the stream is live.
//
// Why: through Asio, each frame follows a chain of dependent loads before the first byte of it
// is read: epoll's event names the socket's descriptor_state, which names the queued read
// operation, whose completion is queued to the scheduler, which calls the handler, which reaches
// the session. With hundreds of streams on a thread, 20 ms pass between two frames of one
// stream, so each link is a cache miss that waits for the one before (bench/README.md, "base64
// without tables", measured at 7.5 % + 4.9 % of the server's samples). Here epoll's event names
// the stream itself (poll_target), and every stream that epoll returns at once has its lines
// prefetched (pipeline/warm_lines.hpp) before the first is handled, so their misses overlap.
//
// How: the set is edge-triggered and asks for data and the peer's end (EPOLLIN | EPOLLRDHUP).
// Its own descriptor waits in Asio's reactor like any socket, and is "read" with epoll_wait(0)
// (one system call more per pass of the thread, shared by every stream ready in that pass). A
// target reads its socket itself when told it is ready, until a read comes back short (the queue is
// empty; epoll raises a new edge for new data). Everything else a stream does (timers, a write the
// socket cannot take at once, the close handshake, TLS) stays on Asio: the stream takes its
// descriptor out of the set and back into an Asio socket first (websocket_transport.cpp).
//
// One set per io_context (an Asio service, created on first use, destroyed with the context).
// Threading: the context's own thread only. Ownership: the set holds, for each descriptor, the
// keep-alive its target gave add() (the target's owner), and lets it go through a posted handler
// after remove(): a target is never destroyed while a batch that may name it is being handled.
// At the context's shutdown the keep-alives are dropped (owners that hold themselves through
// the set are freed, not leaked).
// Errors: add() returns false when the set cannot take the descriptor (the stream then stays on
// Asio's reactor); nothing is thrown.

#include <array>
#include <cstdint>
#include <memory>
#include <sys/epoll.h>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>

#include "pipeline/warm_lines.hpp"

namespace callstream::server {

// What the set calls when a descriptor is ready.
class poll_target {
  public:
    // Epoll reported `events` (EPOLLIN, EPOLLRDHUP, EPOLLHUP, EPOLLERR) for the target's socket.
    virtual void on_ready(std::uint32_t events) = 0;

    // The lines the target's next frame will touch, prefetched when it is ready (null: none).
    // Read only by the set, when epoll reports the target.
    const pipeline::warm_lines* ready_lines = nullptr;
    const pipeline::warm_lines* more_ready_lines = nullptr;

  protected:
    ~poll_target() = default;
};

class socket_poller final : public boost::asio::execution_context::service {
  public:
    static inline boost::asio::execution_context::id id;

    // The set of `context` (looking it up takes a lock: do it once per stream).
    static socket_poller& of(boost::asio::io_context& context);
    explicit socket_poller(boost::asio::execution_context& context);

    // Puts `fd` (a connected stream socket no longer in Asio's reactor) in the set for
    // `target`, holding `keep` (what keeps the target alive) until remove(fd). An edge is
    // raised at once when the socket already holds data.
    bool add(int fd, poll_target& target, std::shared_ptr<void> keep);
    // Takes `fd` out of the set (before it goes back to Asio or is closed); its keep-alive is
    // released after the handler running now.
    void remove(int fd);

  private:
    void shutdown() override;
    static constexpr int max_events = 64;

    void arm();
    void handle(int n);

    boost::asio::io_context& context_;
    boost::asio::posix::stream_descriptor epoll_; // the set's epoll descriptor, in Asio's reactor
    std::unordered_map<int, std::shared_ptr<void>> held_; // by descriptor
    bool armed_ = false;
    std::array<epoll_event, max_events> events_{}; // the batch being handled
};

} // namespace callstream::server
