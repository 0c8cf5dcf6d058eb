#include "server/cluster/cluster_routes.hpp"

#include <stdexcept>

#include <boost/asio/use_awaitable.hpp>

#include "codec/json_string.hpp"
#include "server/calls/call_registry.hpp"
#include "server/cluster/cluster_node.hpp"
#include "server/cluster/registry_keys.hpp"
#include "server/http/bearer_auth.hpp"
#include "server/http/router.hpp"
#include "server/media/media_session_handle.hpp"
#include "server/twilio/create_call.hpp"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {
namespace {

using node_ptr = std::shared_ptr<cluster_node>;

bool is_forwarded(const request_context& c) {
    return !c.request[forwarded_header].empty();
}

http_response json_ok(const http_request& req, std::string body) {
    auto res = make_response(req, http::status::ok, std::move(body), "application/json");
    res.set(http::field::cache_control, "no-store");
    return res;
}

// The owner's answer as ours, or the error that says why there is none.
http_response from_forward(const http_request& req, forward_result r, std::string_view what) {
    switch (r.what) {
    case forward_result::outcome::answered: {
        auto res = make_response(
            req, static_cast<http::status>(r.response.status), std::move(r.response.body),
            r.response.content_type.empty() ? "application/json" : r.response.content_type);
        return res;
    }
    case forward_result::outcome::gone:
        return json_error(req, http::status::not_found,
                          "no instance holds " + std::string(what) + ": " + r.detail);
    case forward_result::outcome::timeout:
        return json_error(req, http::status::gateway_timeout, r.detail);
    case forward_result::outcome::redis_down:
        break;
    }
    return json_error(req, http::status::service_unavailable, r.detail);
}

http_response redis_down(const request_context& c, std::string_view why) {
    return json_error(c.request, http::status::service_unavailable,
                      "cluster registry unreachable: " + std::string(why));
}

// Who holds `key` (cs:stream:… or cs:owner:…): the instance, or an empty string when nobody
// does; a response when Redis cannot say.
struct owner_lookup {
    std::string instance;
    std::optional<http_response> refused;
};

net::awaitable<owner_lookup> lookup_owner(request_context& c, cluster_node& node, std::string key) {
    if (!node.redis_ready()) {
        co_return owner_lookup{{}, redis_down(c, node.redis_unavailable())};
    }
    std::vector<std::string> cmd{"GET", std::move(key)};
    auto r = co_await async_redis(node.redis(), std::move(cmd), net::use_awaitable);
    if (!r.ok) {
        co_return owner_lookup{{}, redis_down(c, r.error)};
    }
    co_return owner_lookup{r.value.is_null() ? std::string() : r.value.text, std::nullopt};
}

net::awaitable<http_response> forward_to(request_context& c, node_ptr node, std::string inst,
                                         std::string what) {
    bus_request fwd;
    fwd.method = std::string(c.request.method_string());
    fwd.target = std::string(c.request.target());
    fwd.authorization = std::string(c.request[http::field::authorization]);
    fwd.body = c.request.body();
    auto result =
        co_await async_forward(*node, std::move(inst), std::move(fwd), net::use_awaitable);
    co_return from_forward(c.request, std::move(result), what);
}

// POST /streams/{streamSid}/play and /clear.
net::awaitable<http_response> stream_command(request_context& c, node_ptr node,
                                             route_handler original) {
    if (is_forwarded(c)) {
        co_return co_await original(c);
    }
    if (auto refused = check_bearer_token(c.request, c.server.cfg.api_token)) {
        co_return std::move(*refused);
    }
    const std::string sid(c.path_param("streamSid"));
    if (node->holds_stream(sid)) {
        co_return co_await original(c);
    }
    auto owner = co_await lookup_owner(c, *node, cluster_keys::stream(sid));
    if (owner.refused) {
        co_return std::move(*owner.refused);
    }
    if (owner.instance.empty()) {
        co_return json_error(c.request, http::status::not_found, "no instance holds stream " + sid);
    }
    if (owner.instance == node->instance_id()) {
        co_return co_await original(c); // registered a moment ago, or ending right now
    }
    co_return co_await forward_to(c, node, owner.instance, "stream " + sid);
}

bool rest_configured(const config& cfg) {
    return !cfg.account_sid.empty() && (!cfg.auth_token.empty() || !cfg.api_secret.empty());
}

// The owner ends the call: through Twilio when it can, and by closing the media stream (which
// ends a <Connect><Stream> call too, and is all there is without Twilio credentials).
net::awaitable<http_response> hangup_here(request_context& c, node_ptr node, route_handler original,
                                          std::shared_ptr<media_session_handle> session) {
    const std::string sid(c.path_param("sid"));
    if (rest_configured(c.server.cfg)) {
        auto res = co_await original(c);
        if (res.result() == http::status::ok) {
            session->post_close(1000, "call hung up");
        }
        co_return res;
    }
    session->post_close(1000, "call hung up");
    std::string body = "{\"call_sid\":";
    codec::append_json_string(body, sid);
    body += ",\"status\":\"completed\",\"instance\":";
    codec::append_json_string(body, node->instance_id());
    body += "}";
    co_return json_ok(c.request, std::move(body));
}

// POST /calls/{sid}/hangup.
net::awaitable<http_response> hangup(request_context& c, node_ptr node, route_handler original) {
    if (auto refused = check_bearer_token(c.request, c.server.cfg.api_token)) {
        co_return std::move(*refused);
    }
    const std::string sid(c.path_param("sid"));
    if (!is_call_sid(sid)) {
        co_return co_await original(c); // its 400 says what a CallSid looks like
    }
    if (auto session = node->local_call(sid)) {
        co_return co_await hangup_here(c, node, original, std::move(session));
    }
    std::string owner_instance;
    if (!is_forwarded(c)) {
        auto owner = co_await lookup_owner(c, *node, cluster_keys::owner(sid));
        if (owner.refused) {
            co_return std::move(*owner.refused);
        }
        owner_instance = std::move(owner.instance);
    }
    if (owner_instance.empty() || owner_instance == node->instance_id()) {
        // No stream anywhere: Twilio can still end the call from here, if it is configured.
        if (rest_configured(c.server.cfg)) {
            co_return co_await original(c);
        }
        co_return json_error(c.request, http::status::not_found, "no instance holds call " + sid);
    }
    co_return co_await forward_to(c, node, owner_instance, "call " + sid);
}

// GET /calls: ours (recent, live or not) and every other instance's live calls.
net::awaitable<http_response> list_calls(request_context& c, node_ptr node,
                                         route_handler original) {
    if (is_forwarded(c)) {
        co_return co_await original(c);
    }
    if (auto refused = check_bearer_token(c.request, c.server.cfg.api_token)) {
        co_return std::move(*refused);
    }
    if (!node->redis_ready()) {
        co_return redis_down(c, node->redis_unavailable());
    }
    std::vector<std::string> cmd{"EVAL", std::string(cluster_keys::list_calls_script), "0"};
    auto r = co_await async_redis(node->redis(), std::move(cmd), net::use_awaitable);
    if (!r.ok) {
        co_return redis_down(c, r.error);
    }
    std::string body = "{\"instance\":";
    codec::append_json_string(body, node->instance_id());
    body += ",\"calls\":[";
    bool first = true;
    if (c.server.calls) {
        for (const auto& call : c.server.calls->recent()) {
            body += first ? "" : ",";
            first = false;
            body += with_instance(call_record_json(call), node->instance_id());
        }
    }
    const std::string ours = with_instance("{}", node->instance_id());
    const std::string_view own_prefix(ours.data(), ours.size() - 1); // {"instance":"cs1"
    for (const auto& element : r.value.elements) {
        const std::string_view json = element.text;
        if (json.substr(0, own_prefix.size()) == own_prefix && json.size() > own_prefix.size() &&
            (json[own_prefix.size()] == ',' || json[own_prefix.size()] == '}')) {
            continue; // listed from our own registry above
        }
        body += first ? "" : ",";
        first = false;
        body += json;
    }
    body += "]}";
    co_return json_ok(c.request, std::move(body));
}

// GET /calls/{sid}.
net::awaitable<http_response> get_call(request_context& c, node_ptr node, route_handler original) {
    const std::string sid(c.path_param("sid"));
    const bool here = node->local_call(sid) != nullptr;
    if (is_forwarded(c) || here || !is_call_sid(sid)) {
        auto res = co_await original(c);
        if (res.result() == http::status::ok) {
            res.body() = with_instance(res.body(), node->instance_id());
            res.prepare_payload();
        }
        co_return res;
    }
    if (auto refused = check_bearer_token(c.request, c.server.cfg.api_token)) {
        co_return std::move(*refused);
    }
    if (!node->redis_ready()) {
        co_return redis_down(c, node->redis_unavailable());
    }
    std::vector<std::string> cmd{"EVAL", std::string(cluster_keys::find_call_script), "1",
                                 cluster_keys::owner(sid), sid};
    auto r = co_await async_redis(node->redis(), std::move(cmd), net::use_awaitable);
    if (!r.ok) {
        co_return redis_down(c, r.error);
    }
    if (r.value.type == codec::resp_type::bulk_string) {
        co_return json_ok(c.request, std::move(r.value.text));
    }
    // Live nowhere: what this instance remembers of it (an ended call), or 404.
    auto res = co_await original(c);
    if (res.result() == http::status::ok) {
        res.body() = with_instance(res.body(), node->instance_id());
        res.prepare_payload();
    }
    co_return res;
}

using wrapped = net::awaitable<http_response> (*)(request_context&, node_ptr, route_handler);

void wrap(router& r, http::verb method, std::string_view pattern, node_ptr node, wrapped fn) {
    const bool found = r.wrap(method, pattern, [&](route_handler original) -> route_handler {
        return [node, original = std::move(original), fn](request_context& c) {
            return fn(c, node, original);
        };
    });
    if (!found) {
        throw std::runtime_error("cluster: no route " + std::string(pattern) + " to wrap");
    }
}

} // namespace

void add_cluster_routes(server_context& ctx, std::shared_ptr<cluster_node> node) {
    auto& r = *ctx.routes;
    wrap(r, http::verb::post, "/streams/{streamSid}/play", node, stream_command);
    wrap(r, http::verb::post, "/streams/{streamSid}/clear", node, stream_command);
    wrap(r, http::verb::post, "/calls/{sid}/hangup", node, hangup);
    wrap(r, http::verb::get, "/calls", node, list_calls);
    wrap(r, http::verb::get, "/calls/{sid}", node, get_call);
}

} // namespace callstream::server
