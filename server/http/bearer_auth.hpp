#pragma once
// The API token check for callstream's own control routes (/make-call, /calls, /streams, ...).
//
// Pure function of the request and the configured token; callable from any thread. Compares in
// constant time over the token.

#include <optional>
#include <string_view>

#include "server/http/responses.hpp"

namespace callstream::server {

// Refuses a request without "Authorization: Bearer <api_token>" (401), or every request while no
// token is configured (503, saying how to set one). nullopt means proceed.
std::optional<http_response> check_bearer_token(const http_request& req,
                                                std::string_view api_token);

} // namespace callstream::server
