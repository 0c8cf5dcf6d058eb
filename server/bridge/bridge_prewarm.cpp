#include "server/bridge/bridge_prewarm.hpp"

#include "server/bridge/bridge_service.hpp"

namespace callstream::server::bridge {
namespace {

std::string_view value_of(const call_parameters& params, std::string_view name) {
    for (const auto& [k, v] : params) {
        if (k == name) {
            return v;
        }
    }
    return {};
}

bool names_bridge(std::string_view apps) {
    while (!apps.empty()) {
        const auto comma = apps.find(',');
        std::string_view name = apps.substr(0, comma);
        while (!name.empty() && name.front() == ' ') {
            name.remove_prefix(1);
        }
        while (!name.empty() && name.back() == ' ') {
            name.remove_suffix(1);
        }
        if (name == "bridge") {
            return true;
        }
        apps = comma == std::string_view::npos ? std::string_view{} : apps.substr(comma + 1);
    }
    return false;
}

const upstream_config* prewarm_upstream(const bridge_service& service, std::string_view default_app,
                                        const call_parameters& params) {
    std::string_view app = value_of(params, "app");
    if (app.empty()) {
        app = default_app;
    }
    if (!names_bridge(app)) {
        return nullptr;
    }
    std::string error;
    return service.choose(value_of(params, "bridge"), error);
}

} // namespace

bool wants_prewarm(const bridge_service& service, std::string_view default_app,
                   const call_parameters& params) {
    return prewarm_upstream(service, default_app, params) != nullptr;
}

bool prewarm_call(bridge_service& service, std::string_view default_app, std::string_view call_sid,
                  const call_parameters& params, boost::asio::any_io_executor executor) {
    const auto* upstream = prewarm_upstream(service, default_app, params);
    if (call_sid.empty() || upstream == nullptr) {
        return false;
    }
    service.prewarm(std::string(call_sid), *upstream, std::move(executor));
    return true;
}

bool prewarm_for_twiml(bridge_service& service, std::string_view default_app,
                       const call_parameters& params, boost::asio::any_io_executor executor) {
    return prewarm_call(service, default_app, value_of(params, "CallSid"), params,
                        std::move(executor));
}

} // namespace callstream::server::bridge
