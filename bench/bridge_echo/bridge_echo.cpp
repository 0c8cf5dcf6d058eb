// callstream-bridge-echo: the cheap upstream of bench/compare --bridge. A WebSocket server that
// answers callstream's `twilio` bridge protocol as a bot that only echoes would: every `media`
// message goes back unchanged (callstream reads it as the caller-bound media it is), everything
// else (connected, start, mark, dtmf, stop) is read and dropped. No JSON parse, no base64, one
// thread, callback handlers on the concrete io_context executor, one read and at most one write
// in flight per socket: the upstream's own cost stays small beside callstream's.
//
//   callstream-bridge-echo PORT        (127.0.0.1; PORT 0 picks one; prints "listening on N")
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace ws = beast::websocket;
using tcp = net::ip::tcp;
using socket_type = net::basic_stream_socket<tcp, net::io_context::executor_type>;

// How callstream's Twilio writer starts every media message (server/bridge/twilio_protocol.cpp).
constexpr std::string_view media_prefix = R"({"event":"media")";

class session : public std::enable_shared_from_this<session> {
  public:
    explicit session(socket_type socket) : ws_(std::move(socket)) {}

    void start() {
        ws_.read_message_max(1 << 20);
        ws_.auto_fragment(false);
        ws_.async_accept([self = shared_from_this()](beast::error_code ec) {
            if (!ec)
                self->read();
        });
    }

  private:
    void read() {
        buffer_.clear();
        ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (ec)
                return; // closed or failed: the session ends with its last handler
            self->on_message();
        });
    }

    void on_message() {
        auto data = buffer_.cdata();
        std::string_view text(static_cast<const char*>(data.data()), data.size());
        if (!ws_.got_text() || !text.starts_with(media_prefix)) {
            read();
            return;
        }
        ws_.text(true);
        ws_.async_write(data, [self = shared_from_this()](beast::error_code ec, std::size_t) {
            if (!ec)
                self->read();
        });
    }

    ws::stream<socket_type> ws_;
    beast::flat_buffer buffer_;
};

class listener {
  public:
    listener(net::io_context& io, unsigned short port)
        : io_(io), acceptor_(io, {net::ip::make_address("127.0.0.1"), port}) {}

    unsigned short port() const { return acceptor_.local_endpoint().port(); }

    void accept() {
        acceptor_.async_accept(io_.get_executor(), [this](beast::error_code ec, socket_type s) {
            if (!ec) {
                s.set_option(tcp::no_delay(true));
                std::make_shared<session>(std::move(s))->start();
            }
            accept();
        });
    }

  private:
    net::io_context& io_;
    net::basic_socket_acceptor<tcp, net::io_context::executor_type> acceptor_;
};

} // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: callstream-bridge-echo PORT\n");
        return 2;
    }
    net::io_context io{1};
    listener l(io, static_cast<unsigned short>(std::atoi(argv[1])));
    l.accept();
    net::signal_set stop(io, SIGINT, SIGTERM);
    stop.async_wait([&io](beast::error_code, int) { io.stop(); });
    std::printf("callstream-bridge-echo listening on %u\n", l.port());
    std::fflush(stdout);
    io.run();
    return 0;
}
