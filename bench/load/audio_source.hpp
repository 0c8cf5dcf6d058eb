#pragma once
// The audio every simulated call plays: 8 kHz μ-law, cut into 20 ms frames and pre-encoded to
// base64 once, so a stream's frame costs a copy. Loaded at startup (exceptions allowed there),
// then read-only and shared by every thread.
//
// 0x7F is replaced by 0xFF (both are μ-law zero; a G.711 decode/encode round trip turns 0x7F into
// 0xFF), so an echo server that decodes and re-encodes returns exactly the bytes we sent.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "bench/load/twilio_messages.hpp"

namespace callstream::bench {

class audio_source {
  public:
    // Raw μ-law bytes (any length; padded with 0xFF to whole frames).
    explicit audio_source(std::vector<std::uint8_t> ulaw);

    // Reads a headerless .ul file. Throws std::runtime_error when unreadable or empty.
    static audio_source from_file(const std::filesystem::path& path);
    // Speech from espeak-ng, converted by sox to 8 kHz μ-law in `work_dir`; a sox sine sweep when
    // espeak-ng is missing. Throws std::runtime_error when neither works. `what` says which.
    static audio_source generate(const std::filesystem::path& work_dir, std::string& what);

    std::size_t frame_count() const noexcept { return frames_; }
    // The 160 μ-law bytes of frame i (i < frame_count()).
    const std::uint8_t* frame(std::size_t i) const noexcept { return &ulaw_[i * frame_bytes]; }
    // The 216 base64 characters of frame i.
    std::string_view frame_base64(std::size_t i) const noexcept {
        return {&base64_[i * frame_base64_chars], frame_base64_chars};
    }

  private:
    std::vector<std::uint8_t> ulaw_;
    std::string base64_;
    std::size_t frames_ = 0;
};

} // namespace callstream::bench
