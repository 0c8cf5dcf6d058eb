#pragma once
// Ogg Opus file writer (RFC 7845) on codec/opus.hpp (raw libopus) and libogg, writing whole Ogg
// pages to a caller-supplied byte sink. The one Ogg Opus writer: the recorder, the tests and
// the benchmarks all use it; codec/ogg_opus_reader.hpp reads what it writes.
//
// Input: 16-bit PCM at rate_hz (8, 12, 16, 24 or 48 kHz: Opus runs at that rate natively, no
// resampler), mono or interleaved stereo, in any number of samples per call (the recorder
// passes 20 ms blocks). Each 20 ms packet is encoded as soon as its samples are there. Output:
// complete Ogg pages handed to `sink` in file order; the sink decides where they go (the
// recorder in pipeline/ owns the file and the thread). The writer does no I/O itself.
//
// Why not libopusenc: it always runs the encoder at 48 kHz behind its own resampler, which
// costs ~115-140 µs per 20 ms of 8/16 kHz telephone audio; libopus at 16 kHz costs ~45 µs at
// complexity 1 (docs/processors.md), about 3x more calls per core.
//
// Crash safety. A file cut after any page the sink received is a valid Ogg Opus stream that
// opusfile and opusinfo read (opusinfo warns that EOS is missing and exits 1, as it does for
// every live stream). What the sink has not received is lost, and that is bounded: a page is
// closed as soon as it spans max_page_delay_ms of audio, so audio reaches the sink, decodable,
// at most max_page_delay_ms + 26.5 ms after it was written (20 ms for the packet being filled
// and 6.5 ms of Opus lookahead: the newest 312 samples at 48 kHz decode only with the next
// packet). flush() closes the current page now, leaving only those 26.5 ms behind. The two
// header pages (OpusHead, OpusTags) reach the sink in open(), before any audio; a file with only
// those is valid Ogg Opus without audio, which opusinfo calls empty and op_open_memory refuses.
// finish() pads the encoder's lookahead with silence, sets the last granule position so the
// decoded length equals the samples written exactly, and sends the EOS page.
//
// Threads: one thread at a time (the recorder's writer thread). Not for the DSP hot path: libogg
// grows its page buffers now and then and the sink may do I/O.
// Ownership: the writer owns the encoder and the libogg stream; `sink` is moved in and kept
// until the next open() or destruction.
// Errors: ogg_opus_errc in the "ogg_opus" category. A bad configuration is bad_arg; a sink
// that returns false makes the call fail with sink_failed, and after any failure the writer is
// closed (is_open() false; later calls return not_open).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace callstream::codec {

enum class ogg_opus_errc {
    // Writer.
    bad_arg = 11,        // a configuration value out of range, or a tag with '=' in it
    internal_error = 13, // libopus or libogg failed
    alloc_fail = 17,
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

// Receives the file's bytes in order, one whole Ogg page per call. Returns false if the bytes
// could not be stored. Called on the writer's thread, inside open/write/flush/finish.
using ogg_opus_sink = std::function<bool(std::span<const std::uint8_t> bytes)>;

struct ogg_opus_writer_config {
    int rate_hz = 16000; // input and coding rate: 8000, 12000, 16000, 24000 or 48000
    int channels = 1;    // 1 or 2
    int bitrate_bps = 24000;
    int complexity = 5;          // 0 .. 10
    int max_page_delay_ms = 500; // upper bound on audio held in an unfinished page, 1 .. 1000
    // Vorbis-style comments, e.g. {"TITLE", "call CA123"}; tags may not contain '='.
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

    // Adds samples (interleaved if stereo; size a multiple of channels). Pages finished by
    // this call go to the sink before it returns.
    std::error_code write(std::span<const std::int16_t> pcm);
    // Closes the page being filled and sends it; samples not yet in a whole 20 ms packet stay
    // for the next page.
    std::error_code flush();
    // Encodes everything left, writes the last page with EOS and closes the writer.
    std::error_code finish();

    // Samples per channel passed to write(), at the input rate.
    std::uint64_t samples_written() const noexcept { return samples_written_; }
    std::uint64_t bytes_out() const noexcept { return bytes_out_; }

  private:
    struct state; // encoder, libogg stream and FIFO, defined in the .cpp
    std::error_code fail(std::error_code ec) noexcept;
    std::error_code encode_packet(const std::int16_t* pcm, bool last, std::int64_t granule);
    std::error_code send_pages(bool flush);

    std::unique_ptr<state> state_;
    ogg_opus_sink sink_;
    std::uint64_t samples_written_ = 0;
    std::uint64_t bytes_out_ = 0;
};

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::ogg_opus_errc> : std::true_type {};
