#pragma once
// HTTP routes: method + path pattern ("/calls/{sid}/hangup") -> coroutine handler.
//
// Routes are added at startup on the main thread; dispatch runs on network threads and only
// reads the table. Unknown paths answer 404, known paths with another method 405.

#include <functional>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "server/app/server_context.hpp"

namespace callstream::server {

using route_handler = std::function<net::awaitable<http_response>(request_context&)>;

class router {
  public:
    // The pattern labels the route in /metrics ("/calls/{sid}" rather than every SID).
    void add(http::verb method, std::string pattern, route_handler handler);
    net::awaitable<http_response> dispatch(request_context& ctx) const;

  private:
    struct route {
        http::verb method;
        std::string pattern;
        std::vector<std::string> segments;
        route_handler handler;
    };
    std::vector<route> routes_;
};

} // namespace callstream::server
