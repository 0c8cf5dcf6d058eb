// The prefetch list: which cache lines an add() covers, the fixed and per-frame parts, the bound.
#include <cstddef>
#include <cstdint>

#include <gtest/gtest.h>

#include "pipeline/warm_lines.hpp"

namespace callstream::pipeline {
namespace {

alignas(64) const std::uint8_t memory[64 * 200] = {};

const void* at(std::size_t offset) {
    return memory + offset;
}

TEST(warm_lines, a_range_covers_every_line_it_touches_from_the_line_that_holds_its_start) {
    warm_lines lines;
    lines.add(at(60), 200); // bytes 60..259: lines 0, 64, 128, 192, 256
    ASSERT_EQ(lines.size(), 5U);
    for (std::size_t i = 0; i < 5; ++i) {
        EXPECT_EQ(lines.line(i), at(64 * i));
    }
}

TEST(warm_lines, one_byte_or_an_empty_range_is_the_line_that_holds_it_and_null_is_nothing) {
    warm_lines lines;
    lines.add(at(130));
    lines.add(at(200), 0);
    lines.add(nullptr, 4096);
    ASSERT_EQ(lines.size(), 2U);
    EXPECT_EQ(lines.line(0), at(128));
    EXPECT_EQ(lines.line(1), at(192));
}

TEST(warm_lines, a_range_between_two_addresses_covers_the_first_and_stops_before_the_second) {
    warm_lines lines;
    lines.add_range(at(100), at(256)); // bytes 100..255: lines 64, 128, 192
    ASSERT_EQ(lines.size(), 3U);
    EXPECT_EQ(lines.line(0), at(64));
    EXPECT_EQ(lines.line(2), at(192));
}

TEST(warm_lines, dropping_the_per_frame_part_keeps_what_was_added_before_keep) {
    warm_lines lines;
    lines.add(at(0), 128);
    lines.keep();
    lines.add(at(640));
    ASSERT_EQ(lines.size(), 3U);
    lines.drop_per_frame();
    ASSERT_EQ(lines.size(), 2U);
    lines.add(at(1280));
    ASSERT_EQ(lines.size(), 3U);
    EXPECT_EQ(lines.line(2), at(1280)) << "the new per-frame line replaces the old one";
    lines.clear();
    EXPECT_EQ(lines.size(), 0U);
    lines.drop_per_frame();
    EXPECT_EQ(lines.size(), 0U) << "clear forgets the fixed part too";
}

TEST(warm_lines, adding_past_the_capacity_is_ignored_and_prefetch_still_runs) {
    warm_lines lines;
    lines.add(at(0), sizeof memory);
    EXPECT_EQ(lines.size(), warm_lines::capacity);
    EXPECT_EQ(lines.line(warm_lines::capacity - 1), at(64 * (warm_lines::capacity - 1)));
    lines.add(at(0));
    EXPECT_EQ(lines.size(), warm_lines::capacity);
    lines.prefetch(); // a hint: nothing to observe but that it returns
}

} // namespace
} // namespace callstream::pipeline
