#pragma once
// Ogg Opus file writer (RFC 7845) on libopusenc, writing to a caller-supplied byte sink.
//
// Input: 16-bit PCM at rate_hz (8, 12, 16, 24 or 48 kHz; libopusenc resamples to Opus' 48 kHz),
// mono or interleaved stereo, in any number of samples per call (the recorder passes 10/20 ms
// blocks). Output: complete Ogg pages handed to `sink` in file order; the sink decides where
// they go (the recorder in pipeline/ owns the file and the thread). The writer does no I/O.
//
// Crash safety. A file cut after any page the sink received is a valid Ogg Opus stream that
// opusfile and opusinfo read (opusinfo warns that EOS is missing and exits 1, as it does for
// every live stream). What the sink has not received is lost, and that is bounded:
//   - OPE_SET_DECISION_DELAY is set to 0 (libopusenc's default holds 96000 samples = 2 s of
//     audio back for analysis before encoding anything), so each 20 ms frame is encoded as
//     soon as it is complete;
//   - OPE_SET_MUXING_DELAY is set to max_page_delay_ms (48 kHz units; libopusenc's default is
//     48000 = 1 s): a page is closed as soon as it spans that much audio.
// So audio reaches the sink, decodable, at most max_page_delay_ms + 26.5 ms after it was
// written: 20 ms for the frame being filled and 6.5 ms for Opus' lookahead (the pre-skip: the
// newest 312 samples at 48 kHz are not decodable until the next packet), plus ~1 ms of
// resampler delay when rate_hz is not 48 kHz. Measured: 206.5 ms at 200 ms, 1006.5 ms at 1 s.
// flush() closes the current partial page now, leaving only the 26.5 ms behind.
// ope_encoder_flush_header is called in open(), so the two header pages (OpusHead, OpusTags)
// reach the sink before any audio. A file with only those is valid Ogg Opus but holds no audio
// page yet: opusinfo calls it empty and op_open_memory refuses it.
//
// Why the pull API: in callback mode libopusenc 0.2.1 has no way to close a partial page
// (ope_encoder_get_page's flush argument works only for pull-mode encoders), so the writer
// creates the encoder with ope_encoder_create_pull and hands each finished page to the sink
// itself. The sink contract is the same as with ope_encoder_create_callbacks.
//
// Threads: one thread at a time (the recorder's). Not for the DSP hot path: libopusenc
// allocates now and then (page buffers, key frames) and the sink may do I/O.
// Errors: libopusenc codes are wrapped as ogg_opus_errc in the "ogg_opus" category; a sink
// that returns false makes the call fail with sink_failed and the writer unusable.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

struct OggOpusEnc;

namespace callstream::codec {

enum class ogg_opus_errc {
    // libopusenc codes, negated (OPE_BAD_ARG = -11 becomes bad_arg = 11).
    bad_arg = 11,
    internal_error = 13,
    unimplemented = 15,
    alloc_fail = 17,
    cannot_open = 30,
    too_late = 31,
    // Ours.
    not_open = 100,    // write/flush/finish before a successful open() or after finish()
    sink_failed = 101, // the sink returned false
    // opusfile codes for the reader, negated (OP_EFAULT = -129 becomes fault = 129).
    read_error = 128,
    fault = 129,
    reader_unimplemented = 130,
    invalid_argument = 131,
    not_format = 132,
    bad_header = 133,
    bad_version = 134,
    not_audio = 135,
    bad_packet = 136,
    bad_link = 137,
    bad_timestamp = 139,
};
const std::error_category& ogg_opus_category() noexcept;
std::error_code make_error_code(ogg_opus_errc e) noexcept;

// Receives the file's bytes in order, one or more whole Ogg pages per call. Returns false if
// the bytes could not be stored.
using ogg_opus_sink = std::function<bool(std::span<const std::uint8_t> bytes)>;

struct ogg_opus_writer_config {
    int rate_hz = 16000; // input rate: 8000, 12000, 16000, 24000 or 48000
    int channels = 1;    // 1 or 2
    int bitrate_bps = 24000;
    int complexity = 5;          // 0 .. 10
    int max_page_delay_ms = 500; // upper bound on audio held in an unfinished page, 1 .. 1000
    // Vorbis-style comments, e.g. {"TITLE", "call CA123"}; "ENCODER" is added by libopusenc.
    std::vector<std::pair<std::string, std::string>> comments;
};

class ogg_opus_writer {
  public:
    ogg_opus_writer();
    ogg_opus_writer(ogg_opus_writer&&) noexcept;
    ogg_opus_writer& operator=(ogg_opus_writer&&) noexcept;
    // Destroying an unfinished writer does not finish it: the output ends like a crashed
    // recording (all pages so far, no EOS). Call finish() for a complete file.
    ~ogg_opus_writer();

    // Creates the encoder and sends the two header pages (OpusHead, OpusTags) to `sink`.
    std::error_code open(const ogg_opus_writer_config& config, ogg_opus_sink sink);
    bool is_open() const noexcept;

    // Adds samples (interleaved if stereo; size a multiple of channels). Finished pages go to
    // the sink before this returns.
    std::error_code write(std::span<const std::int16_t> pcm);
    // Closes the page being filled and sends it; audio not yet encoded (less than one 20 ms
    // frame plus the resampler's delay) stays for the next page.
    std::error_code flush();
    // Encodes everything left, writes the last page with EOS and closes the writer.
    std::error_code finish();

    // Samples per channel passed to write(), at the input rate.
    std::uint64_t samples_written() const noexcept { return samples_written_; }
    std::uint64_t bytes_out() const noexcept { return bytes_out_; }

  private:
    std::error_code drain_pages(bool flush);
    struct deleter {
        void operator()(OggOpusEnc* e) const noexcept;
    };
    std::unique_ptr<OggOpusEnc, deleter> enc_;
    ogg_opus_sink sink_;
    int channels_ = 0;
    std::uint64_t samples_written_ = 0;
    std::uint64_t bytes_out_ = 0;
};

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::ogg_opus_errc> : std::true_type {};
