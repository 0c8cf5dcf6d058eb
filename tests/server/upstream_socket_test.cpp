// The bridge's upstream WebSocket client against a real WebSocket server (Beast, on a thread of
// its own): when a message leaves (at once, or with the rest of the event loop's pass), what
// queued_bytes() says meanwhile, and how a peer's close frame reaches the events receiver.
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <gtest/gtest.h>

#include "server/bridge/upstream_socket.hpp"

namespace callstream::server::bridge {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// One WebSocket connection served on its own thread: it accepts, answers each message with the
// same text, and after `close_after` messages closes with `code` and `reason`.
class one_connection_server {
  public:
    one_connection_server(int close_after, websocket::close_code code, std::string reason)
        : acceptor_(ioc_, {net::ip::make_address("127.0.0.1"), 0}) {
        thread_ = std::thread([this, close_after, code, reason = std::move(reason)] {
            beast::error_code ec;
            websocket::stream<tcp::socket> ws(acceptor_.accept(ec));
            if (ec) {
                return;
            }
            ws.accept(ec);
            for (int i = 0; !ec && i < close_after; ++i) {
                beast::flat_buffer buffer;
                ws.read(buffer, ec);
                if (!ec) {
                    ws.text(true);
                    ws.write(buffer.data(), ec);
                }
            }
            if (!ec) {
                ws.close({code, reason}, ec);
                beast::flat_buffer drain;
                while (!ec) {
                    ws.read(drain, ec); // until our close is answered
                }
            }
        });
    }
    ~one_connection_server() { thread_.join(); }

    std::string url() const {
        return "ws://127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port()) + "/";
    }

  private:
    net::io_context ioc_;
    tcp::acceptor acceptor_;
    std::thread thread_;
};

// Records every event, in order, as one line each.
class recorder final : public upstream_socket_events {
  public:
    void on_upstream_open() override { lines.emplace_back("open"); }
    void on_upstream_message(bool text, std::string_view data) override {
        lines.push_back(std::string(text ? "text " : "binary ") + std::string(data));
    }
    void on_upstream_close_frame(std::uint16_t code, std::string_view reason) override {
        lines.push_back("close_frame " + std::to_string(code) + " " + std::string(reason));
    }
    void on_upstream_closed(std::string_view label, std::string) override {
        lines.push_back("closed " + std::string(label));
    }
    std::vector<std::string> lines;
};

// Runs `ioc` until `done()` holds or 5 s pass.
template <typename Done> void run_until(net::io_context& ioc, Done done) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!done() && std::chrono::steady_clock::now() < give_up) {
        ioc.run_for(std::chrono::milliseconds(10));
    }
}

// What queued_bytes() reads right after send(), inside one handler of the socket's thread.
std::size_t queued_right_after_send(bool write_at_once) {
    one_connection_server server(1, websocket::close_code::normal, "");
    net::io_context ioc;
    auto events = std::make_shared<recorder>();
    upstream_target target;
    target.url = server.url();
    target.write_at_once = write_at_once;
    auto socket = upstream_socket::create(ioc.get_executor(), target, nullptr, events);
    run_until(ioc, [&] { return socket->open(); });
    EXPECT_TRUE(socket->open());
    std::size_t queued = 0;
    net::post(ioc, [&] {
        socket->send("hello", true);
        queued = socket->queued_bytes();
    });
    run_until(ioc, [&] { return events->lines.size() >= 2; });
    EXPECT_EQ(socket->queued_bytes(), 0U);
    socket->close();
    EXPECT_GE(events->lines.size(), 2U);
    if (events->lines.size() >= 2) {
        EXPECT_EQ(events->lines[1], "text hello"); // written either way
    }
    return queued;
}

TEST(upstream_socket, a_bridge_socket_writes_with_the_rest_of_the_pass) {
    EXPECT_EQ(queued_right_after_send(false), 5U); // waits for the pass's end
}

TEST(upstream_socket, write_at_once_leaves_nothing_queued_when_the_socket_has_room) {
    EXPECT_EQ(queued_right_after_send(true), 0U);
}

TEST(upstream_socket, the_peers_close_frame_arrives_with_its_code_before_the_label) {
    one_connection_server server(1, websocket::close_code::going_away, "draining");
    net::io_context ioc;
    auto events = std::make_shared<recorder>();
    upstream_target target;
    target.url = server.url();
    auto socket = upstream_socket::create(ioc.get_executor(), target, nullptr, events);
    run_until(ioc, [&] { return socket->open(); });
    socket->send("ping me", true);
    run_until(ioc, [&] { return events->lines.size() >= 4; });
    const std::vector<std::string> want{"open", "text ping me", "close_frame 1001 draining",
                                        "closed upstream_closed"};
    EXPECT_EQ(events->lines, want);
}

} // namespace
} // namespace callstream::server::bridge
