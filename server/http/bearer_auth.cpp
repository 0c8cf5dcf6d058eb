#include "server/http/bearer_auth.hpp"

#include <cctype>

#include "server/twilio/signature.hpp"

namespace callstream::server {

std::optional<http_response> check_bearer_token(const http_request& req,
                                                std::string_view api_token) {
    if (api_token.empty()) {
        return json_error(req, http::status::service_unavailable,
                          "this endpoint is disabled until an API token is configured: set "
                          "CALLSTREAM_API_TOKEN or pass --api-token, then send "
                          "'Authorization: Bearer <token>'");
    }
    const std::string_view header = req[http::field::authorization];
    constexpr std::string_view scheme = "bearer ";
    bool scheme_ok = header.size() > scheme.size();
    for (std::size_t i = 0; scheme_ok && i < scheme.size(); ++i) {
        scheme_ok = std::tolower(static_cast<unsigned char>(header[i])) == scheme[i];
    }
    // Constant time over the token, so response timing does not reveal a matching prefix.
    if (!scheme_ok || !constant_time_equal(header.substr(scheme.size()), api_token)) {
        auto res = json_error(req, http::status::unauthorized,
                              "missing or wrong bearer token (Authorization: Bearer <token>)");
        res.set(http::field::www_authenticate, "Bearer");
        return res;
    }
    return std::nullopt;
}

} // namespace callstream::server
