// libFuzzer harness for the WebSocket frame reader: a server-role Beast stream with the
// server's options accepts a fixed upgrade request, then reads the fuzz bytes as client frames;
// every complete text message goes through the Twilio parser and the payload through base64.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/websocket.hpp>
#include <simdjson.h>

#include "codec/base64.hpp"
#include "server/app/config.hpp"
#include "server/app/log.hpp"
#include "server/twilio/media_messages.hpp"

namespace {

using namespace callstream;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace http = beast::http;

http::request<http::string_body> upgrade_request() {
    http::request<http::string_body> req{http::verb::get, "/media-stream", 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    return req;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    server::configure_logging(server::log_level::off, server::log_format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static const auto req = upgrade_request();
    static simdjson::ondemand::parser parser;
    const server::config cfg;
    net::io_context ioc(1);
    beast::test::stream client(ioc);
    websocket::stream<beast::test::stream> ws(ioc);
    ws.next_layer().connect(client);
    ws.next_layer().append({reinterpret_cast<const char*>(data), size});
    client.close(); // after the fuzz bytes the server sees EOF
    ws.read_message_max(cfg.max_message_bytes);
    ws.text(true);
    beast::error_code ec;
    ws.accept(req, ec);
    if (ec) {
        return 0;
    }
    beast::flat_buffer buffer;
    std::vector<std::uint8_t> ulaw;
    for (;;) {
        ws.read(buffer, ec);
        if (ec) {
            break;
        }
        if (ws.got_text()) {
            buffer.prepare(simdjson::SIMDJSON_PADDING);
            const auto bytes = buffer.data();
            const std::string_view text(static_cast<const char*>(bytes.data()), bytes.size());
            server::inbound_message msg;
            pipeline::stream_info start;
            if (!server::parse_inbound(parser, text, text.size() + simdjson::SIMDJSON_PADDING, msg,
                                       start) &&
                msg.event == server::inbound_event::media) {
                ulaw.resize(codec::base64_decoded_max_size(msg.payload.size()));
                std::size_t n = 0;
                (void)codec::base64_decode(msg.payload, ulaw, n);
            }
        }
        buffer.consume(buffer.size());
    }
    return 0;
}
