#pragma once
// One HTTP request as a route handler sees it: the parsed request, where it came from, the
// "{name}" path parameters the router matched, and the server it reached.
//
// Lives on the connection's coroutine frame for the duration of one request; handlers run on
// that connection's network thread and must not keep references past their co_return.

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "server/http/responses.hpp"

namespace callstream::server {

struct server_context;

struct request_context {
    const http_request& request;
    bool tls = false;
    std::string remote; // peer address, for logs
    struct server_context& server;
    std::vector<std::pair<std::string, std::string>> path_params; // from "{name}" segments

    std::string_view path() const;  // target without the query
    std::string_view query() const; // after '?', or empty
    std::string_view path_param(std::string_view name) const;
};

} // namespace callstream::server
