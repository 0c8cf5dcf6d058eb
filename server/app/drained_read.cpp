#include "server/app/drained_read.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>

#include "server/app/epoll_set.hpp"

namespace callstream::server {

peer_end_watch& peer_end_watch::of(boost::asio::io_context& context) {
    return boost::asio::use_service<peer_end_watch>(context);
}

// Only of() creates the service, always for an io_context.
peer_end_watch::peer_end_watch(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context),
      epoll_(static_cast<boost::asio::io_context&>(context)) {
    open_epoll_set(epoll_, "peer_end_watch_failed");
}

void peer_end_watch::shutdown() {
    boost::system::error_code ignored;
    epoll_.close(ignored);
}

bool peer_end_watch::watch(int fd) noexcept {
    if (!epoll_.is_open()) {
        return false;
    }
    // On the peer's end alone (EPOLLERR and EPOLLHUP are always reported): data and write-space
    // wake-ups do not match, so a busy socket never makes this set ready. One-shot: the SHUT_RD
    // that answers the end wakes the socket again, and would report it again for ever.
    epoll_event ev{};
    ev.events = EPOLLRDHUP | EPOLLET | EPOLLONESHOT;
    ev.data.fd = fd;
    if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        return false;
    }
    arm();
    return true;
}

void peer_end_watch::arm() {
    if (armed_) {
        return;
    }
    armed_ = true;
    epoll_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                      [this](const boost::system::error_code& ec) {
                          armed_ = false;
                          if (!ec) {
                              on_ready();
                          }
                      });
}

// Each socket whose peer ended gets SHUT_RD: its wake-up is the edge Asio's reactor needs to
// perform (or allow) the read that finds the end. The events are handled as they are taken, with
// no other code between, so each descriptor is still the watched socket (a closed one leaves the
// set when it closes, and this thread is the only one that closes them).
void peer_end_watch::on_ready() {
    std::array<epoll_event, 64> events{};
    for (;;) {
        const int n =
            ::epoll_wait(epoll_.native_handle(), events.data(), static_cast<int>(events.size()), 0);
        if (n <= 0) {
            break;
        }
        for (int i = 0; i < n; ++i) {
            ::shutdown(events[static_cast<std::size_t>(i)].data.fd, SHUT_RD);
        }
        if (n < static_cast<int>(events.size())) {
            break;
        }
    }
    arm();
}

} // namespace callstream::server
