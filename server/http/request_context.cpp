#include "server/http/request_context.hpp"

namespace callstream::server {

std::string_view request_context::path() const {
    const std::string_view target = request.target();
    return target.substr(0, target.find('?'));
}

std::string_view request_context::query() const {
    const std::string_view target = request.target();
    const auto q = target.find('?');
    return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
}

std::string_view request_context::path_param(std::string_view name) const {
    for (const auto& [key, value] : path_params) {
        if (key == name) {
            return value;
        }
    }
    return {};
}

} // namespace callstream::server
