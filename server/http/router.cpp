#include "server/http/router.hpp"

#include "server/app/log.hpp"

namespace callstream::server {
namespace {

std::vector<std::string_view> split_path(std::string_view path) {
    std::vector<std::string_view> out;
    while (!path.empty()) {
        if (path.front() == '/') {
            path.remove_prefix(1);
            continue;
        }
        const auto slash = path.find('/');
        out.push_back(path.substr(0, slash));
        path = slash == std::string_view::npos ? std::string_view{} : path.substr(slash);
    }
    return out;
}

} // namespace

void router::add(http::verb method, std::string pattern, route_handler handler) {
    route r{method, pattern, {}, std::move(handler)};
    for (auto seg : split_path(pattern)) {
        r.segments.emplace_back(seg);
    }
    routes_.push_back(std::move(r));
}

bool router::wrap(http::verb method, std::string_view pattern,
                  const std::function<route_handler(route_handler)>& wrap) {
    for (auto& r : routes_) {
        if (r.method == method && r.pattern == pattern) {
            r.handler = wrap(std::move(r.handler));
            return true;
        }
    }
    return false;
}

net::awaitable<http_response> router::dispatch(request_context& ctx) const {
    const auto segments = split_path(ctx.path());
    bool path_matched = false;
    std::string allowed;
    for (const auto& r : routes_) {
        if (r.segments.size() != segments.size()) {
            continue;
        }
        std::vector<std::pair<std::string, std::string>> params;
        bool match = true;
        for (std::size_t i = 0; i < segments.size() && match; ++i) {
            const auto& pattern = r.segments[i];
            if (pattern.size() > 2 && pattern.front() == '{' && pattern.back() == '}') {
                params.emplace_back(pattern.substr(1, pattern.size() - 2), segments[i]);
            } else {
                match = pattern == segments[i];
            }
        }
        if (!match) {
            continue;
        }
        path_matched = true;
        if (r.method != ctx.request.method()) {
            allowed += (allowed.empty() ? "" : ", ") + std::string(http::to_string(r.method));
            continue;
        }
        ctx.path_params = std::move(params);
        http_response res = co_await r.handler(ctx);
        ctx.server.stats.count_http(r.pattern, res.result_int());
        co_return res;
    }
    if (path_matched) {
        auto res = json_error(ctx.request, http::status::method_not_allowed,
                              "method not allowed; use " + allowed);
        res.set(http::field::allow, allowed);
        ctx.server.stats.count_http("other", 405);
        co_return res;
    }
    ctx.server.stats.count_http("other", 404);
    co_return json_error(ctx.request, http::status::not_found,
                         "no such path: " + std::string(ctx.path()));
}

} // namespace callstream::server
