// libFuzzer harness for the HTTP request path: bytes -> Beast's request parser (with the
// server's header and body limits) -> form decoding of query and body -> the router with every
// route the server registers (run on an io_context, as a network thread would).
//
// The context is configured as a deployed server is (an API token, a public URL, Twilio
// credentials), so the bearer-protected handlers (/make-call, /calls/{sid}/..., /streams/...)
// are reached; the seeds carry "Authorization: Bearer secret". The Twilio REST base points at
// a loopback port this process holds bound but never listens on: a request that passes
// validation gets its connection refused at once, so the REST client's error path runs and
// nothing leaves the machine.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http.hpp>

#include "server/app/log.hpp"
#include "server/app/route_table.hpp"
#include "server/app/server_context.hpp"
#include "server/http/form.hpp"
#include "server/http/router.hpp"

namespace {

using namespace callstream::server;

// Bound, never listening: connecting to it is refused (RST) without a timeout.
std::uint16_t refusing_port() {
    static net::io_context ioc;
    static net::ip::tcp::socket socket = [] {
        net::ip::tcp::socket s(ioc);
        s.open(net::ip::tcp::v4());
        s.bind({net::ip::make_address_v4("127.0.0.1"), 0});
        return s;
    }();
    return socket.local_endpoint().port();
}

server_context& context() {
    static const std::unique_ptr<server_context> ctx = [] {
        auto c = std::make_unique<server_context>();
        c->cfg.api_token = "secret";
        c->cfg.public_url = "https://fuzz.example";
        c->cfg.account_sid = "AC00000000000000000000000000000000";
        c->cfg.auth_token = "fuzz-auth-token";
        c->cfg.twilio_from = "+15005550006";
        c->cfg.twilio_api_base = "https://127.0.0.1:" + std::to_string(refusing_port());
        c->cfg.twilio_timeout = std::chrono::milliseconds(200);
        // Unsigned webhooks stay accepted, so /twiml and the status callback are fuzzed past
        // the signature check (which a fuzzer could not forge anyway).
        c->cfg.verify_signatures = false;
        c->routes = std::make_shared<router>();
        add_all_routes(*c);
        return c;
    }();
    return *ctx;
}

} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    configure_logging(log_level::off, log_format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto& ctx = context();
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(ctx.cfg.http_header_bytes));
    parser.body_limit(ctx.cfg.http_body_bytes);
    parser.eager(true);
    beast::error_code ec;
    std::string_view rest(reinterpret_cast<const char*>(data), size);
    // Feed in two pieces to exercise the parser's resumption as a socket read would.
    const std::size_t split = rest.size() / 2;
    for (std::string_view piece : {rest.substr(0, split), rest.substr(split)}) {
        while (!piece.empty() && !parser.is_done()) {
            const auto used = parser.put(net::buffer(piece.data(), piece.size()), ec);
            if (ec == http::error::need_more) {
                ec = {};
                break;
            }
            if (ec) {
                return 0;
            }
            piece.remove_prefix(used);
        }
    }
    if (!parser.is_done()) {
        parser.put_eof(ec);
        if (ec || !parser.is_done()) {
            return 0;
        }
    }
    const http_request req = parser.release();
    request_context rc{req, false, "fuzz", ctx, {}};
    (void)parse_form(rc.query());
    (void)parse_form(req.body());
    (void)ctx.public_base(req, false);
    net::io_context ioc(1);
    net::co_spawn(
        ioc,
        [&rc]() -> net::awaitable<void> {
            const http_response res = co_await rc.server.routes->dispatch(rc);
            (void)res;
        },
        net::detached);
    ioc.run();
    return 0;
}
