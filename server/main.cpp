// callstream: Twilio Media Streams server.
#include <cstdio>
#include <cstdlib>
#include <exception>

#include "server/app/config.hpp"
#include "server/app/log.hpp"
#include "server/app/server.hpp"

int main(int argc, char** argv) {
    using namespace callstream::server;
    config cfg;
    const auto parsed =
        parse_config(argc, argv, cfg, [](const char* name) { return std::getenv(name); });
    if (parsed.help) {
        std::fputs(config_help().c_str(), stdout);
        return 0;
    }
    if (!parsed.ok) {
        std::fprintf(stderr, "callstream: %s\n", parsed.error.c_str());
        return 2;
    }
    configure_logging(cfg.level, cfg.format);
    try {
        server srv(std::move(cfg));
        srv.run();
    } catch (const std::exception& e) {
        log(log_level::error, "startup_failed", {{"error", e.what()}});
        return 1;
    }
    return 0;
}
