#include "server/app/log.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <unistd.h>

#include "codec/iso8601.hpp"
#include "codec/json_string.hpp"

namespace callstream::server {
namespace {

std::atomic<log_level> current_level{log_level::info};
std::atomic<log_format> current_format{log_format::text};

constexpr std::string_view level_name(log_level level) {
    switch (level) {
    case log_level::debug:
        return "debug";
    case log_level::info:
        return "info";
    case log_level::warn:
        return "warn";
    case log_level::error:
        return "error";
    case log_level::off:
        return "off";
    }
    return "info";
}

void append_timestamp(std::string& out) {
    codec::append_iso8601_utc(out, std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
}

// Text values with spaces, quotes or '=' are quoted so a line stays machine-splittable.
void append_text_value(std::string& out, std::string_view v) {
    if (!v.empty() && v.find_first_of(" \"=\n\t") == std::string_view::npos) {
        out += v;
    } else {
        codec::append_json_string(out, v);
    }
}

} // namespace

void configure_logging(log_level level, log_format format) {
    current_level.store(level, std::memory_order_relaxed);
    current_format.store(format, std::memory_order_relaxed);
}

bool log_enabled(log_level level) noexcept {
    return level >= current_level.load(std::memory_order_relaxed) && level != log_level::off;
}

void log(log_level level, std::string_view event, std::initializer_list<log_field> fields) {
    if (!log_enabled(level)) {
        return;
    }
    std::string line;
    line.reserve(128);
    if (current_format.load(std::memory_order_relaxed) == log_format::json) {
        line += "{\"ts\":\"";
        append_timestamp(line);
        line += "\",\"level\":\"";
        line += level_name(level);
        line += "\",\"event\":";
        codec::append_json_string(line, event);
        for (const auto& f : fields) {
            line.push_back(',');
            codec::append_json_string(line, f.key);
            line.push_back(':');
            codec::append_json_string(line, f.value);
        }
        line += "}\n";
    } else {
        append_timestamp(line);
        line.push_back(' ');
        line += level_name(level);
        line.push_back(' ');
        line += event;
        for (const auto& f : fields) {
            line.push_back(' ');
            line += f.key;
            line.push_back('=');
            append_text_value(line, f.value);
        }
        line.push_back('\n');
    }
    // One write per line keeps concurrent lines whole; a failed log write has nowhere to go.
    [[maybe_unused]] const auto written = ::write(STDERR_FILENO, line.data(), line.size());
}

bool parse_log_level(std::string_view name, log_level& out) {
    for (auto level :
         {log_level::debug, log_level::info, log_level::warn, log_level::error, log_level::off}) {
        if (name == level_name(level)) {
            out = level;
            return true;
        }
    }
    return false;
}

bool parse_log_format(std::string_view name, log_format& out) {
    if (name == "text") {
        out = log_format::text;
    } else if (name == "json") {
        out = log_format::json;
    } else {
        return false;
    }
    return true;
}

} // namespace callstream::server
