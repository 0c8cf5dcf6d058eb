#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <fcntl.h>
#include <regex>
#include <string>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "codec/ogg_opus_reader.hpp"
#include "codec/ogg_opus_writer.hpp"
#include "tests/codec/sox_helpers.hpp"

namespace {

namespace codec = callstream::codec;
namespace test = callstream::test;
using codec::ogg_opus_errc;

std::vector<std::int16_t> sine(int rate_hz, double freq_hz, std::size_t samples, double amplitude,
                               int channels = 1) {
    std::vector<std::int16_t> s(samples * static_cast<std::size_t>(channels), 0);
    for (std::size_t i = 0; i < samples; ++i) {
        // Left (or only) channel carries the tone; a second channel stays silent.
        s[i * static_cast<std::size_t>(channels)] = static_cast<std::int16_t>(std::lround(
            amplitude * std::sin(2.0 * M_PI * freq_hz * static_cast<double>(i) / rate_hz)));
    }
    return s;
}

// Feeds `pcm` to the writer in 20 ms blocks, as the recorder does.
void write_blocks(codec::ogg_opus_writer& writer, const std::vector<std::int16_t>& pcm, int rate_hz,
                  int channels) {
    const auto block = static_cast<std::size_t>(rate_hz / 50 * channels);
    for (std::size_t at = 0; at < pcm.size(); at += block) {
        const std::size_t n = std::min(block, pcm.size() - at);
        ASSERT_FALSE(writer.write(std::span(pcm).subspan(at, n)));
    }
}

std::vector<std::int16_t> read_all(codec::ogg_opus_reader& reader, int channels) {
    std::vector<std::int16_t> all;
    std::vector<std::int16_t> buffer(960 * 2);
    for (;;) {
        std::size_t frames = 0;
        const std::error_code ec = reader.read(buffer, channels, frames);
        EXPECT_FALSE(ec) << ec.message();
        if (ec || frames == 0) {
            return all;
        }
        all.insert(all.end(), buffer.begin(),
                   buffer.begin() + static_cast<long>(frames * static_cast<std::size_t>(channels)));
    }
}

// SNR in dB of `decoded` against `reference` when `decoded` is shifted by `delay` samples.
double snr_db(const std::vector<std::int16_t>& reference, const std::vector<std::int16_t>& decoded,
              long delay, std::size_t skip) {
    double signal = 0.0;
    double noise = 0.0;
    for (std::size_t i = skip; i < reference.size(); ++i) {
        const long j = static_cast<long>(i) + delay;
        if (j < 0 || static_cast<std::size_t>(j) >= decoded.size()) {
            continue;
        }
        const double x = reference[i];
        const double e = decoded[static_cast<std::size_t>(j)] - x;
        signal += x * x;
        noise += e * e;
    }
    return 10.0 * std::log10(signal / std::max(noise, 1e-9));
}

struct best_alignment {
    long delay = 0;
    double snr = -1e9;
};
best_alignment align(const std::vector<std::int16_t>& reference,
                     const std::vector<std::int16_t>& decoded, long max_delay, std::size_t skip) {
    best_alignment best;
    for (long d = -max_delay; d <= max_delay; ++d) {
        const double s = snr_db(reference, decoded, d, skip);
        if (s > best.snr) {
            best = {d, s};
        }
    }
    return best;
}

class ogg_opus : public ::testing::Test {
  protected:
    codec::ogg_opus_sink vector_sink() {
        return [this](std::span<const std::uint8_t> bytes) {
            file_.insert(file_.end(), bytes.begin(), bytes.end());
            return true;
        };
    }
    std::string opusinfo(const std::string& path, int& status) {
        return test::run_output("opusinfo " + test::quote(path) + " 2>&1", status);
    }
    // "Playback length: 0m:03.000s" -> seconds, or -1.
    static double playback_seconds(const std::string& info) {
        std::smatch m;
        static const std::regex re(R"(Playback length: (\d+)m:([0-9.]+)s)");
        if (!std::regex_search(info, m, re)) {
            return -1.0;
        }
        return std::stod(m[1].str()) * 60.0 + std::stod(m[2].str());
    }

    std::vector<std::uint8_t> file_;
    test::temp_dir dir_;
};

TEST_F(ogg_opus, three_seconds_of_16_khz_sine_pass_opusinfo_and_read_back) {
    if (!test::have_tool("opusinfo")) {
        FAIL() << "opusinfo is not installed: apt-get install opus-tools";
    }
    const int rate_hz = 16000;
    const auto source = sine(rate_hz, 440.0, 3 * 16000, 10000.0);
    codec::ogg_opus_writer writer;
    codec::ogg_opus_writer_config config;
    config.rate_hz = rate_hz;
    config.bitrate_bps = 32000;
    config.comments = {{"TITLE", "call CA0123 inbound"}, {"ARTIST", "callstream"}};
    ASSERT_FALSE(writer.open(config, vector_sink()));
    write_blocks(writer, source, rate_hz, 1);
    ASSERT_FALSE(writer.finish());
    EXPECT_EQ(writer.samples_written(), 48000u);
    EXPECT_EQ(writer.bytes_out(), file_.size());
    EXPECT_FALSE(writer.is_open());

    const std::string path = dir_.file("sine.opus");
    test::write_bytes(path, file_);
    int status = -1;
    const std::string info = opusinfo(path, status);
    EXPECT_EQ(status, 0) << info;
    const double seconds = playback_seconds(info);
    std::printf("[ ogg_opus ] opusinfo playback length %.3f s for 3 s written, %zu bytes\n",
                seconds, file_.size());
    EXPECT_NEAR(seconds, 3.0, 0.040) << info;
    EXPECT_NE(info.find("Original sample rate: 16000 Hz"), std::string::npos) << info;
    EXPECT_NE(info.find("Channels: 1"), std::string::npos) << info;
    EXPECT_NE(info.find("TITLE=call CA0123 inbound"), std::string::npos) << info;
    EXPECT_EQ(info.find("WARNING"), std::string::npos) << info;

    codec::ogg_opus_reader reader;
    ASSERT_FALSE(reader.open(file_));
    EXPECT_EQ(reader.source_channels(), 1);
    EXPECT_EQ(reader.input_rate_hz(), 16000);
    EXPECT_EQ(reader.comment("title"), "call CA0123 inbound");
    EXPECT_EQ(reader.comment("ALBUM"), "");
    EXPECT_NEAR(static_cast<double>(reader.total_samples()), 144000.0, 48.0 * 40);
    const auto decoded = read_all(reader, 1);
    EXPECT_EQ(static_cast<std::int64_t>(decoded.size()), reader.total_samples());

    // The same tone at 48 kHz is the reference. A pure tone only pins the alignment within one
    // period (109 samples), so search half a period either way; the speech test below checks
    // the absolute alignment.
    const auto reference = sine(48000, 440.0, 144000, 10000.0);
    const best_alignment best = align(reference, decoded, 54, 4800);
    std::printf("[ ogg_opus ] 16 kHz sine via Ogg Opus at 48 kHz: SNR %.1f dB at delay %ld\n",
                best.snr, best.delay);
    EXPECT_GT(best.snr, 15.0);
}

TEST_F(ogg_opus, speech_is_time_aligned_after_pre_skip) {
    if (!test::have_tool("espeak-ng") || !test::have_tool("sox")) {
        FAIL() << "espeak-ng/sox missing: apt-get install espeak-ng sox";
    }
    const std::string wav = dir_.file("speech.wav");
    const std::string raw16 = dir_.file("speech16.raw");
    const std::string raw48 = dir_.file("speech48.raw");
    ASSERT_EQ(test::run("espeak-ng -w " + test::quote(wav) +
                        " 'Press one for sales, two for support.' 2>/dev/null"),
              0);
    ASSERT_EQ(test::run("sox -D " + test::quote(wav) + " -r 16000 -b 16 -c 1 -t s16 " +
                        test::quote(raw16) + " 2>/dev/null"),
              0);
    // The reference at 48 kHz, upsampled from the very same 16 kHz samples.
    ASSERT_EQ(test::run("sox -D -t s16 -r 16000 -c 1 " + test::quote(raw16) + " -r 48000 -t s16 " +
                        test::quote(raw48) + " 2>/dev/null"),
              0);
    const auto source = test::read_s16(raw16);
    const auto reference = test::read_s16(raw48);
    codec::ogg_opus_writer writer;
    ASSERT_FALSE(writer.open({16000, 1, 32000, 5, 500, {}}, vector_sink()));
    write_blocks(writer, source, 16000, 1);
    ASSERT_FALSE(writer.finish());

    codec::ogg_opus_reader reader;
    ASSERT_FALSE(reader.open(file_));
    const auto decoded = read_all(reader, 1);
    EXPECT_NEAR(static_cast<double>(decoded.size()), static_cast<double>(source.size() * 3),
                48.0 * 2);
    // Search +-2 ms: a missing pre-skip (312 samples) or resampler compensation would put the
    // maximum at an edge.
    const best_alignment best = align(reference, decoded, 96, 4800);
    std::printf("[ ogg_opus ] speech via Ogg Opus: best delay %ld samples at 48 kHz, SNR %.1f "
                "dB\n",
                best.delay, best.snr);
    // libopusenc compensates its resampler and the pre-skip covers the codec delay: what
    // comes out lines up with what went in to within 0.1 ms.
    EXPECT_LE(std::abs(best.delay), 5);
    EXPECT_GT(best.snr, 6.0);
}

TEST_F(ogg_opus, stereo_and_other_rates_round_trip) {
    struct shape {
        int rate_hz;
        int channels;
    };
    for (const shape s : {shape{8000, 1}, shape{48000, 1}, shape{48000, 2}, shape{16000, 2}}) {
        file_.clear();
        const auto frames = static_cast<std::size_t>(s.rate_hz); // 1 s
        const auto source = sine(s.rate_hz, 500.0, frames, 9000.0, s.channels);
        codec::ogg_opus_writer writer;
        ASSERT_FALSE(writer.open({s.rate_hz, s.channels, 48000, 5, 500, {}}, vector_sink()));
        write_blocks(writer, source, s.rate_hz, s.channels);
        ASSERT_FALSE(writer.finish());
        codec::ogg_opus_reader reader;
        ASSERT_FALSE(reader.open(file_));
        EXPECT_EQ(reader.source_channels(), s.channels);
        EXPECT_EQ(reader.input_rate_hz(), s.rate_hz);
        EXPECT_EQ(reader.total_samples(), 48000) << s.rate_hz << "x" << s.channels;
        const auto stereo = read_all(reader, 2);
        ASSERT_EQ(stereo.size(), 96000u);
        double left = 0.0;
        double right = 0.0;
        for (std::size_t i = 4800; i < 48000; ++i) {
            left += static_cast<double>(stereo[2 * i]) * stereo[2 * i];
            right += static_cast<double>(stereo[2 * i + 1]) * stereo[2 * i + 1];
        }
        if (s.channels == 1) {
            EXPECT_EQ(left, right) << "mono is duplicated";
        } else {
            EXPECT_GT(left, 100.0 * right) << "channels stay apart";
        }
        // Mono downmix of the same file.
        ASSERT_FALSE(reader.open(file_));
        EXPECT_EQ(read_all(reader, 1).size(), 48000u);
    }
}

// Bytes in the sink trail the audio written by at most the page delay plus one frame, the
// 6.5 ms Opus lookahead and the resampler's ~1 ms: the bound a crashed recording's loss is held
// to.
TEST_F(ogg_opus, pages_reach_the_sink_within_the_page_delay) {
    for (const int page_delay_ms : {200, 1000}) {
        file_.clear();
        const int rate_hz = 16000;
        const auto source = sine(rate_hz, 440.0, 4 * 16000, 8000.0);
        codec::ogg_opus_writer writer;
        ASSERT_FALSE(writer.open({rate_hz, 1, 24000, 5, page_delay_ms, {}}, vector_sink()));
        // Headers are out before any audio (opusfile wants an audio page to open a stream).
        const std::string head(file_.begin(), file_.end());
        EXPECT_EQ(head.rfind("OggS", 0), 0u);
        EXPECT_NE(head.find("OpusHead"), std::string::npos);
        EXPECT_NE(head.find("OpusTags"), std::string::npos);
        codec::ogg_opus_reader reader;
        double worst_lag_ms = 0.0;
        for (std::size_t at = 0; at < source.size(); at += 320) {
            ASSERT_FALSE(writer.write(std::span(source).subspan(at, 320)));
            const double written_ms = static_cast<double>(at + 320) / 16.0;
            const double in_file_ms =
                reader.open(file_) ? 0.0 : static_cast<double>(reader.total_samples()) / 48.0;
            worst_lag_ms = std::max(worst_lag_ms, written_ms - in_file_ms);
        }
        std::printf("[ ogg_opus ] page delay %4d ms: worst audio lag of the sink %.1f ms\n",
                    page_delay_ms, worst_lag_ms);
        EXPECT_LE(worst_lag_ms, page_delay_ms + 20.0 + 6.5 + 3.0);
        // And pages are not flushed more often than needed (each costs ~30 bytes).
        EXPECT_GE(worst_lag_ms, page_delay_ms - 20.0);
    }
}

TEST_F(ogg_opus, flush_sends_the_partial_page) {
    codec::ogg_opus_writer writer;
    ASSERT_FALSE(writer.open({16000, 1, 24000, 5, 1000, {}}, vector_sink()));
    const auto source = sine(16000, 440.0, 16000 * 3 / 10, 8000.0); // 300 ms
    write_blocks(writer, source, 16000, 1);
    const std::size_t before = file_.size();
    codec::ogg_opus_reader reader;
    EXPECT_TRUE(reader.open(file_)) << "only headers so far: the 1 s page is still open";
    ASSERT_FALSE(writer.flush());
    EXPECT_GT(file_.size(), before);
    ASSERT_FALSE(reader.open(file_));
    const double in_file_ms = static_cast<double>(reader.total_samples()) / 48.0;
    std::printf("[ ogg_opus ] after flush: %.1f of 300 ms in the sink\n", in_file_ms);
    EXPECT_GE(in_file_ms, 300.0 - 20.0 - 6.5 - 3.0);
    // Flushing again with nothing new is harmless, and writing continues normally.
    ASSERT_FALSE(writer.flush());
    write_blocks(writer, source, 16000, 1);
    ASSERT_FALSE(writer.finish());
    ASSERT_FALSE(reader.open(file_));
    EXPECT_EQ(reader.total_samples(), 2 * 14400);
}

// A crash in the middle of writing a page (power loss, a full disk) leaves a torn last page:
// readers must use every complete page and ignore the torn one.
TEST_F(ogg_opus, torn_last_page_is_ignored) {
    const auto source = sine(16000, 440.0, 2 * 16000, 8000.0);
    codec::ogg_opus_writer writer;
    ASSERT_FALSE(writer.open({16000, 1, 24000, 5, 200, {}}, vector_sink()));
    write_blocks(writer, source, 16000, 1);
    ASSERT_FALSE(writer.finish());
    // Page starts, from the capture pattern.
    std::vector<std::size_t> pages;
    for (std::size_t i = 0; i + 4 <= file_.size(); ++i) {
        if (std::equal(file_.begin() + static_cast<long>(i),
                       file_.begin() + static_cast<long>(i) + 4, "OggS")) {
            pages.push_back(i);
        }
    }
    ASSERT_GE(pages.size(), 8u); // 2 header pages + a page per 200 ms
    for (std::size_t p = 3; p + 1 < pages.size(); ++p) {
        const std::vector<std::uint8_t> whole(file_.begin(),
                                              file_.begin() + static_cast<long>(pages[p]));
        const std::size_t torn_at = (pages[p] + pages[p + 1]) / 2;
        const std::vector<std::uint8_t> torn(file_.begin(),
                                             file_.begin() + static_cast<long>(torn_at));
        codec::ogg_opus_reader a;
        codec::ogg_opus_reader b;
        ASSERT_FALSE(a.open(whole)) << p;
        ASSERT_FALSE(b.open(torn)) << p;
        EXPECT_EQ(a.total_samples(), b.total_samples()) << p;
        EXPECT_EQ(read_all(b, 1).size(), static_cast<std::size_t>(a.total_samples())) << p;
    }
}

// A real crash: a child process records through a sink that write(2)s every page to a file,
// then dies by SIGKILL without finishing. The file must hold all but the last page delay.
TEST_F(ogg_opus, recording_killed_by_sigkill_leaves_a_readable_file) {
    if (!test::have_tool("opusinfo")) {
        FAIL() << "opusinfo is not installed: apt-get install opus-tools";
    }
    const std::string path = dir_.file("killed.opus");
    const double written_s = 2.5;
    const int page_delay_ms = 1000;
    std::fflush(nullptr);
    const pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd < 0) {
            ::_exit(3);
        }
        codec::ogg_opus_writer writer;
        const auto sink = [fd](std::span<const std::uint8_t> bytes) {
            return ::write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size());
        };
        codec::ogg_opus_writer_config config;
        config.max_page_delay_ms = page_delay_ms;
        config.comments = {{"TITLE", "killed"}};
        if (writer.open(config, sink)) {
            ::_exit(4);
        }
        const auto source = sine(16000, 440.0, static_cast<std::size_t>(written_s * 16000), 8000);
        for (std::size_t at = 0; at < source.size(); at += 320) {
            if (writer.write(std::span(source).subspan(at, 320))) {
                ::_exit(5);
            }
        }
        ::raise(SIGKILL);
        ::_exit(6);
    }
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus)) << "child exited with " << WEXITSTATUS(wstatus);
    EXPECT_EQ(WTERMSIG(wstatus), SIGKILL);

    // opusinfo reads it; its only complaint is the missing end-of-stream flag, which it
    // reports (with exit status 1) for every unfinished live stream.
    int status = -1;
    const std::string info = opusinfo(path, status);
    const double seconds = playback_seconds(info);
    std::printf("[ ogg_opus ] SIGKILL after %.1f s: opusinfo exit %d, playback length %.3f s\n",
                written_s, status, seconds);
    EXPECT_NE(info.find("EOS not set on stream 1"), std::string::npos) << info;
    std::size_t warnings = 0;
    for (std::size_t at = info.find("WARNING"); at != std::string::npos;
         at = info.find("WARNING", at + 1)) {
        ++warnings;
    }
    EXPECT_EQ(warnings, 1u) << info;
    EXPECT_EQ(info.find("ERROR"), std::string::npos) << info;
    EXPECT_GE(seconds, written_s - page_delay_ms / 1000.0 - 0.030) << info;
    EXPECT_LE(seconds, written_s) << info;

    const auto bytes = test::read_bytes(path);
    codec::ogg_opus_reader reader;
    ASSERT_FALSE(reader.open(bytes));
    EXPECT_EQ(reader.comment("TITLE"), "killed");
    const auto decoded = read_all(reader, 1);
    EXPECT_NEAR(static_cast<double>(decoded.size()) / 48000.0, seconds, 0.001);
}

TEST_F(ogg_opus, errors_are_reported) {
    codec::ogg_opus_writer writer;
    const std::vector<std::int16_t> pcm(320);
    EXPECT_EQ(writer.write(pcm), ogg_opus_errc::not_open);
    EXPECT_EQ(writer.flush(), ogg_opus_errc::not_open);
    EXPECT_EQ(writer.finish(), ogg_opus_errc::not_open);
    EXPECT_EQ(writer.open({44100, 1, 24000, 5, 500, {}}, vector_sink()), ogg_opus_errc::bad_arg);
    EXPECT_EQ(writer.open({16000, 3, 24000, 5, 500, {}}, vector_sink()), ogg_opus_errc::bad_arg);
    EXPECT_EQ(writer.open({16000, 1, 24000, 5, 0, {}}, vector_sink()), ogg_opus_errc::bad_arg);
    EXPECT_EQ(writer.open({16000, 1, 24000, 5, 500, {}}, {}), ogg_opus_errc::bad_arg);
    EXPECT_EQ(writer.open({16000, 1, 24000, 11, 500, {}}, vector_sink()),
              ogg_opus_errc::bad_arg); // libopus refuses complexity 11
    EXPECT_EQ(writer.open({16000, 1, 24000, 5, 500, {{"BAD=TAG", "x"}}}, vector_sink()),
              ogg_opus_errc::bad_arg);

    ASSERT_FALSE(writer.open({16000, 2, 24000, 5, 500, {}}, vector_sink()));
    EXPECT_EQ(writer.write(std::span(pcm).first(3)), ogg_opus_errc::bad_arg) << "half a frame";
    EXPECT_FALSE(writer.write({}));

    // A sink that fails makes the writer fail and close.
    int calls = 0;
    const auto failing = [&calls](std::span<const std::uint8_t>) { return ++calls < 2; };
    EXPECT_EQ(writer.open({16000, 1, 24000, 5, 500, {}}, failing), ogg_opus_errc::sink_failed);
    EXPECT_FALSE(writer.is_open());

    codec::ogg_opus_reader reader;
    std::vector<std::int16_t> out(960);
    std::size_t frames = 0;
    EXPECT_EQ(reader.read(out, 1, frames), ogg_opus_errc::not_open);
    const std::vector<std::uint8_t> garbage(4096, 0x5A);
    EXPECT_EQ(reader.open(garbage), ogg_opus_errc::not_format);
    EXPECT_FALSE(reader.is_open());
    EXPECT_TRUE(reader.open({}));

    file_.clear();
    ASSERT_FALSE(writer.open({16000, 1, 24000, 5, 500, {}}, vector_sink()));
    ASSERT_FALSE(writer.finish());
    ASSERT_FALSE(reader.open(file_));
    EXPECT_EQ(reader.read(out, 3, frames), ogg_opus_errc::invalid_argument);
    EXPECT_EQ(reader.total_samples(), 0);
    EXPECT_FALSE(reader.read(out, 1, frames));
    EXPECT_EQ(frames, 0u);

    const std::error_code ec = ogg_opus_errc::sink_failed;
    EXPECT_STREQ(ec.category().name(), "ogg_opus");
    EXPECT_EQ(std::error_code(ogg_opus_errc::bad_arg).message(), "invalid argument");
}

} // namespace
