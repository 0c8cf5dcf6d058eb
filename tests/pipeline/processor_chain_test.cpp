#include <vector>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "pipeline/processor_factory.hpp"
#include "pipeline/stream_pipeline.hpp"

namespace callstream::pipeline {
namespace {

TEST(processor_chain, default_app_is_used_when_none_is_named) {
    const auto r = make_processor_chain("", processor_config{});
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.chain.size(), 1U);
}

TEST(processor_chain, unknown_name_is_refused_by_name) {
    const auto r = make_processor_chain("echo, bogus", processor_config{});
    EXPECT_TRUE(r.chain.empty());
    EXPECT_NE(r.error.find("bogus"), std::string::npos);
}

TEST(processor_chain, echo_returns_every_byte_except_negative_zero) {
    auto r = make_processor_chain("echo", processor_config{});
    stream_pipeline p(std::move(r.chain));
    p.start(stream_info{"AC1", "CA1", "MZ1", {}});
    std::vector<std::uint8_t> all(256);
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<std::uint8_t>(i);
    }
    p.push_audio(all, 0); // 256 bytes: one 160-byte frame and one of 96
    std::vector<std::uint8_t> out;
    std::size_t events = 0;
    p.drain([&](const outbound_event& ev) {
        ASSERT_EQ(ev.type, outbound_event::kind::media);
        out.insert(out.end(), ev.media().begin(), ev.media().end());
        ++events;
    });
    EXPECT_EQ(events, 2U);
    ASSERT_EQ(out.size(), all.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
        EXPECT_EQ(out[i], i == 0x7F ? 0xFF : all[i]) << i;
    }
    EXPECT_EQ(p.counters().frames_in, 2U);
    EXPECT_EQ(p.counters().frames_out, 2U);
}

} // namespace
} // namespace callstream::pipeline
