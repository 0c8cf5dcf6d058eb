#pragma once
// Namespace aliases and the request/response types every HTTP route uses, and the builders for
// plain-text and JSON error responses. Pure functions, any thread; they allocate the body.

#include <string>
#include <string_view>

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http.hpp>

namespace callstream::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

using http_request = http::request<http::string_body>;
using http_response = http::response<http::string_body>;

// A response that mirrors the request's version and keep-alive, with a body and content type.
http_response make_response(const http_request& req, http::status status, std::string body,
                            std::string_view content_type = "text/plain; charset=utf-8");
// {"error": message} with the given status.
http_response json_error(const http_request& req, http::status status, std::string_view message);

// {"error": message, "field": field} (field omitted when empty), for bad input naming the field.
http_response field_error(const http_request& req, http::status status, std::string_view message,
                          std::string_view field);

} // namespace callstream::server
