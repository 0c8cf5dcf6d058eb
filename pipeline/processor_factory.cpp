#include "pipeline/processor_factory.hpp"

#include "pipeline/processors/echo.hpp"
#include "pipeline/processors/play.hpp"
#include "pipeline/processors/record.hpp"

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
        } else if (name == "record") {
            recording_options options = config.recording;
            options.dir = config.recordings_dir;
            result.chain.push_back(std::make_unique<record_processor>(
                std::move(options), config.writer ? config.writer : recording_writer::shared()));
        } else if (name == "play") {
            if (!result.play_control) {
                result.play_control = std::make_shared<play_control>(config.play.prompts_dir);
            }
            result.chain.push_back(
                std::make_unique<play_processor>(config.play, result.play_control));
        } else if (name == "bridge") {
            if (!result.bridge_port) {
                result.bridge_port = std::make_shared<bridge_port>();
                result.chain.push_back(std::make_unique<bridge_processor>(result.bridge_port));
            }
        } else {
            result.chain.clear();
            result.bridge_port.reset();
            result.play_control.reset();
            result.error = "unknown app '" + std::string(name) + "'";
            return result;
        }
    }
    return result;
}

} // namespace callstream::pipeline
