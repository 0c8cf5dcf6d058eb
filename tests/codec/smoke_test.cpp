#include "codec/g711.hpp"

#include <gtest/gtest.h>

TEST(g711, negative_zero_decodes_to_zero) { EXPECT_EQ(callstream::codec::ulaw_to_linear(0x7F), 0); }
