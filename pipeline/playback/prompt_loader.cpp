#include "pipeline/playback/prompt_loader.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <iterator>
#include <numbers>

#include "codec/ogg_opus_reader.hpp"
#include "codec/wav.hpp"
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

std::vector<std::uint8_t> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::string load_wav(std::span<const std::uint8_t> bytes, prompt& out) {
    codec::wav_audio audio;
    if (const std::error_code ec = codec::wav_decode(bytes, audio)) {
        return "prompt '" + out.name + "': " + ec.message();
    }
    return to_telephony_pcm(audio.samples, audio.channels,
                            static_cast<std::uint32_t>(audio.rate_hz), out.pcm);
}

std::string load_opus(std::span<const std::uint8_t> bytes, prompt& out) {
    codec::ogg_opus_reader reader;
    if (const std::error_code ec = reader.open(bytes)) {
        return "prompt '" + out.name + "': not a readable Ogg Opus file (" + ec.message() + ")";
    }
    std::vector<std::int16_t> pcm;
    std::vector<std::int16_t> buf(5760); // 120 ms at 48 kHz: the longest Opus packet
    for (;;) {
        std::size_t frames = 0;
        if (const std::error_code ec = reader.read(buf, 1, frames)) {
            return "prompt '" + out.name + "': Opus decode error (" + ec.message() + ")";
        }
        if (frames == 0) {
            break;
        }
        pcm.insert(pcm.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(frames));
    }
    out.pcm = resample_clip(prompt_resampler_spec(), codec::ogg_opus_reader::rate_hz,
                            telephony_rate_hz, pcm);
    return {};
}

} // namespace

resampler_spec prompt_resampler_spec() {
    return {resampler_backend::libsamplerate, 1}; // libsamplerate:sinc-medium
}

std::string to_telephony_pcm(const std::vector<float>& interleaved, int channels,
                             std::uint32_t rate_hz, std::vector<std::int16_t>& out) {
    if (channels <= 0 || !is_resampler_rate(rate_hz)) {
        return "bad channel count or rate";
    }
    const auto ch = static_cast<std::size_t>(channels);
    const std::size_t frames = interleaved.size() / ch;
    std::vector<std::int16_t> mono(frames);
    for (std::size_t i = 0; i < frames; ++i) {
        float sum = 0;
        for (std::size_t c = 0; c < ch; ++c) {
            sum += interleaved[i * ch + c];
        }
        const float v = std::clamp(sum / static_cast<float>(ch) * 32768.0f, -32768.0f, 32767.0f);
        mono[i] = static_cast<std::int16_t>(std::lround(v));
    }
    out = resample_clip(prompt_resampler_spec(), rate_hz, telephony_rate_hz, mono);
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
    const std::vector<std::uint8_t> bytes = read_file(path);
    const std::string_view magic(reinterpret_cast<const char*>(bytes.data()),
                                 std::min<std::size_t>(bytes.size(), 4));
    if (magic == "RIFF") {
        return load_wav(bytes, out);
    }
    if (magic == "OggS") {
        return load_opus(bytes, out);
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
