#include "codec/ogg_opus_reader.hpp"

#include <algorithm>

#include <opus/opusfile.h>

namespace callstream::codec {
namespace {

constexpr std::size_t max_packet_frames = 5760; // 120 ms at 48 kHz

std::error_code op_error(int code) {
    if (code >= 0) {
        return {};
    }
    return {-code, ogg_opus_category()};
}

} // namespace

void ogg_opus_reader::deleter::operator()(OggOpusFile* f) const noexcept {
    op_free(f);
}

ogg_opus_reader::ogg_opus_reader() = default;
ogg_opus_reader::ogg_opus_reader(ogg_opus_reader&&) noexcept = default;
ogg_opus_reader& ogg_opus_reader::operator=(ogg_opus_reader&&) noexcept = default;
ogg_opus_reader::~ogg_opus_reader() = default;

std::error_code ogg_opus_reader::open(std::span<const std::uint8_t> file) {
    file_.reset();
    int rc = 0;
    std::unique_ptr<OggOpusFile, deleter> f(op_open_memory(file.data(), file.size(), &rc));
    if (!f) {
        return op_error(rc < 0 ? rc : OP_EFAULT);
    }
    op_set_dither_enabled(f.get(), 0);
    stereo_.assign(2 * max_packet_frames, 0);
    file_ = std::move(f);
    return {};
}

int ogg_opus_reader::source_channels() const noexcept {
    return file_ ? op_channel_count(file_.get(), -1) : 0;
}

int ogg_opus_reader::input_rate_hz() const noexcept {
    const OpusHead* head = file_ ? op_head(file_.get(), -1) : nullptr;
    return head != nullptr ? static_cast<int>(head->input_sample_rate) : 0;
}

std::int64_t ogg_opus_reader::total_samples() const noexcept {
    if (!file_) {
        return -1;
    }
    const ogg_int64_t total = op_pcm_total(file_.get(), -1);
    return total < 0 ? -1 : static_cast<std::int64_t>(total);
}

std::string ogg_opus_reader::comment(const std::string& tag) const {
    const OpusTags* tags = file_ ? op_tags(file_.get(), -1) : nullptr;
    const char* value = tags != nullptr ? opus_tags_query(tags, tag.c_str(), 0) : nullptr;
    return value != nullptr ? value : "";
}

std::error_code ogg_opus_reader::read(std::span<std::int16_t> out, int out_channels,
                                      std::size_t& frames) {
    frames = 0;
    if (!file_) {
        return ogg_opus_errc::not_open;
    }
    if (out_channels != 1 && out_channels != 2) {
        return ogg_opus_errc::invalid_argument;
    }
    const std::size_t wanted =
        std::min(out.size() / static_cast<std::size_t>(out_channels), max_packet_frames);
    if (wanted == 0) {
        return ogg_opus_errc::invalid_argument;
    }
    // op_read_stereo downmixes any channel layout (and duplicates mono), so mono output is the
    // mean of its two channels: exact for mono sources.
    int n = 0;
    do {
        // A hole (pages missing in the middle: a damaged copy) is skipped: decoding resumes
        // at the next page, as players do.
        n = op_read_stereo(file_.get(), stereo_.data(), static_cast<int>(2 * wanted));
    } while (n == OP_HOLE);
    if (n < 0) {
        return op_error(n);
    }
    const auto got = static_cast<std::size_t>(n);
    if (out_channels == 2) {
        std::copy_n(stereo_.begin(), 2 * got, out.begin());
    } else {
        for (std::size_t i = 0; i < got; ++i) {
            out[i] = static_cast<std::int16_t>((stereo_[2 * i] + stereo_[2 * i + 1]) / 2);
        }
    }
    frames = got;
    return {};
}

} // namespace callstream::codec
