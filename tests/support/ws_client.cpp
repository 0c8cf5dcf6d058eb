#include "tests/support/ws_client.hpp"

#include <cstdio>
#include <poll.h>
#include <stdexcept>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include "codec/base64.hpp"

namespace callstream::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;

template <typename Op> bool ws_client::run(Op&& op, std::chrono::milliseconds timeout) {
    bool done = false;
    op(done);
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!done && std::chrono::steady_clock::now() < deadline) {
        ioc_.run_one_for(std::chrono::milliseconds(20));
    }
    return done;
}

ws_client::ws_client(std::uint16_t port, bool tls, std::string path,
                     std::map<std::string, std::string> headers) {
    net::ip::tcp::socket socket(ioc_);
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    socket.set_option(net::ip::tcp::no_delay(true));
    auto decorate = [headers](websocket::request_type& req) {
        for (const auto& [name, value] : headers) {
            req.set(name, value);
        }
    };
    const std::string host = "127.0.0.1:" + std::to_string(port);
    if (tls) {
        ssl_ctx_.set_verify_mode(net::ssl::verify_none); // the test certificate is self-signed
        tls_ = std::make_unique<tls_ws>(beast::tcp_stream(std::move(socket)), ssl_ctx_);
        tls_->next_layer().handshake(net::ssl::stream_base::client);
        tls_->set_option(websocket::stream_base::decorator(decorate));
        tls_->handshake(host, path);
        tls_->text(true);
    } else {
        plain_ = std::make_unique<plain_ws>(beast::tcp_stream(std::move(socket)));
        plain_->set_option(websocket::stream_base::decorator(decorate));
        plain_->handshake(host, path);
        plain_->text(true);
    }
}

ws_client::~ws_client() {
    beast::error_code ec;
    if (plain_) {
        beast::get_lowest_layer(*plain_).socket().close(ec);
    }
    if (tls_) {
        beast::get_lowest_layer(*tls_).socket().close(ec);
    }
}

void ws_client::send_text(std::string_view text) {
    if (plain_) {
        plain_->text(true);
        plain_->write(net::buffer(text));
    } else {
        tls_->text(true);
        tls_->write(net::buffer(text));
    }
}

void ws_client::send_binary(std::span<const std::uint8_t> bytes) {
    if (plain_) {
        plain_->binary(true);
        plain_->write(net::buffer(bytes.data(), bytes.size()));
        plain_->text(true);
    } else {
        tls_->binary(true);
        tls_->write(net::buffer(bytes.data(), bytes.size()));
        tls_->text(true);
    }
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds timeout) {
    buffer_.clear();
    beast::error_code result;
    const auto handler = [&](bool& done) {
        auto on_read = [&result, &done](beast::error_code ec, std::size_t) {
            result = ec;
            done = true;
        };
        if (plain_) {
            plain_->async_read(buffer_, on_read);
        } else {
            tls_->async_read(buffer_, on_read);
        }
    };
    if (!run(handler, timeout)) {
        // Cancel the pending read by closing the socket; the client is unusable afterwards.
        abort();
        ioc_.restart();
        ioc_.poll();
        close_.error = "timeout";
        return std::nullopt;
    }
    if (result) {
        if (result == websocket::error::closed) {
            close_.closed = true;
            const auto& reason = plain_ ? plain_->reason() : tls_->reason();
            close_.code = reason.code;
            close_.reason = std::string(reason.reason.data(), reason.reason.size());
        } else {
            close_.error = result.message();
        }
        return std::nullopt;
    }
    return beast::buffers_to_string(buffer_.data());
}

void ws_client::start_pump_read() {
    pump_pending_ = true;
    auto on_read = [this](beast::error_code ec, std::size_t) {
        pump_pending_ = false;
        if (ec) {
            if (ec == websocket::error::closed) {
                close_.closed = true;
                const auto& reason = plain_ ? plain_->reason() : tls_->reason();
                close_.code = reason.code;
                close_.reason = std::string(reason.reason.data(), reason.reason.size());
            } else {
                close_.error = ec.message();
            }
            return;
        }
        pumped_.push_back(beast::buffers_to_string(buffer_.data()));
        buffer_.consume(buffer_.size());
        start_pump_read();
    };
    if (plain_) {
        plain_->async_read(buffer_, on_read);
    } else {
        tls_->async_read(buffer_, on_read);
    }
}

std::vector<std::string> ws_client::pump(std::chrono::milliseconds wait, std::size_t until_count) {
    if (!pump_pending_ && !close_.closed && close_.error.empty()) {
        buffer_.clear();
        start_pump_read();
    }
    ioc_.restart();
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (pumped_.size() < until_count && std::chrono::steady_clock::now() < deadline &&
           (pump_pending_ || !ioc_.stopped())) {
        ioc_.run_one_for(std::chrono::milliseconds(5));
        if (!pump_pending_ && (close_.closed || !close_.error.empty())) {
            break;
        }
    }
    ioc_.poll();
    std::vector<std::string> out;
    out.swap(pumped_);
    return out;
}

close_result ws_client::wait_close(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (!read(left)) {
            break;
        }
    }
    return close_;
}

void ws_client::close() {
    beast::error_code ec;
    if (plain_) {
        plain_->close(websocket::close_code::normal, ec);
    } else {
        tls_->close(websocket::close_code::normal, ec);
    }
}

void ws_client::abort() {
    beast::error_code ec;
    if (plain_) {
        beast::get_lowest_layer(*plain_).socket().close(ec);
    } else {
        beast::get_lowest_layer(*tls_).socket().close(ec);
    }
}

void ws_client::set_receive_buffer(int bytes) {
    auto& socket = plain_ ? beast::get_lowest_layer(*plain_).socket()
                          : beast::get_lowest_layer(*tls_).socket();
    socket.set_option(net::socket_base::receive_buffer_size(bytes));
}

bool ws_client::writable(std::chrono::milliseconds wait) {
    auto& socket = plain_ ? beast::get_lowest_layer(*plain_).socket()
                          : beast::get_lowest_layer(*tls_).socket();
    pollfd fd{socket.native_handle(), POLLOUT, 0};
    return ::poll(&fd, 1, static_cast<int>(wait.count())) == 1 && (fd.revents & POLLOUT) != 0;
}

http_result http_request(std::uint16_t port, const std::string& method, const std::string& target,
                         const std::string& body, const std::map<std::string, std::string>& headers,
                         bool tls) {
    net::io_context ioc;
    net::ip::tcp::socket socket(ioc);
    socket.connect({net::ip::make_address("127.0.0.1"), port});
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    for (const auto& [name, value] : headers) {
        req.set(name, value);
    }
    req.body() = body;
    req.prepare_payload();
    req.keep_alive(false);
    beast::flat_buffer buffer;
    http::response<http::string_body> res;
    if (tls) {
        net::ssl::context ctx(net::ssl::context::tls_client);
        ctx.set_verify_mode(net::ssl::verify_none);
        beast::ssl_stream<net::ip::tcp::socket> stream(std::move(socket), ctx);
        stream.handshake(net::ssl::stream_base::client);
        http::write(stream, req);
        http::read(stream, buffer, res);
    } else {
        http::write(socket, req);
        http::read(socket, buffer, res);
    }
    http_result out;
    out.status = static_cast<int>(res.result_int());
    for (const auto& field : res) {
        std::string name(field.name_string());
        for (auto& c : name) {
            c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        }
        out.headers[name] = std::string(field.value());
    }
    out.body = res.body();
    return out;
}

namespace twilio {

std::string stream_sid(int n) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "MZ%032x", static_cast<unsigned>(n));
    return buf;
}

std::string connected() {
    return R"({"event":"connected","protocol":"Call","version":"1.0.0"})";
}

std::string start(const std::string& stream_sid, const std::string& call_sid,
                  const std::map<std::string, std::string>& params) {
    std::string custom;
    for (const auto& [name, value] : params) {
        custom += (custom.empty() ? "\"" : ",\"") + name + "\":\"" + value + "\"";
    }
    return R"({"event":"start","sequenceNumber":"1","start":{"accountSid":"AC00000000000000000000000000000001","streamSid":")" +
           stream_sid + R"(","callSid":")" + call_sid +
           R"(","tracks":["inbound"],"customParameters":{)" + custom +
           R"(},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},"streamSid":")" +
           stream_sid + "\"}";
}

std::string media(const std::string& stream_sid, int sequence, std::span<const std::uint8_t> ulaw,
                  int chunk, int timestamp_ms) {
    return R"({"event":"media","sequenceNumber":")" + std::to_string(sequence) +
           R"(","media":{"track":"inbound","chunk":")" + std::to_string(chunk) +
           R"(","timestamp":")" + std::to_string(timestamp_ms) + R"(","payload":")" +
           codec::base64_encode(ulaw) + R"("},"streamSid":")" + stream_sid + "\"}";
}

std::string dtmf(const std::string& stream_sid, int sequence, char digit) {
    return R"({"event":"dtmf","streamSid":")" + stream_sid + R"(","sequenceNumber":")" +
           std::to_string(sequence) + R"(","dtmf":{"track":"inbound_track","digit":")" +
           std::string(1, digit) + "\"}}";
}

std::string mark(const std::string& stream_sid, int sequence, const std::string& name) {
    return R"({"event":"mark","sequenceNumber":")" + std::to_string(sequence) +
           R"(","streamSid":")" + stream_sid + R"(","mark":{"name":")" + name + "\"}}";
}

std::string stop(const std::string& stream_sid, int sequence) {
    return R"({"event":"stop","sequenceNumber":")" + std::to_string(sequence) +
           R"(","stop":{"accountSid":"AC00000000000000000000000000000001","callSid":"CA00000000000000000000000000000001"},"streamSid":")" +
           stream_sid + "\"}";
}

} // namespace twilio

std::optional<std::vector<std::uint8_t>> media_payload(const std::string& json) {
    if (json.find(R"("event":"media")") == std::string::npos) {
        return std::nullopt;
    }
    const std::string key = R"("payload":")";
    const auto start = json.find(key);
    if (start == std::string::npos) {
        return std::nullopt;
    }
    const auto end = json.find('"', start + key.size());
    const std::string_view b64(json.data() + start + key.size(), end - start - key.size());
    std::vector<std::uint8_t> out(codec::base64_decoded_max_size(b64.size()));
    std::size_t n = 0;
    if (codec::base64_decode(b64, out, n)) {
        return std::nullopt;
    }
    out.resize(n);
    return out;
}

} // namespace callstream::testing
