#pragma once
// Ogg Opus reader on libopusfile, for playing prompts: decodes a whole file held in memory to
// 48 kHz 16-bit PCM, mono (downmixed) or stereo.
//
// Output is always 48 kHz, Opus' native rate, whatever the original input rate was (the
// caller resamples to the call's rate). Pre-skip and the end trim are applied by opusfile, so
// the decoded length equals the encoded audio's length. Dithering is off so that decoding is
// deterministic.
//
// Ownership: open() takes a view; the bytes must outlive the reader (libopusfile reads them in
// place). Threads: one thread at a time. open() allocates; read() decodes into the caller's
// buffer and does not allocate, but decoding a 20 ms frame takes a sizeable fraction of a
// millisecond: prompts are best decoded ahead of time, off the DSP thread.
// Errors: opusfile codes as ogg_opus_errc (see ogg_opus_writer.hpp) in the "ogg_opus" category.
// A torn last page (a crashed recording) is ignored and a hole in the middle skipped, so a
// file cut anywhere decodes up to its last complete page.
//
// Why opusfile rather than our own libogg demuxer: it already handles everything the writer
// need not (chained and multi-stream files, seeking, gaps, foreign encoders' pre-skip and end
// trim); prompts come from anywhere.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <system_error>
#include <vector>

#include "codec/ogg_opus_writer.hpp"

struct OggOpusFile;

namespace callstream::codec {

class ogg_opus_reader {
  public:
    static constexpr int rate_hz = 48000;

    ogg_opus_reader();
    ogg_opus_reader(ogg_opus_reader&&) noexcept;
    ogg_opus_reader& operator=(ogg_opus_reader&&) noexcept;
    ~ogg_opus_reader();

    std::error_code open(std::span<const std::uint8_t> file);
    bool is_open() const noexcept { return file_ != nullptr; }

    int source_channels() const noexcept;
    // The rate the audio had before encoding (OpusHead "input sample rate"; informational).
    int input_rate_hz() const noexcept;
    // Samples per channel at 48 kHz in the whole file, or -1 if it cannot be known (a stream
    // cut without its last page still decodes; only the total is unknown).
    std::int64_t total_samples() const noexcept;
    // The first value of a comment tag (case-insensitive), or "" if absent.
    std::string comment(const std::string& tag) const;

    // Decodes up to out.size() / out_channels frames (out_channels 1 = downmix, 2 = stereo,
    // interleaved). `frames` gets the count; 0 with no error means the end of the file.
    std::error_code read(std::span<std::int16_t> out, int out_channels, std::size_t& frames);

  private:
    struct deleter {
        void operator()(OggOpusFile* f) const noexcept;
    };
    std::unique_ptr<OggOpusFile, deleter> file_;
    std::vector<std::int16_t> stereo_; // 120 ms of stereo: the longest Opus packet
};

} // namespace callstream::codec
