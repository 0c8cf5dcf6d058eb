#include "server/app/write_now.hpp"

#include <algorithm>
#include <array>
#include <sys/socket.h>
#include <sys/uio.h>

namespace callstream::server {

namespace {
constexpr std::size_t max_iov = 64; // as Asio's own gather writes (IOV_MAX is 1024)
}

std::size_t write_now(int fd, std::span<const boost::asio::const_buffer> buffers) noexcept {
    std::array<iovec, max_iov> iov; // only the first n are set and read: no 1 KiB fill per write
    const std::size_t n = std::min(buffers.size(), max_iov);
    for (std::size_t i = 0; i < n; ++i) {
        iov[i].iov_base = const_cast<void*>(buffers[i].data()); // sendmsg does not write it
        iov[i].iov_len = buffers[i].size();
    }
    msghdr msg{};
    msg.msg_iov = iov.data();
    msg.msg_iovlen = n;
    const ssize_t sent = ::sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    return sent > 0 ? static_cast<std::size_t>(sent) : 0;
}

std::span<boost::asio::const_buffer> unwritten(std::span<boost::asio::const_buffer> buffers,
                                               std::size_t written) noexcept {
    std::size_t first = 0;
    while (first < buffers.size() && written >= buffers[first].size()) {
        written -= buffers[first].size();
        ++first;
    }
    auto rest = buffers.subspan(first);
    if (!rest.empty()) {
        rest.front() += written;
    }
    return rest;
}

} // namespace callstream::server
