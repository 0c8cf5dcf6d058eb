#include <array>
#include <filesystem>
#include <unistd.h>

#include <gtest/gtest.h>

#include "bench/load/audio_source.hpp"
#include "codec/base64.hpp"

namespace {

using callstream::bench::audio_source;
using callstream::bench::frame_bytes;

TEST(audio_source, pads_to_whole_frames_and_never_sends_0x7f) {
    std::vector<std::uint8_t> raw(frame_bytes * 2 + 10, 0x7F);
    raw[0] = 0x12;
    const audio_source a(raw);
    ASSERT_EQ(a.frame_count(), 3u);
    EXPECT_EQ(a.frame(0)[0], 0x12);
    for (std::size_t f = 0; f < a.frame_count(); ++f) {
        for (std::size_t i = 0; i < frame_bytes; ++i) {
            ASSERT_NE(a.frame(f)[i], 0x7F);
        }
    }
    EXPECT_EQ(a.frame(2)[frame_bytes - 1], 0xFF); // padding is mu-law silence
}

TEST(audio_source, generated_speech_is_8khz_ulaw_with_matching_base64) {
    const auto dir = std::filesystem::temp_directory_path() /
                     ("callstream-audio-test-" + std::to_string(getpid()));
    std::string what;
    const auto a = audio_source::generate(dir, what);
    std::filesystem::remove_all(dir);
    EXPECT_FALSE(what.empty());
    // The prompt lasts several seconds: hundreds of 20 ms frames, not a stub.
    EXPECT_GT(a.frame_count(), 150u) << what;
    std::size_t silent = 0;
    for (std::size_t f = 0; f < a.frame_count(); ++f) {
        std::array<std::uint8_t, frame_bytes> decoded{};
        std::size_t written = 0;
        ASSERT_FALSE(callstream::codec::base64_decode(a.frame_base64(f), decoded, written));
        ASSERT_EQ(written, frame_bytes);
        ASSERT_TRUE(std::equal(decoded.begin(), decoded.end(), a.frame(f)));
        bool all_quiet = true;
        for (auto b : decoded) {
            all_quiet = all_quiet && (b & 0x70) == 0x70; // |sample| small: segment 0
        }
        silent += all_quiet ? 1 : 0;
    }
    // Speech (or the sine fallback) is mostly not silence.
    EXPECT_LT(silent, a.frame_count() / 2);
}

} // namespace
