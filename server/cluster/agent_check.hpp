#pragma once
// The TCP agent HAProxy's `agent-check` polls: on each connection it writes one line and
// closes, e.g. "up ready 87% maxconn:10000\n" while serving or "drain\n" while draining (HAProxy
// then sends this server no new unpinned traffic but keeps its established tunnels and its
// use-server pinned paths).
//
// Runs on the cluster's executor (never a network thread). `reply` is called there for every
// poll. Bind errors throw std::runtime_error from the constructor.

#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace callstream::server {

class agent_check {
  public:
    agent_check(boost::asio::any_io_executor executor, const std::string& host, std::uint16_t port,
                std::function<std::string()> reply);
    void start();
    void stop();
    std::uint16_t port() const noexcept { return port_; }

  private:
    boost::asio::awaitable<void> accept_loop();
    boost::asio::ip::tcp::acceptor acceptor_;
    std::function<std::string()> reply_;
    std::uint16_t port_ = 0;
};

// The agent's line: "drain\n", or "up ready <weight>% maxconn:<capacity>\n" where the weight is the
// share of capacity still free (at least 1%, so a full instance stays up for pinned calls).
std::string agent_reply_line(bool draining, std::size_t active_streams, std::size_t capacity);

} // namespace callstream::server
