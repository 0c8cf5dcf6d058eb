#include "codec/ogg_opus_writer.hpp"

#include <string>

#include <opus/opusenc.h>

#include "codec/opus.hpp"

namespace callstream::codec {
namespace {

class ogg_opus_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "ogg_opus"; }
    std::string message(int ev) const override {
        switch (static_cast<ogg_opus_errc>(ev)) {
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
        default:
            // libopusenc's own codes (-10 .. -35) have messages in the library.
            return ope_strerror(-ev);
        }
    }
};

std::error_code ope_error(int code) {
    if (code >= 0) {
        return {};
    }
    return {-code, ogg_opus_category()};
}

} // namespace

const std::error_category& ogg_opus_category() noexcept {
    static const ogg_opus_category_impl category;
    return category;
}

std::error_code make_error_code(ogg_opus_errc e) noexcept {
    return {static_cast<int>(e), ogg_opus_category()};
}

void ogg_opus_writer::deleter::operator()(OggOpusEnc* e) const noexcept {
    ope_encoder_destroy(e);
}

ogg_opus_writer::ogg_opus_writer() = default;
ogg_opus_writer::ogg_opus_writer(ogg_opus_writer&&) noexcept = default;
ogg_opus_writer& ogg_opus_writer::operator=(ogg_opus_writer&&) noexcept = default;
ogg_opus_writer::~ogg_opus_writer() = default;

bool ogg_opus_writer::is_open() const noexcept {
    return enc_ != nullptr;
}

std::error_code ogg_opus_writer::open(const ogg_opus_writer_config& config, ogg_opus_sink sink) {
    enc_.reset();
    samples_written_ = 0;
    bytes_out_ = 0;
    if (!opus_rate_supported(config.rate_hz) || (config.channels != 1 && config.channels != 2) ||
        config.max_page_delay_ms < 1 || config.max_page_delay_ms > 1000 || !sink) {
        return ogg_opus_errc::bad_arg;
    }
    // Comments are copied by libopusenc; ours only need to live through the create call.
    std::unique_ptr<OggOpusComments, void (*)(OggOpusComments*)> comments(ope_comments_create(),
                                                                          ope_comments_destroy);
    if (!comments) {
        return ogg_opus_errc::alloc_fail;
    }
    for (const auto& [tag, value] : config.comments) {
        if (const int rc = ope_comments_add(comments.get(), tag.c_str(), value.c_str());
            rc != OPE_OK) {
            return ope_error(rc);
        }
    }
    int rc = OPE_OK;
    // Family 0: mono/stereo, a single Opus stream.
    std::unique_ptr<OggOpusEnc, deleter> enc(
        ope_encoder_create_pull(comments.get(), config.rate_hz, config.channels, 0, &rc));
    if (rc != OPE_OK || !enc) {
        return ope_error(rc != OPE_OK ? rc : OPE_ALLOC_FAIL);
    }
    for (const int r : {
             ope_encoder_ctl(enc.get(), OPUS_SET_APPLICATION(OPUS_APPLICATION_VOIP)),
             ope_encoder_ctl(enc.get(), OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE)),
             ope_encoder_ctl(enc.get(), OPUS_SET_BITRATE(config.bitrate_bps)),
             ope_encoder_ctl(enc.get(), OPUS_SET_COMPLEXITY(config.complexity)),
             ope_encoder_ctl(enc.get(), OPE_SET_DECISION_DELAY(0)),
             // Headers first: this creates the Ogg packer, so the muxing delay below reaches
             // it (libopusenc 0.2.1 stores it in the packer, which does not exist before).
             ope_encoder_flush_header(enc.get()),
             ope_encoder_ctl(enc.get(), OPE_SET_MUXING_DELAY(config.max_page_delay_ms * 48)),
         }) {
        if (r != OPE_OK) {
            // libopus errors come through ope_encoder_ctl unchanged (-1 .. -7): map them to
            // the libopusenc equivalents (libopus code - 10).
            return ope_error(r < 0 && r > -10 ? r - 10 : r);
        }
    }
    enc_ = std::move(enc);
    sink_ = std::move(sink);
    channels_ = config.channels;
    if (const std::error_code ec = drain_pages(false)) {
        enc_.reset();
        return ec;
    }
    return {};
}

std::error_code ogg_opus_writer::drain_pages(bool flush) {
    unsigned char* page = nullptr;
    opus_int32 length = 0;
    for (bool first = true;; first = false) {
        // Only the first call closes the partial page; the rest collect what is ready.
        const int rc = ope_encoder_get_page(enc_.get(), &page, &length, flush && first ? 1 : 0);
        if (rc < 0) {
            enc_.reset();
            return ope_error(rc);
        }
        if (rc == 0) {
            return {};
        }
        if (!sink_({page, static_cast<std::size_t>(length)})) {
            enc_.reset();
            return ogg_opus_errc::sink_failed;
        }
        bytes_out_ += static_cast<std::uint64_t>(length);
    }
}

std::error_code ogg_opus_writer::write(std::span<const std::int16_t> pcm) {
    if (!enc_) {
        return ogg_opus_errc::not_open;
    }
    const auto channels = static_cast<std::size_t>(channels_);
    if (pcm.size() % channels != 0) {
        return ogg_opus_errc::bad_arg;
    }
    const std::size_t frames = pcm.size() / channels;
    if (frames == 0) {
        return {};
    }
    if (const int rc = ope_encoder_write(enc_.get(), pcm.data(), static_cast<int>(frames));
        rc != OPE_OK) {
        enc_.reset();
        return ope_error(rc);
    }
    samples_written_ += frames;
    return drain_pages(false);
}

std::error_code ogg_opus_writer::flush() {
    if (!enc_) {
        return ogg_opus_errc::not_open;
    }
    return drain_pages(true);
}

std::error_code ogg_opus_writer::finish() {
    if (!enc_) {
        return ogg_opus_errc::not_open;
    }
    if (samples_written_ == 0) {
        // libopusenc 0.2.1 sets a stream's end position only in ope_encoder_write and leaves it
        // uninitialised before: draining a stream that never got a sample then fails an
        // assertion (or ends at a random length). A zero-length write sets it.
        const std::int16_t none = 0;
        if (const int rc = ope_encoder_write(enc_.get(), &none, 0); rc != OPE_OK) {
            enc_.reset();
            return ope_error(rc);
        }
    }
    if (const int rc = ope_encoder_drain(enc_.get()); rc != OPE_OK) {
        enc_.reset();
        return ope_error(rc);
    }
    const std::error_code ec = drain_pages(true);
    enc_.reset();
    return ec;
}

} // namespace callstream::codec
