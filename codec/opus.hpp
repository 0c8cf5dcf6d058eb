#pragma once
// RAII wrappers over libopus: one 20 ms frame in, one packet out, and back.
//
// Samples are 16-bit linear PCM, interleaved when stereo. A frame is 20 ms: rate_hz / 50
// samples per channel (160 at 8 kHz, 320 at 16 kHz, 960 at 48 kHz). Supported rates are the
// ones Opus runs at natively: 8, 12, 16, 24 and 48 kHz; channels 1 or 2.
//
// Threads: an encoder or decoder is used by one thread at a time (the DSP thread that owns the
// call); distinct objects are independent. open() allocates; encode()/decode() do not allocate,
// lock or log and are safe on the hot path.
// Errors: libopus return codes are wrapped once here as opus_errc in the "opus" category.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <system_error>

struct OpusEncoder;
struct OpusDecoder;

namespace callstream::codec {

// libopus error codes, negated (OPUS_BAD_ARG = -1 becomes bad_arg = 1).
enum class opus_errc {
    bad_arg = 1,
    buffer_too_small = 2,
    internal_error = 3,
    invalid_packet = 4,
    unimplemented = 5,
    invalid_state = 6,
    alloc_fail = 7,
    not_open = 100, // encode/decode on an object whose open() did not succeed
};
const std::error_category& opus_category() noexcept;
std::error_code make_error_code(opus_errc e) noexcept;
// Maps a libopus return value (< 0) to an error_code; values >= 0 map to success.
std::error_code opus_error(int opus_code) noexcept;

inline constexpr int opus_frame_ms = 20;
// The largest packet a single Opus frame can take (RFC 6716 section 3.4, 1275 bytes).
inline constexpr std::size_t opus_max_packet_bytes = 1275;

constexpr bool opus_rate_supported(int rate_hz) noexcept {
    return rate_hz == 8000 || rate_hz == 12000 || rate_hz == 16000 || rate_hz == 24000 ||
           rate_hz == 48000;
}

struct opus_encoder_config {
    int rate_hz = 16000;
    int channels = 1;
    int bitrate_bps = 24000;
    int complexity = 5; // 0 (fastest) .. 10 (best)
};

class opus_encoder {
  public:
    opus_encoder() = default;
    opus_encoder(opus_encoder&&) noexcept = default;
    opus_encoder& operator=(opus_encoder&&) noexcept = default;
    ~opus_encoder() = default;

    // Creates the libopus encoder (application VOIP). Replaces any earlier state.
    std::error_code open(const opus_encoder_config& config) noexcept;
    bool is_open() const noexcept { return state_ != nullptr; }

    int rate_hz() const noexcept { return config_.rate_hz; }
    int channels() const noexcept { return config_.channels; }
    // Samples per channel in one 20 ms frame.
    int frame_samples() const noexcept { return config_.rate_hz / (1000 / opus_frame_ms); }
    // Codec delay in samples per channel at rate_hz (OPUS_GET_LOOKAHEAD): decoded audio lags
    // the input by this much.
    int lookahead_samples() const noexcept;

    // Encodes exactly one frame: `pcm` holds frame_samples() * channels() samples. The packet
    // goes to `out` (opus_max_packet_bytes is always enough) and `written` gets its size.
    std::error_code encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t> out,
                           std::size_t& written) noexcept;

  private:
    struct deleter {
        void operator()(OpusEncoder* e) const noexcept;
    };
    std::unique_ptr<OpusEncoder, deleter> state_;
    opus_encoder_config config_;
};

class opus_decoder {
  public:
    opus_decoder() = default;
    opus_decoder(opus_decoder&&) noexcept = default;
    opus_decoder& operator=(opus_decoder&&) noexcept = default;
    ~opus_decoder() = default;

    // Creates the libopus decoder for output at `rate_hz` (any supported rate, independent of
    // the encoder's) and `channels`.
    std::error_code open(int rate_hz, int channels) noexcept;
    bool is_open() const noexcept { return state_ != nullptr; }

    int rate_hz() const noexcept { return rate_hz_; }
    int channels() const noexcept { return channels_; }
    int frame_samples() const noexcept { return rate_hz_ / (1000 / opus_frame_ms); }

    // Decodes one packet into `out` (interleaved), which must hold the packet's duration (one
    // 20 ms frame for packets from opus_encoder; up to 120 ms for foreign packets).
    // An empty `packet` means "lost": packet-loss concealment fills one 20 ms frame (`out` must
    // hold frame_samples() * channels()). `samples` gets the count per channel.
    std::error_code decode(std::span<const std::uint8_t> packet, std::span<std::int16_t> out,
                           std::size_t& samples) noexcept;

  private:
    struct deleter {
        void operator()(OpusDecoder* d) const noexcept;
    };
    std::unique_ptr<OpusDecoder, deleter> state_;
    int rate_hz_ = 0;
    int channels_ = 0;
};

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::opus_errc> : std::true_type {};
