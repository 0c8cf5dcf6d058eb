#pragma once
// ISO 8601 / RFC 3339 timestamps in UTC: "2026-11-26T12:34:56.789Z" or "2026-11-26T12:34:56Z".
// The one formatter behind the log lines, the calls API and the recorder's sidecar.
//
// Pure function, callable from any thread (gmtime_r, no locale, no time zone database).
// Input: milliseconds since the Unix epoch; times before 1970 are not expected (callstream only
// formats "now" and times it measured) and are clamped to the epoch. Allocates the string.

#include <chrono>
#include <cstdint>
#include <string>

namespace callstream::codec {

enum class iso8601_precision { seconds, milliseconds };

std::string format_iso8601_utc(std::int64_t unix_ms,
                               iso8601_precision precision = iso8601_precision::milliseconds);
std::string format_iso8601_utc(std::chrono::system_clock::time_point t,
                               iso8601_precision precision = iso8601_precision::milliseconds);
// Appends instead of returning (for log lines built in place).
void append_iso8601_utc(std::string& out, std::int64_t unix_ms,
                        iso8601_precision precision = iso8601_precision::milliseconds);

} // namespace callstream::codec
