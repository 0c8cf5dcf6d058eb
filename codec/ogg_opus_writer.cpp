#include "codec/ogg_opus_writer.hpp"

#include <algorithm>
#include <string>

#include <ogg/ogg.h>
#include <opus/opus.h>

#include "codec/opus.hpp"

namespace callstream::codec {
namespace {

class ogg_opus_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "ogg_opus"; }
    std::string message(int ev) const override {
        switch (static_cast<ogg_opus_errc>(ev)) {
        case ogg_opus_errc::bad_arg:
            return "invalid argument";
        case ogg_opus_errc::internal_error:
            return "Ogg Opus writer: encoder or Ogg stream failed";
        case ogg_opus_errc::alloc_fail:
            return "Ogg Opus writer: out of memory";
        case ogg_opus_errc::not_open:
            return "Ogg Opus writer/reader is not open";
        case ogg_opus_errc::sink_failed:
            return "Ogg Opus sink failed to store the bytes";
        case ogg_opus_errc::read_error:
            return "opusfile: read error";
        case ogg_opus_errc::fault:
            return "opusfile: internal error or out of memory";
        case ogg_opus_errc::reader_unimplemented:
            return "opusfile: unimplemented feature";
        case ogg_opus_errc::invalid_argument:
            return "opusfile: invalid argument";
        case ogg_opus_errc::not_format:
            return "opusfile: not an Ogg Opus stream";
        case ogg_opus_errc::bad_header:
            return "opusfile: bad header";
        case ogg_opus_errc::bad_version:
            return "opusfile: unsupported version";
        case ogg_opus_errc::not_audio:
            return "opusfile: not audio";
        case ogg_opus_errc::bad_packet:
            return "opusfile: bad packet";
        case ogg_opus_errc::bad_link:
            return "opusfile: bad link";
        case ogg_opus_errc::bad_timestamp:
            return "opusfile: bad timestamp";
        }
        return "unknown Ogg Opus error";
    }
};

void put_le(std::vector<unsigned char>& out, std::uint32_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) {
        out.push_back(static_cast<unsigned char>((v >> (8 * i)) & 0xFF));
    }
}

constexpr std::int64_t granule_per_packet = 960; // 20 ms in 48 kHz units (RFC 7845 4)

} // namespace

const std::error_category& ogg_opus_category() noexcept {
    static const ogg_opus_category_impl category;
    return category;
}

std::error_code make_error_code(ogg_opus_errc e) noexcept {
    return {static_cast<int>(e), ogg_opus_category()};
}

struct ogg_opus_writer::state {
    opus_encoder encoder;
    ogg_stream_state os{};
    bool os_ready = false;
    int channels = 1;
    int rate_hz = 16000;
    std::size_t frame_values = 320; // samples (all channels) in one 20 ms packet
    std::int64_t preskip = 0;       // 48 kHz units
    std::int64_t packets = 0;       // audio packets encoded
    int packets_per_page = 25;      // max_page_delay_ms in whole packets
    int packets_in_page = 0;        // audio packets not yet sent in a page
    std::vector<std::int16_t> fifo; // samples waiting for a whole packet
    std::vector<unsigned char> packet = std::vector<unsigned char>(opus_max_packet_bytes);

    ~state() {
        if (os_ready) {
            ogg_stream_clear(&os);
        }
    }
};

ogg_opus_writer::ogg_opus_writer() = default;
ogg_opus_writer::ogg_opus_writer(ogg_opus_writer&&) noexcept = default;
ogg_opus_writer& ogg_opus_writer::operator=(ogg_opus_writer&&) noexcept = default;
ogg_opus_writer::~ogg_opus_writer() = default;

bool ogg_opus_writer::is_open() const noexcept {
    return state_ != nullptr;
}

std::error_code ogg_opus_writer::fail(std::error_code ec) noexcept {
    state_.reset();
    return ec;
}

std::error_code ogg_opus_writer::send_pages(bool flush) {
    ogg_page page;
    while (flush ? ogg_stream_flush(&state_->os, &page) != 0
                 : ogg_stream_pageout(&state_->os, &page) != 0) {
        // One page per sink call: header and body are contiguous only in our copy.
        std::vector<std::uint8_t> bytes(page.header, page.header + page.header_len);
        bytes.insert(bytes.end(), page.body, page.body + page.body_len);
        if (!sink_(bytes)) {
            return fail(ogg_opus_errc::sink_failed);
        }
        bytes_out_ += bytes.size();
        state_->packets_in_page = 0;
    }
    return {};
}

std::error_code ogg_opus_writer::open(const ogg_opus_writer_config& config, ogg_opus_sink sink) {
    state_.reset();
    samples_written_ = 0;
    bytes_out_ = 0;
    if (!opus_rate_supported(config.rate_hz) || (config.channels != 1 && config.channels != 2) ||
        config.max_page_delay_ms < 1 || config.max_page_delay_ms > 1000 || !sink) {
        return ogg_opus_errc::bad_arg;
    }
    for (const auto& [tag, value] : config.comments) {
        if (tag.empty() || tag.find('=') != std::string::npos) {
            return ogg_opus_errc::bad_arg;
        }
    }
    auto s = std::make_unique<state>();
    if (const std::error_code ec = s->encoder.open(
            {config.rate_hz, config.channels, config.bitrate_bps, config.complexity})) {
        return ec == opus_errc::alloc_fail ? ogg_opus_errc::alloc_fail : ogg_opus_errc::bad_arg;
    }
    s->channels = config.channels;
    s->rate_hz = config.rate_hz;
    s->frame_values = static_cast<std::size_t>(s->encoder.frame_samples() * config.channels);
    s->preskip = std::int64_t{s->encoder.lookahead_samples()} * 48000 / config.rate_hz;
    s->packets_per_page = std::max(1, (config.max_page_delay_ms + 19) / 20);
    s->fifo.reserve(4 * s->frame_values);
    // A serial number only needs to differ between the streams of one file (we write one).
    if (ogg_stream_init(&s->os, static_cast<int>((reinterpret_cast<std::uintptr_t>(s.get()) >> 4) &
                                                 0x7FFFFFFF)) != 0) {
        return ogg_opus_errc::alloc_fail;
    }
    s->os_ready = true;
    state_ = std::move(s);
    sink_ = std::move(sink);

    // OpusHead (RFC 7845 5.1), alone on the first page.
    std::vector<unsigned char> head = {
        'O', 'p', 'u', 's', 'H', 'e', 'a', 'd', 1, static_cast<unsigned char>(config.channels)};
    put_le(head, static_cast<std::uint32_t>(state_->preskip), 2);
    put_le(head, static_cast<std::uint32_t>(config.rate_hz), 4);
    put_le(head, 0, 2); // output gain
    head.push_back(0);  // mapping family 0: mono or stereo, one Opus stream
    ogg_packet op{};
    op.packet = head.data();
    op.bytes = static_cast<long>(head.size());
    op.b_o_s = 1;
    op.packetno = 0;
    if (ogg_stream_packetin(&state_->os, &op) != 0) {
        return fail(ogg_opus_errc::internal_error);
    }
    if (const std::error_code ec = send_pages(true)) {
        return ec;
    }
    // OpusTags (5.2), on its own page.
    std::vector<unsigned char> tags = {'O', 'p', 'u', 's', 'T', 'a', 'g', 's'};
    const std::string vendor = std::string("callstream ") + opus_get_version_string();
    put_le(tags, static_cast<std::uint32_t>(vendor.size()), 4);
    tags.insert(tags.end(), vendor.begin(), vendor.end());
    put_le(tags, static_cast<std::uint32_t>(config.comments.size()), 4);
    for (const auto& [tag, value] : config.comments) {
        const std::string c = tag + "=" + value;
        put_le(tags, static_cast<std::uint32_t>(c.size()), 4);
        tags.insert(tags.end(), c.begin(), c.end());
    }
    op = ogg_packet{};
    op.packet = tags.data();
    op.bytes = static_cast<long>(tags.size());
    op.packetno = 1;
    if (ogg_stream_packetin(&state_->os, &op) != 0) {
        return fail(ogg_opus_errc::internal_error);
    }
    return send_pages(true);
}

std::error_code ogg_opus_writer::encode_packet(const std::int16_t* pcm, bool last,
                                               std::int64_t granule) {
    state& s = *state_;
    std::size_t bytes = 0;
    if (s.encoder.encode({pcm, s.frame_values}, s.packet, bytes)) {
        return fail(ogg_opus_errc::internal_error);
    }
    ++s.packets;
    ogg_packet op{};
    op.packet = s.packet.data();
    op.bytes = static_cast<long>(bytes);
    op.e_o_s = last ? 1 : 0;
    op.granulepos = granule;
    op.packetno = s.packets + 1;
    if (ogg_stream_packetin(&s.os, &op) != 0) {
        return fail(ogg_opus_errc::internal_error);
    }
    // Close the page once it spans max_page_delay_ms (the crash-loss bound); libogg's own
    // pageout still closes pages that grow past ~4 KiB sooner.
    ++s.packets_in_page;
    return send_pages(s.packets_in_page >= s.packets_per_page);
}

std::error_code ogg_opus_writer::write(std::span<const std::int16_t> pcm) {
    if (!state_) {
        return ogg_opus_errc::not_open;
    }
    state& s = *state_;
    const auto channels = static_cast<std::size_t>(s.channels);
    if (pcm.size() % channels != 0) {
        return ogg_opus_errc::bad_arg;
    }
    samples_written_ += pcm.size() / channels;
    s.fifo.insert(s.fifo.end(), pcm.begin(), pcm.end());
    std::size_t used = 0;
    while (s.fifo.size() - used >= s.frame_values) {
        if (const std::error_code ec =
                encode_packet(s.fifo.data() + used, false, (s.packets + 1) * granule_per_packet)) {
            return ec;
        }
        used += s.frame_values;
    }
    s.fifo.erase(s.fifo.begin(), s.fifo.begin() + static_cast<std::ptrdiff_t>(used));
    return {};
}

std::error_code ogg_opus_writer::flush() {
    if (!state_) {
        return ogg_opus_errc::not_open;
    }
    return send_pages(true);
}

std::error_code ogg_opus_writer::finish() {
    if (!state_) {
        return ogg_opus_errc::not_open;
    }
    state& s = *state_;
    // The decoder drops `preskip` samples and the encoder holds back its lookahead: encode
    // silence until every input sample is inside a packet, then trim with the last granule.
    const auto end_granule =
        s.preskip + static_cast<std::int64_t>(samples_written_ * 48000 / std::uint64_t(s.rate_hz));
    do {
        s.fifo.resize(s.frame_values, 0);
        const std::int64_t next = (s.packets + 1) * granule_per_packet;
        const bool last = next >= end_granule;
        if (const std::error_code ec =
                encode_packet(s.fifo.data(), last, last ? end_granule : next)) {
            return ec;
        }
        s.fifo.clear();
    } while (s.packets * granule_per_packet < end_granule);
    const std::error_code ec = send_pages(true);
    state_.reset();
    return ec;
}

} // namespace callstream::codec
