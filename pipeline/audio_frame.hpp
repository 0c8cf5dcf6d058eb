#pragma once
// The unit of audio inside callstream: up to 20 ms of mono PCM16 at one of the supported rates.
//
// A plain value type (no heap), so frames move through fixed-capacity rings by copy. Owned by
// whoever holds it; callable from any thread.

#include <array>
#include <cstdint>
#include <span>

namespace callstream::pipeline {

inline constexpr std::uint32_t telephony_rate_hz = 8000; // Twilio Media Streams: μ-law, 8 kHz
inline constexpr std::uint32_t frame_ms = 20;            // one Twilio media message
inline constexpr std::uint32_t max_rate_hz = 48000;
inline constexpr std::size_t telephony_frame_samples = telephony_rate_hz * frame_ms / 1000; // 160
inline constexpr std::size_t max_frame_samples = max_rate_hz * frame_ms / 1000;             // 960

struct audio_frame {
    std::array<std::int16_t, max_frame_samples> samples{};
    std::uint16_t count = 0; // valid samples in `samples`
    std::uint32_t rate_hz = telephony_rate_hz;
    std::int64_t timestamp_ms = 0; // media time since the stream started

    std::span<std::int16_t> pcm() noexcept { return {samples.data(), count}; }
    std::span<const std::int16_t> pcm() const noexcept { return {samples.data(), count}; }
};

} // namespace callstream::pipeline
