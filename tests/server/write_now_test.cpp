// write_now on a real connected TCP pair: what it writes, that it never blocks on a full socket,
// and that unwritten() leaves exactly the bytes still to go.
#include <array>
#include <cerrno>
#include <cstring>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string>
#include <sys/socket.h>
#include <tuple>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "server/app/write_now.hpp"
#include "tests/server/loopback_tcp.hpp"

namespace callstream::server {
namespace {

namespace net = boost::asio;

// A loopback TCP connection: {writer, reader}, both closed by the destructor.
struct tcp_pair {
    int writer = -1;
    int reader = -1;
    tcp_pair() { std::tie(writer, reader) = loopback_tcp_pair(); }
    ~tcp_pair() {
        ::close(writer);
        ::close(reader);
    }
    std::string read_some(std::size_t at_most) const {
        std::string out(at_most, '\0');
        const ssize_t n = ::recv(reader, out.data(), out.size(), MSG_DONTWAIT);
        out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
        return out;
    }
};

TEST(write_now, writes_a_gather_list_in_order_when_the_socket_has_room) {
    tcp_pair pair;
    const std::string a = "header", b = "payload", c = "more";
    std::array<net::const_buffer, 3> list{net::buffer(a), net::buffer(b), net::buffer(c)};
    EXPECT_EQ(write_now(pair.writer, list), a.size() + b.size() + c.size());
    std::string got;
    while (got.size() < 17) {
        got += pair.read_some(64);
    }
    EXPECT_EQ(got, "headerpayloadmore");
}

TEST(write_now, returns_zero_without_blocking_on_a_full_socket_and_a_closed_one) {
    tcp_pair pair;
    const int small = 4096;
    ::setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    ::setsockopt(pair.reader, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    const std::vector<char> block(64 * 1024, 'x');
    std::array<net::const_buffer, 1> list{net::buffer(block)};
    std::size_t total = 0;
    std::size_t last = 1;
    for (int i = 0; i < 1000 && last != 0; ++i) { // a peer that never reads fills both buffers
        last = write_now(pair.writer, list);
        total += last;
    }
    EXPECT_EQ(last, 0U);
    EXPECT_GT(total, 0U);
    ::close(pair.writer);
    pair.writer = ::socket(AF_INET, SOCK_STREAM, 0); // never connected: sendmsg fails
    EXPECT_EQ(write_now(pair.writer, list), 0U);
}

TEST(write_now, unwritten_drops_whole_buffers_and_advances_the_first_partial_one) {
    const std::string a = "0123", b = "456789", c = "ab";
    std::array<net::const_buffer, 3> list{net::buffer(a), net::buffer(b), net::buffer(c)};
    auto rest = unwritten(list, 0);
    EXPECT_EQ(rest.size(), 3U);
    rest = unwritten(list, 6); // all of a, two bytes of b
    ASSERT_EQ(rest.size(), 2U);
    EXPECT_EQ(std::string(static_cast<const char*>(rest[0].data()), rest[0].size()), "6789");
    EXPECT_EQ(std::string(static_cast<const char*>(rest[1].data()), rest[1].size()), "ab");
    EXPECT_TRUE(unwritten(rest, 6).empty());
}

TEST(write_now, a_partial_write_then_the_rest_delivers_every_byte_once) {
    tcp_pair pair;
    const int small = 4096;
    ::setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    std::vector<char> a(48 * 1024), b(48 * 1024);
    for (std::size_t i = 0; i < a.size(); ++i) {
        a[i] = static_cast<char>(i * 7);
        b[i] = static_cast<char>(i * 13);
    }
    std::array<net::const_buffer, 2> list{net::buffer(a), net::buffer(b)};
    std::span<net::const_buffer> rest(list);
    std::string got;
    std::size_t writes = 0;
    while (!rest.empty()) {
        const std::size_t sent = write_now(pair.writer, rest);
        writes += sent > 0 ? 1 : 0;
        rest = unwritten(rest, sent);
        got += pair.read_some(256 * 1024);
    }
    while (got.size() < a.size() + b.size()) {
        got += pair.read_some(256 * 1024);
    }
    EXPECT_GT(writes, 1U) << "the small send buffer should have split the list";
    EXPECT_EQ(got, std::string(a.begin(), a.end()) + std::string(b.begin(), b.end()));
}

} // namespace
} // namespace callstream::server
