#include "codec/iso8601.hpp"

#include <cstdio>
#include <ctime>

namespace callstream::codec {

void append_iso8601_utc(std::string& out, std::int64_t unix_ms, iso8601_precision precision) {
    unix_ms = unix_ms < 0 ? 0 : unix_ms;
    const auto secs = static_cast<std::time_t>(unix_ms / 1000);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[48];
    const int n =
        precision == iso8601_precision::milliseconds
            ? std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, static_cast<int>(unix_ms % 1000))
            : std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900,
                            tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    out.append(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
}

std::string format_iso8601_utc(std::int64_t unix_ms, iso8601_precision precision) {
    std::string out;
    append_iso8601_utc(out, unix_ms, precision);
    return out;
}

std::string format_iso8601_utc(std::chrono::system_clock::time_point t,
                               iso8601_precision precision) {
    return format_iso8601_utc(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count(),
        precision);
}

} // namespace callstream::codec
