#pragma once
// An Ogg Opus file (RFC 7845) written with raw libopus and libogg, for the recorder.
//
// Why not libopusenc: it always runs the Opus encoder at 48 kHz behind a quality-5 resampler,
// which costs ~115-140 µs per 20 ms of 8/16 kHz telephone audio here. libopus at 16 kHz
// costs ~45 µs at complexity 1 (docs/processors.md), about 3x more calls per core.
//
// Input: interleaved PCM16 at rate_hz (8000, 12000, 16000, 24000 or 48000), any number of
// samples per call; whole 20 ms packets are encoded as they fill. flush() closes the current
// Ogg page and writes it, so a killed process leaves a valid file holding everything up to the
// last flush (opusinfo warns that EOS is missing, as for any live stream). finish() pads the
// encoder's lookahead, sets the final granule position so the length is exact, and writes the
// EOS page.
//
// Threads: one at a time (the recording writer's). Allocates in open() and in libogg's page
// buffers; makes write(2) calls on `fd` (not owned). Errors: false from any call, and the file
// stops growing.

#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include <ogg/ogg.h>

struct OpusEncoder;

namespace callstream::pipeline {

struct ogg_opus_options {
    std::uint32_t rate_hz = 16000;
    int channels = 1;
    int bitrate_bps = 24000;
    int complexity = 1;
    std::vector<std::pair<std::string, std::string>> comments;
};

class ogg_opus_file {
  public:
    ogg_opus_file() = default;
    ~ogg_opus_file();
    ogg_opus_file(const ogg_opus_file&) = delete;
    ogg_opus_file& operator=(const ogg_opus_file&) = delete;

    // Creates the encoder and writes the OpusHead and OpusTags pages to `fd`.
    bool open(int fd, const ogg_opus_options& options);
    bool write(std::span<const std::int16_t> interleaved);
    bool flush();
    bool finish();

  private:
    bool encode_packet(const std::int16_t* pcm, bool last, std::int64_t granule);
    bool write_pages(bool flush);

    OpusEncoder* enc_ = nullptr;
    ogg_stream_state os_{};
    bool os_ready_ = false;
    int fd_ = -1;
    bool failed_ = false;
    int channels_ = 1;
    std::uint32_t rate_hz_ = 16000;
    std::size_t frame_samples_ = 320; // per channel, 20 ms
    int granule_per_frame_ = 960;     // 48 kHz units per 20 ms
    int preskip_ = 0;                 // 48 kHz units
    std::int64_t packets_ = 0;
    std::uint64_t input_samples_ = 0; // per channel, at rate_hz
    std::vector<std::int16_t> fifo_;
    std::vector<unsigned char> packet_;
};

} // namespace callstream::pipeline
