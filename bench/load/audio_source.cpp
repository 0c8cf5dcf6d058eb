#include "bench/load/audio_source.hpp"

#include <cstdlib>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "codec/base64.hpp"

namespace callstream::bench {
namespace {

std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) {
        if (c == '\'') {
            out += "'\\''";
        } else {
            out += c;
        }
    }
    return out + "'";
}

bool run_quiet(const std::string& command) {
    return std::system((command + " >/dev/null 2>&1").c_str()) == 0;
}

} // namespace

audio_source::audio_source(std::vector<std::uint8_t> ulaw) : ulaw_(std::move(ulaw)) {
    if (ulaw_.empty()) {
        throw std::runtime_error("audio is empty");
    }
    for (auto& b : ulaw_) {
        if (b == 0x7F) {
            b = 0xFF;
        }
    }
    ulaw_.resize((ulaw_.size() + frame_bytes - 1) / frame_bytes * frame_bytes, 0xFF);
    frames_ = ulaw_.size() / frame_bytes;
    base64_.resize(frames_ * frame_base64_chars);
    for (std::size_t i = 0; i < frames_; ++i) {
        codec::base64_encode({&ulaw_[i * frame_bytes], frame_bytes},
                             &base64_[i * frame_base64_chars]);
    }
}

audio_source audio_source::from_file(const std::filesystem::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw std::runtime_error("cannot read audio file " + path.string());
    }
    std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                    std::istreambuf_iterator<char>());
    return audio_source(std::move(bytes));
}

audio_source audio_source::generate(const std::filesystem::path& work_dir, std::string& what) {
    std::filesystem::create_directories(work_dir);
    const auto wav = (work_dir / "speech.wav").string();
    const auto ul = (work_dir / "speech.ul").string();
    const std::string to_ulaw = " -r 8000 -c 1 -e mu-law -t raw " + shell_quote(ul);
    static constexpr const char* text =
        "Thank you for calling. This is a load test of the media stream server. "
        "Please say the name of the department you would like to reach, or press one for sales, "
        "two for support, and three for billing. Your call is important to us.";
    if (run_quiet("espeak-ng -w " + shell_quote(wav) + " " + shell_quote(text)) &&
        run_quiet("sox " + shell_quote(wav) + to_ulaw)) {
        what = "espeak-ng speech";
    } else if (run_quiet("sox -n" + to_ulaw + " synth 10 sine 300-3000 vol 0.5")) {
        what = "sox sine sweep (espeak-ng missing)";
    } else {
        throw std::runtime_error("cannot generate audio: neither espeak-ng nor sox worked");
    }
    return from_file(ul);
}

} // namespace callstream::bench
