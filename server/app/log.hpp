#pragma once
// One line per event, as text (`ts level event key=value ...`) or JSON (`--log-format json`).
//
// Callable from any thread: each line is formatted into a local buffer and written with one
// write(2), so lines from different threads never interleave. Not for the audio hot path.
// Never pass secrets (tokens, auth headers, SIP passwords) as fields.

#include <initializer_list>
#include <string>
#include <string_view>

namespace callstream::server {

enum class log_level { debug, info, warn, error, off };
enum class log_format { text, json };

struct log_field {
    std::string_view key;
    std::string value;
    log_field(std::string_view k, std::string_view v) : key(k), value(v) {}
    log_field(std::string_view k, const char* v) : key(k), value(v) {}
    log_field(std::string_view k, const std::string& v) : key(k), value(v) {}
    template <typename Number>
    requires std::is_arithmetic_v<Number> log_field(std::string_view k, Number v)
        : key(k), value(std::to_string(v)) {}
};

void configure_logging(log_level level, log_format format);
bool log_enabled(log_level level) noexcept;
void log(log_level level, std::string_view event, std::initializer_list<log_field> fields = {});

// Parses "debug|info|warn|error|off" and "text|json"; false on an unknown name.
bool parse_log_level(std::string_view name, log_level& out);
bool parse_log_format(std::string_view name, log_format& out);

} // namespace callstream::server
