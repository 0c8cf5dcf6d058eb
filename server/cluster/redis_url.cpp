#include "server/cluster/redis_url.hpp"

#include <charconv>

#include <boost/url/parse.hpp>

namespace callstream::server {

std::string redis_endpoint::describe() const {
    return host + ":" + std::to_string(port) + "/" + std::to_string(db);
}

redis_url_result parse_redis_url(std::string_view url, std::string_view password_fallback) {
    const auto fail = [](std::string why) {
        return redis_url_result{std::nullopt, std::move(why)};
    };
    const auto parsed = boost::urls::parse_absolute_uri(url);
    if (!parsed) {
        return fail("--redis-url must look like redis://[:password@]host:port[/db]");
    }
    if (parsed->scheme() != "redis") {
        return fail("--redis-url must start with redis:// (TLS to Redis is not built in; use a "
                    "local Redis or a TLS tunnel)");
    }
    if (parsed->host().empty() || parsed->has_query() || parsed->has_fragment()) {
        return fail("--redis-url must look like redis://[:password@]host:port[/db]");
    }
    redis_endpoint ep;
    ep.host = std::string(parsed->host_address()); // an IPv6 literal without brackets
    if (parsed->has_port()) {
        const auto port = parsed->port();
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
        if (ec != std::errc{} || ptr != port.data() + port.size() || value == 0 || value > 65535) {
            return fail("--redis-url has a bad port '" + std::string(port) + "'");
        }
        ep.port = static_cast<std::uint16_t>(value);
    }
    if (parsed->has_userinfo()) {
        ep.user = parsed->user();
        ep.password = parsed->password();
    }
    if (ep.password.empty()) {
        ep.password = std::string(password_fallback);
    }
    std::string_view path = parsed->encoded_path();
    if (!path.empty() && path != "/") {
        path.remove_prefix(1);
        const auto [ptr, ec] = std::from_chars(path.data(), path.data() + path.size(), ep.db);
        if (ec != std::errc{} || ptr != path.data() + path.size() || ep.db > 1023) {
            return fail("--redis-url database must be a number, got '" + std::string(path) + "'");
        }
    }
    return {std::move(ep), {}};
}

} // namespace callstream::server
