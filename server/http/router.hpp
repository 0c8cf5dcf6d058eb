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
    // Replaces an added route's handler with wrap(its handler), e.g. cluster mode forwarding
    // a request to the instance that holds the call. Startup only; false when no such route.
    bool wrap(http::verb method, std::string_view pattern,
              const std::function<route_handler(route_handler)>& wrap);
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
