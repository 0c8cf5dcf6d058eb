#include "pipeline/processor_factory.hpp"

#include "pipeline/processors/echo.hpp"

namespace callstream::pipeline {

processor_chain_result make_processor_chain(std::string_view app_list,
                                            const processor_config& config) {
    processor_chain_result result;
    if (app_list.empty()) {
        app_list = config.default_app;
    }
    while (!app_list.empty()) {
        const auto comma = app_list.find(',');
        std::string_view name = app_list.substr(0, comma);
        app_list =
            comma == std::string_view::npos ? std::string_view{} : app_list.substr(comma + 1);
        while (!name.empty() && name.front() == ' ') {
            name.remove_prefix(1);
        }
        while (!name.empty() && name.back() == ' ') {
            name.remove_suffix(1);
        }
        if (name == "echo") {
            result.chain.push_back(std::make_unique<echo_processor>());
        } else {
            result.chain.clear();
            result.error = "unknown app '" + std::string(name) + "'";
            return result;
        }
    }
    return result;
}

} // namespace callstream::pipeline
