#include <chrono>
#include <string>

#include <gtest/gtest.h>

#include "codec/iso8601.hpp"

namespace {

using callstream::codec::append_iso8601_utc;
using callstream::codec::format_iso8601_utc;
using callstream::codec::iso8601_precision;

TEST(iso8601, formats_utc_with_and_without_milliseconds) {
    // 2026-11-26T12:34:56.789Z, computed by `date -u -d @1795696496`.
    constexpr std::int64_t ms = 1795696496789;
    EXPECT_EQ(format_iso8601_utc(ms), "2026-11-26T12:34:56.789Z");
    EXPECT_EQ(format_iso8601_utc(ms, iso8601_precision::seconds), "2026-11-26T12:34:56Z");
    EXPECT_EQ(format_iso8601_utc(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(7), "1970-01-01T00:00:00.007Z") << "milliseconds are padded";
    EXPECT_EQ(format_iso8601_utc(-5), "1970-01-01T00:00:00.000Z") << "clamped to the epoch";
    // Leap day, and the end of a year.
    EXPECT_EQ(format_iso8601_utc(951782400000), "2000-02-29T00:00:00.000Z");
    EXPECT_EQ(format_iso8601_utc(1798761599999), "2026-12-31T23:59:59.999Z");
    const std::chrono::system_clock::time_point t{std::chrono::milliseconds(ms)};
    EXPECT_EQ(format_iso8601_utc(t, iso8601_precision::seconds), "2026-11-26T12:34:56Z");
    std::string line = "ts=";
    append_iso8601_utc(line, ms);
    EXPECT_EQ(line, "ts=2026-11-26T12:34:56.789Z");
}

} // namespace
