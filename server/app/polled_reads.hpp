#pragma once
// The reads of one socket while its descriptor is in the thread's socket_poller (instead of
// Asio's reactor): what the media transport and the bridge's upstream client share.
//
// A read is asked for with read(room); it completes through Owner::on_read(ec, bytes), at once
// when the socket may hold bytes, else when the poller reports it. After a short read (fewer
// bytes than room: the socket's queue is empty) the next read waits for epoll's next edge, so no
// recv returns EAGAIN (drained_read.hpp, the same rule on Asio's reactor). When the peer's end
// was reported with the last data (EPOLLRDHUP), the read that finds it is posted: it runs after
// the writes the last messages queued this pass (write_batch.hpp), as it would if the end had
// raised an edge of its own.
//
// Everything else the owner does with the socket (a write that must wait for room, the close
// handshake, closing) needs Asio: stop() takes the descriptor out of the set, gives it back to
// the Asio socket, and a read that was waiting is handed to Owner::read_elsewhere(room), which
// starts it on Asio.
//
// Owner: has on_read(const boost::system::error_code&, std::size_t) and
// read_elsewhere(boost::asio::mutable_buffer), and derives from enable_shared_from_this (a
// posted read holds it). Threading: the socket's io_context thread only. Ownership: a member
// of the owner; while polling, the poller holds the owner (start's `keep`), so an owner that
// nothing else holds lives until it stops polling (its connection's end).
// Errors: start() returns false when the socket cannot leave Asio (it is left as it was); a
// failed recv completes the read with its error; eof for the peer's end.

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>

#include "server/app/io_context_of.hpp"
#include "server/app/socket_poller.hpp"

namespace callstream::server {

template <typename Owner> class polled_reads final : public poll_target {
  public:
    explicit polled_reads(Owner& owner) noexcept : owner_(owner) {}
    polled_reads(const polled_reads&) = delete;
    polled_reads& operator=(const polled_reads&) = delete;
    ~polled_reads() {
        if (active()) {
            ::close(fd_); // which takes it out of the set
        }
    }

    // Moves connected `socket`'s descriptor into its thread's poller, with `lines` and `more`
    // prefetched when it is ready (they must outlive the polling); the poller holds `keep` (the
    // owner) until stop(). No read may be pending on `socket`.
    template <typename Socket>
    bool start(Socket& socket, std::shared_ptr<void> keep, const pipeline::warm_lines* lines,
               const pipeline::warm_lines* more = nullptr) {
        auto* io = io_context_of(socket.get_executor());
        boost::system::error_code ec;
        const auto endpoint = socket.local_endpoint(ec);
        if (io == nullptr || ec) {
            return false;
        }
        poller_ = &socket_poller::of(*io);
        io_ = io;
        protocol_ = endpoint.protocol();
        const int fd = socket.release(ec);
        if (ec) {
            return false;
        }
        if (!poller_->add(fd, *this, std::move(keep))) {
            socket.assign(protocol_, fd, ec); // back where it was
            return false;
        }
        fd_ = fd;
        ready_lines = lines;
        more_ready_lines = more;
        rx_ready_ = true; // the first read finds out
        return true;
    }

    // Gives the descriptor back to `socket` (Asio's reactor takes it again); a read that was
    // waiting goes to Owner::read_elsewhere. Does nothing when not polling.
    template <typename Socket> void stop(Socket& socket) {
        if (!active()) {
            return;
        }
        const int fd = fd_;
        fd_ = -1;
        poller_->remove(fd);
        boost::system::error_code ec;
        socket.assign(protocol_, fd, ec);
        if (ec) {
            ::close(fd); // the reactor could not take it: the read below fails on Asio
        }
        if (wanted_ && !in_pump_) {
            wanted_ = false;
            owner_.read_elsewhere(room_);
        }
    }

    bool active() const noexcept { return fd_ >= 0; }
    // The descriptor while active (for writes straight to it), else -1.
    int fd() const noexcept { return fd_; }

    // One read into `room` (while active; one at a time). May complete before it returns,
    // except from inside Owner::on_read, where the read loop takes it on.
    void read(boost::asio::mutable_buffer room) {
        room_ = room;
        wanted_ = true;
        if (rx_ready_ && !in_pump_) {
            pump();
        }
    }

    void on_ready(std::uint32_t events) override {
        if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) {
            peer_end_ = true;
        }
        rx_ready_ = true;
        if (wanted_ && !in_pump_) {
            pump();
        }
    }

  private:
    void pump() {
        in_pump_ = true;
        while (active() && wanted_ && rx_ready_) {
            const ssize_t n = ::recv(fd_, room_.data(), room_.size(), MSG_DONTWAIT);
            boost::system::error_code ec;
            std::size_t bytes = 0;
            if (n > 0) {
                bytes = static_cast<std::size_t>(n);
                rx_ready_ = bytes == room_.size();
            } else if (n == 0) {
                ec = boost::asio::error::eof;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                rx_ready_ = false;
                break;
            } else if (errno == EINTR) {
                continue;
            } else {
                ec.assign(errno, boost::system::system_category());
            }
            wanted_ = false;
            owner_.on_read(ec, bytes);
            if (!rx_ready_ && peer_end_ && active()) {
                read_the_end_later();
                break;
            }
        }
        in_pump_ = false;
        if (!active() && wanted_) {
            wanted_ = false;
            owner_.read_elsewhere(room_); // the owner stopped polling while a read was wanted
        }
    }

    void read_the_end_later() {
        boost::asio::post(*io_, [self = owner_.shared_from_this(), this] {
            rx_ready_ = true;
            if (wanted_ && !in_pump_) {
                pump();
            }
        });
    }

    Owner& owner_;
    int fd_ = -1;
    bool rx_ready_ = false; // an edge came and no read since came back short
    bool peer_end_ = false; // the peer's end was reported: read on until it is seen
    bool in_pump_ = false;
    bool wanted_ = false; // a read is asked for, into room_
    boost::asio::mutable_buffer room_;
    socket_poller* poller_ = nullptr;
    boost::asio::io_context* io_ = nullptr;
    boost::asio::ip::tcp protocol_ = boost::asio::ip::tcp::v4();
};

} // namespace callstream::server
