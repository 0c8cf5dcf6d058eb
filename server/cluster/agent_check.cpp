#include "server/cluster/agent_check.hpp"

#include <algorithm>
#include <memory>
#include <stdexcept>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {
namespace net = boost::asio;

std::string agent_reply_line(bool draining, std::size_t active_streams, std::size_t capacity) {
    if (draining) {
        return "drain\n";
    }
    const std::size_t cap = std::max<std::size_t>(capacity, 1);
    const std::size_t free = cap > active_streams ? cap - active_streams : 0;
    const std::size_t weight = std::clamp<std::size_t>(free * 100 / cap, 1, 100);
    // "ready" undoes a "drain" this agent said before the instance restarted (only the agent
    // can undo what the agent set); "up" undoes a failed health check's DOWN.
    return "up ready " + std::to_string(weight) + "% maxconn:" + std::to_string(cap) + "\n";
}

agent_check::agent_check(net::any_io_executor executor, const std::string& host, std::uint16_t port,
                         std::function<std::string()> reply)
    : acceptor_(executor), reply_(std::move(reply)) {
    boost::system::error_code ec;
    const auto address = net::ip::make_address(host, ec);
    const net::ip::tcp::endpoint endpoint{ec ? net::ip::address_v4::any() : address, port};
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(64, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen for the agent check on port " +
                                 std::to_string(port) + ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();
}

void agent_check::start() {
    net::co_spawn(acceptor_.get_executor(), accept_loop(), net::detached);
}

void agent_check::stop() {
    net::post(acceptor_.get_executor(), [this] {
        boost::system::error_code ignored;
        acceptor_.close(ignored);
    });
}

net::awaitable<void> agent_check::accept_loop() {
    constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);
    while (acceptor_.is_open()) {
        auto [ec, socket] = co_await acceptor_.async_accept(use_nothrow);
        if (ec) {
            if (!acceptor_.is_open()) {
                co_return;
            }
            continue;
        }
        // One short line into an empty socket buffer: the write completes at once.
        auto line = std::make_shared<std::string>(reply_());
        auto peer = std::make_shared<net::ip::tcp::socket>(std::move(socket));
        net::async_write(*peer, net::buffer(*line),
                         [line, peer](const boost::system::error_code&, std::size_t) {
                             boost::system::error_code ignored;
                             peer->shutdown(net::ip::tcp::socket::shutdown_both, ignored);
                             peer->close(ignored);
                         });
    }
}

} // namespace callstream::server
