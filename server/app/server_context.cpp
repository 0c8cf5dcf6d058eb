#include "server/app/server_context.hpp"

namespace callstream::server {

std::string server_context::public_base(const http_request& req, bool tls) const {
    if (!cfg.public_url.empty()) {
        return cfg.public_url;
    }
    // Behind ngrok or a load balancer the original scheme and host arrive as X-Forwarded-*.
    std::string_view proto = req["X-Forwarded-Proto"];
    std::string_view host = req["X-Forwarded-Host"];
    if (host.empty()) {
        host = req[http::field::host];
    }
    if (proto.empty()) {
        proto = tls ? "https" : "http";
    }
    // A comma-separated chain of proxies: the first entry is the client-facing one.
    proto = proto.substr(0, proto.find(','));
    host = host.substr(0, host.find(','));
    return std::string(proto) + "://" + std::string(host);
}

} // namespace callstream::server
