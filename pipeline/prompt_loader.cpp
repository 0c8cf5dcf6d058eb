#include "pipeline/prompt_loader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>

#include <opus/opusfile.h>
#include <samplerate.h>

#include "codec/recording_formats.hpp"
#include "pipeline/audio_frame.hpp"

namespace callstream::pipeline {

namespace {

namespace fs = std::filesystem;

std::string_view trim(std::string_view s) {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    while (!s.empty() && s.back() == ' ') {
        s.remove_suffix(1);
    }
    return s;
}

bool parse_int(std::string_view s, long& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && end == s.data() + s.size();
}

std::string make_tone(std::string_view spec, prompt& out) {
    // tone:<hz>:<ms>
    const std::string_view rest = spec.substr(5);
    const auto colon = rest.find(':');
    long hz = 0;
    long ms = 0;
    if (colon == std::string_view::npos || !parse_int(rest.substr(0, colon), hz) ||
        !parse_int(rest.substr(colon + 1), ms) || hz <= 0 ||
        hz >= static_cast<long>(telephony_rate_hz / 2) || ms <= 0 || ms > 600000) {
        return "bad tone '" + std::string(spec) + "' (want tone:<hz 1..3999>:<ms 1..600000>)";
    }
    const auto n = static_cast<std::size_t>(ms) * telephony_rate_hz / 1000;
    out.pcm.resize(n);
    // -10 dBFS: loud enough to hear, far from μ-law's clipping.
    constexpr double amplitude = 0.316 * 32767.0;
    const double step = 2.0 * std::numbers::pi * static_cast<double>(hz) / telephony_rate_hz;
    for (std::size_t i = 0; i < n; ++i) {
        out.pcm[i] = static_cast<std::int16_t>(
            std::lround(amplitude * std::sin(step * static_cast<double>(i))));
    }
    return {};
}

std::string load_wav(const fs::path& path, prompt& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        return "cannot open prompt '" + out.name + "'";
    }
    const std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                          std::istreambuf_iterator<char>());
    codec::wav_file_audio audio;
    if (auto err = codec::parse_wav_file(bytes, audio); !err.empty()) {
        return "prompt '" + out.name + "': " + err;
    }
    return to_telephony_pcm(audio.samples, audio.channels, audio.rate_hz, out.pcm);
}

std::string load_opus(const fs::path& path, prompt& out) {
    int err = 0;
    OggOpusFile* of = op_open_file(path.c_str(), &err);
    if (of == nullptr) {
        return "prompt '" + out.name + "': not a readable Ogg Opus file (" + std::to_string(err) +
               ")";
    }
    std::vector<float> mono;
    std::vector<float> buf(2 * 5760);
    while (true) {
        const int n = op_read_float_stereo(of, buf.data(), static_cast<int>(buf.size()));
        if (n == OP_HOLE) {
            continue;
        }
        if (n < 0) {
            op_free(of);
            return "prompt '" + out.name + "': Opus decode error " + std::to_string(n);
        }
        if (n == 0) {
            break;
        }
        for (int i = 0; i < n; ++i) {
            const auto k = static_cast<std::size_t>(i) * 2;
            mono.push_back(0.5f * (buf[k] + buf[k + 1]));
        }
    }
    op_free(of);
    return to_telephony_pcm(mono, 1, 48000, out.pcm); // opusfile always decodes at 48 kHz
}

} // namespace

std::string to_telephony_pcm(const std::vector<float>& interleaved, int channels,
                             std::uint32_t rate_hz, std::vector<std::int16_t>& out) {
    if (channels <= 0 || rate_hz == 0) {
        return "bad channel count or rate";
    }
    const auto ch = static_cast<std::size_t>(channels);
    const std::size_t frames = interleaved.size() / ch;
    std::vector<float> mono(frames);
    for (std::size_t i = 0; i < frames; ++i) {
        float sum = 0;
        for (std::size_t c = 0; c < ch; ++c) {
            sum += interleaved[i * ch + c];
        }
        mono[i] = sum / static_cast<float>(ch);
    }
    std::vector<float> resampled;
    if (rate_hz == telephony_rate_hz) {
        resampled = std::move(mono);
    } else {
        const double ratio = static_cast<double>(telephony_rate_hz) / rate_hz;
        resampled.resize(static_cast<std::size_t>(std::ceil(static_cast<double>(frames) * ratio)) +
                         16);
        SRC_DATA data{};
        data.data_in = mono.data();
        data.input_frames = static_cast<long>(frames);
        data.data_out = resampled.data();
        data.output_frames = static_cast<long>(resampled.size());
        data.src_ratio = ratio;
        if (const int rc = src_simple(&data, SRC_SINC_MEDIUM_QUALITY, 1); rc != 0) {
            return std::string("resampling failed: ") + src_strerror(rc);
        }
        resampled.resize(static_cast<std::size_t>(data.output_frames_gen));
    }
    out.resize(resampled.size());
    for (std::size_t i = 0; i < resampled.size(); ++i) {
        const float v = std::clamp(resampled[i] * 32768.0f, -32768.0f, 32767.0f);
        out[i] = static_cast<std::int16_t>(std::lround(v));
    }
    return {};
}

std::string resolve_prompt_path(std::string_view name, const fs::path& prompts_dir, fs::path& out) {
    if (name.empty()) {
        return "empty prompt name";
    }
    const fs::path rel(name);
    if (rel.is_absolute() || rel.has_root_name() || rel.has_root_directory()) {
        return "prompt '" + std::string(name) + "' refused: absolute path";
    }
    for (const auto& part : rel) {
        if (part == "..") {
            return "prompt '" + std::string(name) + "' refused: '..' in path";
        }
    }
    std::error_code ec;
    const fs::path root = fs::weakly_canonical(prompts_dir, ec);
    if (ec) {
        return "prompts folder unavailable: " + ec.message();
    }
    std::vector<fs::path> candidates{root / rel};
    if (!rel.has_extension()) {
        candidates = {root / (std::string(name) + ".wav"), root / (std::string(name) + ".opus")};
    }
    for (const auto& candidate : candidates) {
        const fs::path real = fs::weakly_canonical(candidate, ec);
        if (ec || !fs::is_regular_file(real, ec)) {
            continue;
        }
        // Symlinks are resolved: the real file must still be under the prompts folder.
        const auto [root_end, real_it] =
            std::mismatch(root.begin(), root.end(), real.begin(), real.end());
        if (root_end != root.end()) {
            return "prompt '" + std::string(name) + "' refused: outside the prompts folder";
        }
        out = real;
        return {};
    }
    return "prompt '" + std::string(name) + "' not found";
}

std::string load_prompt(std::string_view spec, const fs::path& prompts_dir, prompt& out) {
    spec = trim(spec);
    out.name = std::string(spec);
    out.pcm.clear();
    if (spec.starts_with("tone:")) {
        return make_tone(spec, out);
    }
    fs::path path;
    if (auto err = resolve_prompt_path(spec, prompts_dir, path); !err.empty()) {
        return err;
    }
    std::ifstream in(path, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    if (std::string_view(magic, 4) == "RIFF") {
        return load_wav(path, out);
    }
    if (std::string_view(magic, 4) == "OggS") {
        return load_opus(path, out);
    }
    return "prompt '" + out.name + "': neither WAV nor Ogg Opus";
}

std::string load_prompts(std::string_view list, const fs::path& prompts_dir,
                         std::vector<prompt>& out) {
    out.clear();
    while (!list.empty()) {
        const auto comma = list.find(',');
        const std::string_view item = trim(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
        if (item.empty()) {
            continue;
        }
        prompt p;
        if (auto err = load_prompt(item, prompts_dir, p); !err.empty()) {
            out.clear();
            return err;
        }
        out.push_back(std::move(p));
    }
    if (out.empty()) {
        return "no prompts given";
    }
    return {};
}

} // namespace callstream::pipeline
