#include "pipeline/ogg_opus_file.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unistd.h>

#include <opus/opus.h>

#include "pipeline/recording_io.hpp"

namespace callstream::pipeline {

namespace {

void put_le(std::vector<unsigned char>& out, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        out.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xFF));
    }
}

} // namespace

ogg_opus_file::~ogg_opus_file() {
    if (enc_ != nullptr) {
        opus_encoder_destroy(enc_);
    }
    if (os_ready_) {
        ogg_stream_clear(&os_);
    }
}

bool ogg_opus_file::write_pages(bool flush) {
    ogg_page page;
    while (flush ? ogg_stream_flush(&os_, &page) != 0 : ogg_stream_pageout(&os_, &page) != 0) {
        if (!write_recording_bytes(fd_, page.header, static_cast<std::size_t>(page.header_len)) ||
            !write_recording_bytes(fd_, page.body, static_cast<std::size_t>(page.body_len))) {
            failed_ = true;
            return false;
        }
    }
    return true;
}

bool ogg_opus_file::open(int fd, const ogg_opus_options& options) {
    fd_ = fd;
    channels_ = options.channels;
    rate_hz_ = options.rate_hz;
    frame_samples_ = rate_hz_ / 50;
    int err = 0;
    enc_ = opus_encoder_create(static_cast<opus_int32>(rate_hz_), channels_, OPUS_APPLICATION_VOIP,
                               &err);
    if (enc_ == nullptr || err != OPUS_OK) {
        failed_ = true;
        return false;
    }
    opus_encoder_ctl(enc_, OPUS_SET_BITRATE(options.bitrate_bps));
    opus_encoder_ctl(enc_, OPUS_SET_COMPLEXITY(options.complexity));
    opus_encoder_ctl(enc_, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
    opus_int32 lookahead = 0;
    opus_encoder_ctl(enc_, OPUS_GET_LOOKAHEAD(&lookahead));
    preskip_ = static_cast<int>(lookahead * 48000 / static_cast<opus_int32>(rate_hz_));
    granule_per_frame_ = 960;
    // A serial number only needs to differ between streams of one file.
    if (ogg_stream_init(&os_, static_cast<int>((reinterpret_cast<std::uintptr_t>(this) >> 4) &
                                               0x7FFFFFFF)) != 0) {
        failed_ = true;
        return false;
    }
    os_ready_ = true;

    // OpusHead (RFC 7845 5.1), alone on the first page.
    std::vector<unsigned char> head = {'O', 'p', 'u', 's', 'H',
                                       'e', 'a', 'd', 1,   static_cast<unsigned char>(channels_)};
    put_le(head, static_cast<std::uint32_t>(preskip_), 2);
    put_le(head, rate_hz_, 4);
    put_le(head, 0, 2); // output gain
    head.push_back(0);  // mapping family 0: mono or stereo
    ogg_packet op{};
    op.packet = head.data();
    op.bytes = static_cast<long>(head.size());
    op.b_o_s = 1;
    op.packetno = 0;
    ogg_stream_packetin(&os_, &op);
    if (!write_pages(true)) {
        return false;
    }
    // OpusTags (5.2) on its own page.
    std::vector<unsigned char> tags = {'O', 'p', 'u', 's', 'T', 'a', 'g', 's'};
    const std::string vendor = std::string("callstream ") + opus_get_version_string();
    put_le(tags, static_cast<std::uint32_t>(vendor.size()), 4);
    tags.insert(tags.end(), vendor.begin(), vendor.end());
    put_le(tags, static_cast<std::uint32_t>(options.comments.size()), 4);
    for (const auto& [key, value] : options.comments) {
        const std::string c = key + "=" + value;
        put_le(tags, static_cast<std::uint32_t>(c.size()), 4);
        tags.insert(tags.end(), c.begin(), c.end());
    }
    op = ogg_packet{};
    op.packet = tags.data();
    op.bytes = static_cast<long>(tags.size());
    op.packetno = 1;
    ogg_stream_packetin(&os_, &op);
    packets_ = 0;
    packet_.resize(4000);
    fifo_.reserve(frame_samples_ * static_cast<std::size_t>(channels_) * 4);
    return write_pages(true);
}

bool ogg_opus_file::encode_packet(const std::int16_t* pcm, bool last, std::int64_t granule) {
    const opus_int32 n = opus_encode(enc_, pcm, static_cast<int>(frame_samples_), packet_.data(),
                                     static_cast<opus_int32>(packet_.size()));
    if (n < 0) {
        failed_ = true;
        return false;
    }
    ++packets_;
    ogg_packet op{};
    op.packet = packet_.data();
    op.bytes = n;
    op.e_o_s = last ? 1 : 0;
    op.granulepos = granule;
    op.packetno = packets_ + 1;
    ogg_stream_packetin(&os_, &op);
    // Pages are closed by flush() (every 250 ms) or when libogg's page fills.
    return write_pages(false);
}

bool ogg_opus_file::write(std::span<const std::int16_t> interleaved) {
    if (failed_ || enc_ == nullptr) {
        return false;
    }
    const auto ch = static_cast<std::size_t>(channels_);
    input_samples_ += interleaved.size() / ch;
    fifo_.insert(fifo_.end(), interleaved.begin(), interleaved.end());
    const std::size_t frame_values = frame_samples_ * ch;
    std::size_t used = 0;
    while (fifo_.size() - used >= frame_values) {
        if (!encode_packet(fifo_.data() + used, false,
                           (packets_ + 1) * static_cast<std::int64_t>(granule_per_frame_))) {
            return false;
        }
        used += frame_values;
    }
    fifo_.erase(fifo_.begin(), fifo_.begin() + static_cast<std::ptrdiff_t>(used));
    return true;
}

bool ogg_opus_file::flush() {
    return !failed_ && os_ready_ && write_pages(true);
}

bool ogg_opus_file::finish() {
    if (failed_ || enc_ == nullptr) {
        return false;
    }
    // The decoder drops preskip samples and the encoder holds back its lookahead: encode
    // silence until every input sample is inside a packet, then trim with the last granule.
    const std::int64_t end_granule =
        preskip_ + static_cast<std::int64_t>(input_samples_ * 48000 / rate_hz_);
    const std::size_t frame_values = frame_samples_ * static_cast<std::size_t>(channels_);
    do {
        fifo_.resize(frame_values, 0);
        const std::int64_t next = (packets_ + 1) * granule_per_frame_;
        const bool last = next >= end_granule;
        if (!encode_packet(fifo_.data(), last, last ? end_granule : next)) {
            return false;
        }
        fifo_.clear();
    } while (packets_ * granule_per_frame_ < end_granule);
    return write_pages(true);
}

} // namespace callstream::pipeline
