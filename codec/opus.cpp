#include "codec/opus.hpp"

#include <algorithm>
#include <string>

#include <opus/opus.h>

namespace callstream::codec {
namespace {

class opus_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "opus"; }
    std::string message(int ev) const override {
        if (static_cast<opus_errc>(ev) == opus_errc::not_open) {
            return "opus codec is not open";
        }
        // libopus has its own messages for its (negative) codes.
        return opus_strerror(-ev);
    }
};

} // namespace

const std::error_category& opus_category() noexcept {
    static const opus_category_impl category;
    return category;
}

std::error_code make_error_code(opus_errc e) noexcept {
    return {static_cast<int>(e), opus_category()};
}

std::error_code opus_error(int opus_code) noexcept {
    if (opus_code >= 0) {
        return {};
    }
    return {-opus_code, opus_category()};
}

void opus_encoder::deleter::operator()(OpusEncoder* e) const noexcept {
    opus_encoder_destroy(e);
}

void opus_decoder::deleter::operator()(OpusDecoder* d) const noexcept {
    opus_decoder_destroy(d);
}

std::error_code opus_encoder::open(const opus_encoder_config& config) noexcept {
    state_.reset();
    if (!opus_rate_supported(config.rate_hz) || (config.channels != 1 && config.channels != 2)) {
        return opus_errc::bad_arg;
    }
    int rc = OPUS_OK;
    state_.reset(opus_encoder_create(config.rate_hz, config.channels, OPUS_APPLICATION_VOIP, &rc));
    if (rc != OPUS_OK) {
        state_.reset();
        return opus_error(rc);
    }
    // Settings are checked by libopus; a rejected one fails open() rather than being ignored.
    for (const int r : {opus_encoder_ctl(state_.get(), OPUS_SET_BITRATE(config.bitrate_bps)),
                        opus_encoder_ctl(state_.get(), OPUS_SET_COMPLEXITY(config.complexity)),
                        opus_encoder_ctl(state_.get(), OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE))}) {
        if (r != OPUS_OK) {
            state_.reset();
            return opus_error(r);
        }
    }
    config_ = config;
    return {};
}

int opus_encoder::lookahead_samples() const noexcept {
    opus_int32 lookahead = 0;
    if (state_) {
        opus_encoder_ctl(state_.get(), OPUS_GET_LOOKAHEAD(&lookahead));
    }
    return lookahead;
}

std::error_code opus_encoder::encode(std::span<const std::int16_t> pcm, std::span<std::uint8_t> out,
                                     std::size_t& written) noexcept {
    written = 0;
    if (!state_) {
        return opus_errc::not_open;
    }
    const auto frame = static_cast<std::size_t>(frame_samples());
    if (pcm.size() != frame * static_cast<std::size_t>(config_.channels) || out.empty()) {
        return opus_errc::bad_arg;
    }
    const auto capacity =
        static_cast<opus_int32>(std::min<std::size_t>(out.size(), opus_max_packet_bytes));
    const opus_int32 n =
        opus_encode(state_.get(), pcm.data(), static_cast<int>(frame), out.data(), capacity);
    if (n < 0) {
        return opus_error(n);
    }
    written = static_cast<std::size_t>(n);
    return {};
}

std::error_code opus_decoder::open(int rate_hz, int channels) noexcept {
    state_.reset();
    if (!opus_rate_supported(rate_hz) || (channels != 1 && channels != 2)) {
        return opus_errc::bad_arg;
    }
    int rc = OPUS_OK;
    state_.reset(opus_decoder_create(rate_hz, channels, &rc));
    if (rc != OPUS_OK) {
        state_.reset();
        return opus_error(rc);
    }
    rate_hz_ = rate_hz;
    channels_ = channels;
    return {};
}

std::error_code opus_decoder::decode(std::span<const std::uint8_t> packet,
                                     std::span<std::int16_t> out, std::size_t& samples) noexcept {
    samples = 0;
    if (!state_) {
        return opus_errc::not_open;
    }
    const std::size_t capacity = out.size() / static_cast<std::size_t>(channels_);
    // For concealment libopus fills exactly frame_size samples: ask for one 20 ms frame.
    const std::size_t frame_size =
        packet.empty() ? static_cast<std::size_t>(frame_samples()) : capacity;
    if (frame_size > capacity || frame_size == 0) {
        return opus_errc::buffer_too_small;
    }
    const int n = opus_decode(state_.get(), packet.empty() ? nullptr : packet.data(),
                              static_cast<opus_int32>(packet.size()), out.data(),
                              static_cast<int>(frame_size), 0);
    if (n < 0) {
        return opus_error(n);
    }
    samples = static_cast<std::size_t>(n);
    return {};
}

} // namespace callstream::codec
