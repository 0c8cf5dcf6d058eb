#pragma once
// The --redis-url form: redis://[[user]:password@]host[:port][/db] (port 6379, db 0 by default).
//
// Pure function, any thread. The password may instead come from CALLSTREAM_REDIS_PASSWORD (the
// caller passes it as `password_fallback`), so it need not sit in a process list.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callstream::server {

struct redis_endpoint {
    std::string host;
    std::uint16_t port = 6379;
    std::string user;     // empty: AUTH with the password alone (requirepass)
    std::string password; // empty: no AUTH
    unsigned db = 0;

    // "host:port/db", never the password: for logs and error messages.
    std::string describe() const;
};

struct redis_url_result {
    std::optional<redis_endpoint> endpoint;
    std::string error; // set when endpoint is empty
};

redis_url_result parse_redis_url(std::string_view url, std::string_view password_fallback = {});

} // namespace callstream::server
