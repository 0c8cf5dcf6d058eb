// polled_reads over socket_poller on a real loopback TCP connection and a real io_context: reads
// complete as data arrives, the peer's end that comes with the last data is seen after it, a read
// waiting when polling stops goes back to Asio, and the poller's hold on the owner ends only
// after the handler that stopped it.
#include <memory>
#include <optional>
#include <string>
#include <sys/socket.h>
#include <unistd.h>
#include <vector>

#include <boost/asio/basic_stream_socket.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <gtest/gtest.h>

#include "server/app/polled_reads.hpp"
#include "tests/server/loopback_tcp.hpp"

namespace callstream::server {
namespace {

namespace net = boost::asio;
using socket_type = net::basic_stream_socket<net::ip::tcp, net::io_context::executor_type>;

// A loopback TCP connection accepted into `io`: the peer's descriptor and the accepted socket.
struct connection {
    int peer = -1;
    socket_type socket;
    explicit connection(net::io_context& io) : socket(io) {
        const auto [connecting, accepted] = loopback_tcp_pair();
        peer = connecting;
        socket.assign(net::ip::tcp::v4(), accepted);
    }
    ~connection() {
        if (peer >= 0) {
            ::close(peer);
        }
    }
    void send(const std::string& s) const {
        ASSERT_EQ(::send(peer, s.data(), s.size(), 0), static_cast<ssize_t>(s.size()));
    }
};

// Records what polled_reads tells it; reads again after each read while `read_on`.
struct owner : std::enable_shared_from_this<owner> {
    explicit owner(net::io_context& io) : conn(io) {}
    connection conn;
    polled_reads<owner> reads{*this};
    std::vector<char> buffer = std::vector<char>(64);
    std::string got;
    std::optional<boost::system::error_code> ended;
    int elsewhere = 0;
    bool read_on = true;
    bool* destroyed = nullptr;
    ~owner() { // polled_reads closes the descriptor when it is still polled
        if (destroyed != nullptr) {
            *destroyed = true;
        }
    }

    void read() { reads.read(net::buffer(buffer)); }
    void on_read(const boost::system::error_code& ec, std::size_t n) {
        if (ec) {
            ended = ec;
            return;
        }
        got.append(buffer.data(), n);
        if (read_on) {
            read();
        }
    }
    void read_elsewhere(net::mutable_buffer room) {
        ++elsewhere;
        conn.socket.async_read_some(
            room, [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                self->on_read(ec, n);
            });
    }
};

// An owner whose socket is in its thread's poller, which holds the owner too.
std::shared_ptr<owner> polled_owner(net::io_context& io) {
    auto o = std::make_shared<owner>(io);
    EXPECT_TRUE(o->reads.start(o->conn.socket, o, nullptr));
    return o;
}

// Runs `io` until `done` or two seconds pass.
template <typename Done> bool run_until(net::io_context& io, Done done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
        io.run_for(std::chrono::milliseconds(1));
    }
    return done();
}

TEST(polled_reads, reads_complete_as_data_arrives_and_keep_their_order) {
    net::io_context io(1);
    auto o = polled_owner(io);
    EXPECT_TRUE(o->reads.active());
    EXPECT_FALSE(o->conn.socket.is_open()); // out of Asio's reactor while polled
    o->read();
    io.poll();
    EXPECT_EQ(o->got, ""); // nothing sent yet: the read waits
    o->conn.send("first ");
    ASSERT_TRUE(run_until(io, [&] { return o->got == "first "; })) << o->got;
    o->conn.send("second");
    ASSERT_TRUE(run_until(io, [&] { return o->got == "first second"; })) << o->got;
    EXPECT_FALSE(o->ended);
    o->reads.stop(o->conn.socket);
}

TEST(polled_reads, a_read_bigger_than_the_room_is_taken_in_turns_without_a_new_edge) {
    net::io_context io(1);
    auto o = polled_owner(io);
    const std::string big(1000, 'x'); // the room is 64 bytes
    o->conn.send(big);
    o->read();
    ASSERT_TRUE(run_until(io, [&] { return o->got.size() == big.size(); })) << o->got.size();
    EXPECT_EQ(o->got, big);
    o->reads.stop(o->conn.socket);
}

TEST(polled_reads, the_peers_end_with_the_last_data_comes_after_that_data_and_after_the_pass) {
    net::io_context io(1);
    auto o = polled_owner(io);
    o->read();
    o->conn.send("last");
    ASSERT_EQ(::shutdown(o->conn.peer, SHUT_WR), 0);
    ASSERT_TRUE(run_until(io, [&] { return o->ended.has_value(); }));
    EXPECT_EQ(o->got, "last");
    EXPECT_EQ(*o->ended, net::error::eof);
    o->reads.stop(o->conn.socket);
}

TEST(polled_reads, a_read_waiting_when_polling_stops_goes_to_asio_with_its_room) {
    net::io_context io(1);
    auto o = polled_owner(io);
    o->read();
    io.poll();
    o->reads.stop(o->conn.socket);
    EXPECT_FALSE(o->reads.active());
    EXPECT_TRUE(o->conn.socket.is_open()); // back in Asio's hands
    EXPECT_EQ(o->elsewhere, 1);
    o->read_on = false;
    o->conn.send("through asio");
    ASSERT_TRUE(run_until(io, [&] { return o->got == "through asio"; })) << o->got;
}

TEST(polled_reads, the_poller_holds_the_owner_until_after_the_handler_that_stopped_polling) {
    net::io_context io(1);
    bool destroyed = false;
    owner* raw = nullptr;
    {
        auto o = std::make_shared<owner>(io);
        o->destroyed = &destroyed;
        raw = o.get();
        ASSERT_TRUE(o->reads.start(o->conn.socket, o, nullptr));
    }
    io.poll();
    ASSERT_FALSE(destroyed); // only the poller holds it now
    bool alive_after_stop = false;
    net::post(io, [&] {
        // As a session ending inside a batch that may still name it further on.
        raw->reads.stop(raw->conn.socket);
        alive_after_stop = !destroyed;
    });
    io.poll();
    EXPECT_TRUE(alive_after_stop);
    EXPECT_TRUE(destroyed); // released by the posted handler: not leaked
}

TEST(polled_reads, owners_held_only_by_the_poller_are_freed_when_the_context_goes) {
    bool destroyed = false;
    {
        net::io_context io(1);
        auto o = polled_owner(io);
        o->destroyed = &destroyed;
        o->read();
        io.poll();
    }
    EXPECT_TRUE(destroyed);
}

} // namespace
} // namespace callstream::server
