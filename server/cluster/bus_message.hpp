#pragma once
// What instances say to each other on their cs:bus:{inst} channels: a forwarded HTTP request
// for a call another instance holds, and that instance's answer.
//
// Text, one field per line, the body last (it may hold newlines; the other fields cannot, they
// are HTTP request-line and header values and instance ids):
//   req\n<id>\n<from instance>\n<method>\n<target>\n<authorization>\n<body>
//   res\n<id>\n<status>\n<content type>\n<body>
// Pure functions, any thread; decoding refuses anything else (nullopt).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callstream::server {

struct bus_request {
    std::uint64_t id = 0;
    std::string from; // the instance waiting for the answer
    std::string method;
    std::string target;
    std::string authorization;
    std::string body;
};

struct bus_response {
    std::uint64_t id = 0;
    unsigned status = 0;
    std::string content_type;
    std::string body;
};

std::string encode_bus_request(const bus_request& r);
std::string encode_bus_response(const bus_response& r);
std::optional<bus_request> decode_bus_request(std::string_view text);
std::optional<bus_response> decode_bus_response(std::string_view text);

} // namespace callstream::server
