#include "server/app/epoll_set.hpp"

#include <cerrno>
#include <sys/epoll.h>
#include <unistd.h>

#include "server/app/log.hpp"

namespace callstream::server {

void open_epoll_set(boost::asio::posix::stream_descriptor& set, std::string_view failure_event) {
    const int fd = ::epoll_create1(EPOLL_CLOEXEC);
    if (fd < 0) {
        log(log_level::warn, failure_event, {{"errno", errno}});
        return;
    }
    boost::system::error_code ec;
    set.assign(fd, ec);
    if (ec) {
        log(log_level::warn, failure_event, {{"error", ec.message()}});
        ::close(fd);
    }
}

} // namespace callstream::server
