#pragma once
// A real WebSocket client (Beast) for end-to-end tests, over ws:// or wss://, with timeouts on
// every operation so a misbehaving server fails a test instead of hanging it.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace callstream::testing {

struct close_result {
    bool closed = false; // the server sent a close frame
    int code = 0;
    std::string reason;
    std::string error; // how the read ended when there was no close frame
};

class ws_client {
  public:
    // Connects and completes the upgrade; throws on failure. Extra headers go on the upgrade.
    ws_client(std::uint16_t port, bool tls = false, std::string path = "/media-stream",
              std::map<std::string, std::string> headers = {});
    ~ws_client();

    void send_text(std::string_view text);
    void send_binary(std::span<const std::uint8_t> bytes);
    // The next text message, or nullopt on close/timeout (then close_info() tells which).
    std::optional<std::string> read(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Reads until the server closes (discarding messages), and returns the close code.
    close_result wait_close(std::chrono::milliseconds timeout = std::chrono::seconds(5));
    // Runs the client for `wait` (or until `until_count` messages have arrived) while keeping
    // one read outstanding between calls, and returns the messages received. Unlike read(), a
    // quiet server does not end the connection, so tests can step frame by frame.
    std::vector<std::string> pump(std::chrono::milliseconds wait, std::size_t until_count = 1);
    void close(); // clean client-side close
    void abort(); // drop the TCP connection with no close frame (a vanished peer)
    // Shrinks the kernel receive buffer so a client that stops reading backs up quickly.
    void set_receive_buffer(int bytes);
    // True once the kernel send buffer has room for a frame (poll POLLOUT), false if it stays
    // full for `wait`: a peer that stopped reading. The synchronous send_* calls block on a
    // full buffer, so a test that floods a peer which may stop reading asks this first.
    bool writable(std::chrono::milliseconds wait);

    const close_result& close_info() const noexcept { return close_; }

  private:
    template <typename Op> bool run(Op&& op, std::chrono::milliseconds timeout);

    boost::asio::io_context ioc_;
    boost::asio::ssl::context ssl_ctx_{boost::asio::ssl::context::tls_client};
    using plain_ws = boost::beast::websocket::stream<boost::beast::tcp_stream>;
    using tls_ws =
        boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;
    std::unique_ptr<plain_ws> plain_;
    std::unique_ptr<tls_ws> tls_;
    boost::beast::flat_buffer buffer_;
    close_result close_;
    bool pump_pending_ = false;
    std::vector<std::string> pumped_;
    void start_pump_read();
};

// Plain HTTP/1.1 request to the server; returns status, headers and body.
struct http_result {
    int status = 0;
    std::map<std::string, std::string> headers; // lower-case names
    std::string body;
};
http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body = {},
                         const std::map<std::string, std::string>& headers = {}, bool tls = false);

// Twilio Media Streams messages as Twilio sends them (TWILIO.md §1).
namespace twilio {
std::string stream_sid(int n);
std::string connected();
std::string start(const std::string& stream_sid, const std::string& call_sid,
                  const std::map<std::string, std::string>& params = {});
std::string media(const std::string& stream_sid, int sequence, std::span<const std::uint8_t> ulaw,
                  int chunk, int timestamp_ms);
std::string dtmf(const std::string& stream_sid, int sequence, char digit);
std::string mark(const std::string& stream_sid, int sequence, const std::string& name);
std::string stop(const std::string& stream_sid, int sequence);
} // namespace twilio

// The payload bytes of an outbound media message (decoded from base64), or nullopt.
std::optional<std::vector<std::uint8_t>> media_payload(const std::string& json);

} // namespace callstream::testing
