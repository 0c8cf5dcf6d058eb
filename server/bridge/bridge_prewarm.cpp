#include "server/bridge/bridge_prewarm.hpp"

#include "server/bridge/bridge_service.hpp"

namespace callstream::server::bridge {
namespace {

std::string_view value_of(const std::vector<std::pair<std::string, std::string>>& params,
                          std::string_view name) {
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

} // namespace

void prewarm_for_twiml(bridge_service& service, std::string_view default_app,
                       const std::vector<std::pair<std::string, std::string>>& params,
                       boost::asio::any_io_executor executor) {
    const auto call_sid = value_of(params, "CallSid");
    std::string_view app = value_of(params, "app");
    if (app.empty()) {
        app = default_app;
    }
    if (call_sid.empty() || !names_bridge(app)) {
        return;
    }
    std::string error;
    const auto* upstream = service.choose(value_of(params, "bridge"), error);
    if (upstream != nullptr) {
        service.prewarm(std::string(call_sid), *upstream, std::move(executor));
    }
}

} // namespace callstream::server::bridge
