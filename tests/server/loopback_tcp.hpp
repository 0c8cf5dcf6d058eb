#pragma once
// A connected loopback TCP pair for tests of code that works on real sockets: {connecting side,
// accepted side}, blocking descriptors the caller closes. Failures are gtest failures.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#include <utility>

#include <gtest/gtest.h>

namespace callstream::server {

inline std::pair<int, int> loopback_tcp_pair() {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    EXPECT_EQ(::listen(listener, 1), 0);
    EXPECT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const int connecting = ::socket(AF_INET, SOCK_STREAM, 0);
    EXPECT_EQ(::connect(connecting, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    const int accepted = ::accept(listener, nullptr, nullptr);
    ::close(listener);
    return {connecting, accepted};
}

} // namespace callstream::server
