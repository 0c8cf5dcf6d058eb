#pragma once
// Helpers shared by the pipeline tests: temp dirs, running sox/espeak-ng, reading WAV files,
// collecting a stream_pipeline's output.

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "codec/wav.hpp"
#include "pipeline/stream_pipeline.hpp"

namespace callstream::test {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed with its contents at scope exit.
class temp_dir {
  public:
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "callstream-XXXXXX").string();
        path_ = ::mkdtemp(tmpl.data());
    }
    ~temp_dir() {
        std::error_code ec;
        fs::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const fs::path& path() const { return path_; }
    fs::path operator/(const std::string& name) const { return path_ / name; }

  private:
    fs::path path_;
};

// Runs a shell command; returns its stdout. Fails the test on a non-zero exit status.
inline std::string run(const std::string& cmd, int* status = nullptr) {
    std::string out;
    FILE* pipe = ::popen((cmd + " 2>&1").c_str(), "r");
    if (pipe == nullptr) {
        ADD_FAILURE() << "popen failed: " << cmd;
        return out;
    }
    std::array<char, 4096> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), pipe) != nullptr) {
        out += buf.data();
    }
    const int rc = ::pclose(pipe);
    if (status != nullptr) {
        *status = rc;
    } else {
        EXPECT_EQ(rc, 0) << cmd << "\n" << out;
    }
    return out;
}

inline std::string quote(const fs::path& p) {
    return "'" + p.string() + "'";
}

inline codec::wav_audio read_wav(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    codec::wav_audio audio;
    const std::error_code ec = codec::wav_decode(bytes, audio);
    EXPECT_FALSE(ec) << path << ": " << ec.message();
    return audio;
}

inline std::vector<std::int16_t> to_pcm16(const std::vector<float>& v) {
    std::vector<std::int16_t> out(v.size());
    for (std::size_t i = 0; i < v.size(); ++i) {
        out[i] = static_cast<std::int16_t>(
            std::lround(std::clamp(v[i] * 32768.0f, -32768.0f, 32767.0f)));
    }
    return out;
}

// Mono 8 kHz PCM16 from a WAV (channel 0).
inline std::vector<std::int16_t> read_mono_pcm16(const fs::path& path) {
    const auto audio = read_wav(path);
    std::vector<float> ch0;
    for (std::size_t i = 0; i < audio.samples.size();
         i += static_cast<std::size_t>(audio.channels)) {
        ch0.push_back(audio.samples[i]);
    }
    return to_pcm16(ch0);
}

// espeak-ng speech as 8 kHz mono PCM16 WAV, padded/trimmed to `seconds` when > 0.
inline fs::path make_speech(const temp_dir& dir, const std::string& name, const std::string& text,
                            double seconds = 0) {
    const fs::path raw = dir / (name + ".raw.wav");
    const fs::path out = dir / (name + ".wav");
    run("espeak-ng -s 150 -w " + quote(raw) + " '" + text + "'");
    std::string cmd = "sox " + quote(raw) + " -r 8000 -c 1 -b 16 " + quote(out);
    if (seconds > 0) {
        cmd += " pad 0 " + std::to_string(seconds) + " trim 0 " + std::to_string(seconds);
    }
    run(cmd);
    return out;
}

// μ-law bytes of PCM (what Twilio would send us for this audio).
inline std::vector<std::uint8_t> to_ulaw(const std::vector<std::int16_t>& pcm) {
    std::vector<std::uint8_t> out(pcm.size());
    codec::ulaw_encode(pcm, out);
    return out;
}

// Everything a pipeline sent, in order.
struct captured_output {
    struct event {
        pipeline::outbound_event::kind type;
        std::vector<std::uint8_t> media;
        std::string mark;
        std::size_t after_frame = 0; // caller frames pushed when it was sent
    };
    std::vector<event> events;

    void drain(pipeline::stream_pipeline& p, std::size_t frames_pushed) {
        p.drain([&](const pipeline::outbound_event& ev) {
            event e{ev.type, {}, {}, frames_pushed};
            if (ev.type == pipeline::outbound_event::kind::media) {
                e.media.assign(ev.media().begin(), ev.media().end());
            } else if (ev.type == pipeline::outbound_event::kind::mark) {
                e.mark = std::string(ev.mark_name());
            }
            events.push_back(std::move(e));
        });
    }
    std::vector<std::uint8_t> media_bytes() const {
        std::vector<std::uint8_t> out;
        for (const auto& e : events) {
            out.insert(out.end(), e.media.begin(), e.media.end());
        }
        return out;
    }
};

// Pushes `pcm` as 20 ms μ-law frames, draining after each; returns frames pushed.
inline std::size_t push_all(pipeline::stream_pipeline& p, const std::vector<std::int16_t>& pcm,
                            captured_output& cap, std::size_t first_frame = 0) {
    const auto ulaw = to_ulaw(pcm);
    std::size_t frame = first_frame;
    for (std::size_t i = 0; i + 160 <= ulaw.size(); i += 160, ++frame) {
        p.push_audio(std::span(ulaw).subspan(i, 160), static_cast<std::int64_t>(frame) * 20);
        cap.drain(p, frame + 1);
    }
    return frame;
}

// Signal-to-error ratio in dB of `test` against `ref` over their common length.
inline double snr_db(const std::vector<std::int16_t>& ref, const std::vector<std::int16_t>& test,
                     std::size_t offset_test = 0) {
    double sig = 0;
    double err = 0;
    for (std::size_t i = 0; i < ref.size() && i + offset_test < test.size(); ++i) {
        const double r = ref[i];
        const double d = r - test[i + offset_test];
        sig += r * r;
        err += d * d;
    }
    return 10.0 * std::log10((sig + 1e-9) / (err + 1e-9));
}

// First 10 ms block (8 kHz) from `from` whose RMS is within `below_peak_db` of the loudest
// block: the speech onset in clean speech.
inline std::size_t energy_onset_sample(const std::vector<std::int16_t>& pcm, std::size_t from = 0,
                                       double below_peak_db = 35.0) {
    double peak = 0;
    std::vector<double> rms;
    for (std::size_t i = 0; i + 80 <= pcm.size(); i += 80) {
        double s = 0;
        for (std::size_t k = 0; k < 80; ++k) {
            s += static_cast<double>(pcm[i + k]) * pcm[i + k];
        }
        rms.push_back(std::sqrt(s / 80));
        peak = std::max(peak, rms.back());
    }
    for (std::size_t b = from / 80; b < rms.size(); ++b) {
        if (rms[b] > peak * std::pow(10.0, -below_peak_db / 20.0)) {
            return b * 80;
        }
    }
    return pcm.size();
}

} // namespace callstream::test
