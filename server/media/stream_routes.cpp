#include "server/media/stream_routes.hpp"

#include <simdjson.h>

#include "pipeline/playback/play_control.hpp"
#include "server/http/bearer_auth.hpp"
#include "server/http/router.hpp"

namespace callstream::server {
namespace {

// The stream's play mailbox, or the response that refuses the request.
std::variant<std::shared_ptr<pipeline::play_control>, http_response>
find_play(request_context& ctx) {
    if (auto refused = check_bearer_token(ctx.request, ctx.server.cfg.api_token)) {
        return std::move(*refused);
    }
    const std::string_view sid = ctx.path_param("streamSid");
    bool found = false;
    auto play = ctx.server.sessions.find_play(sid, found);
    if (!found) {
        return json_error(ctx.request, http::status::not_found,
                          "no running stream " + std::string(sid));
    }
    if (!play) {
        return json_error(ctx.request, http::status::conflict,
                          "stream has no play processor; start it with app=play");
    }
    return play;
}

http_response accepted(const http_request& req) {
    return make_response(req, http::status::accepted, "{\"queued\":true}", "application/json");
}

net::awaitable<http_response> play_route(request_context& ctx) {
    auto found = find_play(ctx);
    if (auto* refused = std::get_if<http_response>(&found)) {
        co_return std::move(*refused);
    }
    auto& play = std::get<std::shared_ptr<pipeline::play_control>>(found);
    simdjson::ondemand::parser parser;
    const simdjson::padded_string body(ctx.request.body());
    simdjson::ondemand::document doc;
    std::string_view prompts;
    if (parser.iterate(body).get(doc) || doc["prompts"].get_string().get(prompts) ||
        prompts.empty()) {
        co_return json_error(ctx.request, http::status::bad_request,
                             "body must be {\"prompts\": \"name.wav,tone:440:500\"}");
    }
    // Loading reads the prompt files here, off the stream's audio path (a short file read).
    const std::string error = play->play(prompts);
    if (error.empty()) {
        co_return accepted(ctx.request);
    }
    const auto status = error.find("full") != std::string::npos ? http::status::service_unavailable
                                                                : http::status::bad_request;
    co_return json_error(ctx.request, status, error);
}

net::awaitable<http_response> clear_route(request_context& ctx) {
    auto found = find_play(ctx);
    if (auto* refused = std::get_if<http_response>(&found)) {
        co_return std::move(*refused);
    }
    if (!std::get<std::shared_ptr<pipeline::play_control>>(found)->clear()) {
        co_return json_error(ctx.request, http::status::service_unavailable,
                             "the stream's command mailbox is full; try again");
    }
    co_return accepted(ctx.request);
}

} // namespace

void add_stream_routes(server_context& ctx) {
    ctx.routes->add(http::verb::post, "/streams/{streamSid}/play", play_route);
    ctx.routes->add(http::verb::post, "/streams/{streamSid}/clear", clear_route);
}

} // namespace callstream::server
