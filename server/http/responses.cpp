#include "server/http/responses.hpp"

#include "codec/json_string.hpp"
#include "server/app/version.hpp"

namespace callstream::server {

http_response make_response(const http_request& req, http::status status, std::string body,
                            std::string_view content_type) {
    http_response res{status, req.version()};
    res.set(http::field::server, std::string("callstream/") + version);
    res.set(http::field::content_type, content_type);
    res.keep_alive(req.keep_alive());
    res.body() = std::move(body);
    res.prepare_payload();
    return res;
}

http_response json_error(const http_request& req, http::status status, std::string_view message) {
    std::string body = "{\"error\":";
    codec::append_json_string(body, message);
    body += "}";
    return make_response(req, status, std::move(body), "application/json");
}

http_response field_error(const http_request& req, http::status status, std::string_view message,
                          std::string_view field) {
    std::string body = "{\"error\":";
    codec::append_json_string(body, message);
    if (!field.empty()) {
        body += ",\"field\":";
        codec::append_json_string(body, field);
    }
    body += "}";
    auto res = make_response(req, status, std::move(body), "application/json");
    res.set(http::field::cache_control, "no-store");
    return res;
}

} // namespace callstream::server
