// Evaluates the voice detectors on the same clips: espeak-ng speech mixed (sox -m) with white
// noise at 20, 10 and 5 dB SNR, digital silence, quiet line noise, and sox-made hold music.
// Prints the table that docs/processors.md quotes, and asserts sane bounds for the default
// barge-in detector (webrtc, likelihood 1, 2 x 10 ms onset).

#include <functional>
#include <map>

#include <gtest/gtest.h>

#include "codec/wav.hpp"
#include "pipeline/voice_detector.hpp"
#include "tests/pipeline/audio_test_util.hpp"

namespace {

using namespace callstream;
using namespace callstream::test;

constexpr std::size_t rate = 8000;
constexpr std::size_t frame = 160; // 20 ms, as the play processor feeds the detector

struct segment {
    std::size_t begin; // samples
    std::size_t end;
};

struct clip {
    std::string name;
    std::vector<std::int16_t> pcm;
    std::vector<segment> speech; // true speech regions, from the clean speech's energy
};

// Speech regions of clean speech: 10 ms blocks within 50 dB of the loudest (the pauses are
// digital silence, so this finds soft starts like "th"), gaps < 300 ms merged.
std::vector<segment> speech_regions(const std::vector<std::int16_t>& pcm) {
    std::vector<segment> out;
    std::size_t pos = 0;
    while (true) {
        const std::size_t on = energy_onset_sample(pcm, pos, 50.0);
        if (on >= pcm.size()) {
            break;
        }
        // Extend while blocks stay active, tolerating gaps shorter than 300 ms.
        std::size_t end = on;
        std::size_t probe = on;
        while (probe < pcm.size()) {
            const std::size_t next = energy_onset_sample(pcm, probe + 80, 50.0);
            if (next >= pcm.size() || next > probe + 80 + 2400) {
                break;
            }
            probe = next;
            end = next + 80;
        }
        out.push_back({on, end});
        pos = end + 2400;
    }
    return out;
}

double rms(const std::vector<std::int16_t>& pcm, const std::vector<segment>& regions) {
    double sum = 0;
    std::size_t n = 0;
    for (const auto& r : regions) {
        for (std::size_t i = r.begin; i < r.end && i < pcm.size(); ++i) {
            sum += static_cast<double>(pcm[i]) * pcm[i];
            ++n;
        }
    }
    return std::sqrt(sum / static_cast<double>(std::max<std::size_t>(n, 1)));
}

void write_wav(const fs::path& path, const std::vector<std::int16_t>& pcm) {
    const auto header =
        codec::wav_header(1, static_cast<int>(rate), pcm.size() * sizeof(std::int16_t));
    std::ofstream out(path, std::ios::binary);
    out.write(reinterpret_cast<const char*>(header.data()),
              static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(pcm.data()),
              static_cast<std::streamsize>(pcm.size() * sizeof(std::int16_t)));
}

struct result {
    std::size_t onsets = 0;
    std::size_t detected = 0;
    std::vector<double> delays_ms;
    std::size_t false_triggers = 0;
    double nonspeech_minutes = 0;

    double median_delay() const {
        if (delays_ms.empty()) {
            return -1;
        }
        auto d = delays_ms;
        std::sort(d.begin(), d.end());
        return d[d.size() / 2];
    }
    double max_delay() const {
        return delays_ms.empty() ? -1 : *std::max_element(delays_ms.begin(), delays_ms.end());
    }
    double false_per_minute() const {
        return nonspeech_minutes > 0 ? static_cast<double>(false_triggers) / nonspeech_minutes : 0;
    }
};

// An onset counts when the detector rises within [onset - 20 ms, onset + 500 ms]; its delay is
// measured to the end of the 20 ms frame that raised it (the earliest a barge-in can act). A
// rise outside every [onset - 20 ms, end + 300 ms] window is a false trigger.
result evaluate(pipeline::voice_detector& vad, const clip& c) {
    result r;
    r.onsets = c.speech.size();
    std::vector<std::size_t> rises; // sample index at the end of the rising frame
    bool prev = false;
    for (std::size_t i = 0; i + frame <= c.pcm.size(); i += frame) {
        const bool now = vad.process(std::span(c.pcm).subspan(i, frame), rate);
        if (now && !prev) {
            rises.push_back(i + frame);
        }
        prev = now;
    }
    if (std::getenv("CALLSTREAM_VAD_DEBUG") != nullptr) {
        for (const auto& s : c.speech) {
            std::printf("  speech %zu..%zu ms\n", s.begin / 8, s.end / 8);
        }
        for (const auto t : rises) {
            std::printf("  rise %zu ms\n", t / 8);
        }
    }
    const std::size_t before = rate / 50;   // 20 ms
    const std::size_t window = rate / 2;    // 500 ms
    const std::size_t tail = rate * 3 / 10; // 300 ms
    for (const auto& s : c.speech) {
        const auto it = std::find_if(rises.begin(), rises.end(), [&](std::size_t t) {
            return t + before >= s.begin && t <= s.begin + window;
        });
        if (it != rises.end()) {
            ++r.detected;
            r.delays_ms.push_back((static_cast<double>(*it) - static_cast<double>(s.begin)) *
                                  1000.0 / rate);
        }
    }
    std::size_t speech_samples = 0;
    for (const auto& s : c.speech) {
        speech_samples +=
            std::min(s.end + tail, c.pcm.size()) - (s.begin - std::min(s.begin, before));
    }
    for (const std::size_t t : rises) {
        const bool in_speech = std::any_of(c.speech.begin(), c.speech.end(), [&](const segment& s) {
            return t + before >= s.begin && t <= s.end + tail;
        });
        r.false_triggers += in_speech ? 0u : 1u;
    }
    r.nonspeech_minutes =
        static_cast<double>(c.pcm.size() - std::min(c.pcm.size(), speech_samples)) / rate / 60.0;
    return r;
}

struct detector_config {
    std::string name;
    std::function<std::unique_ptr<pipeline::voice_detector>()> make;
};

std::vector<clip> make_clips(const temp_dir& dir) {
    const std::vector<std::string> sentences = {"I would like to speak to a person please.",
                                                "Yes.",
                                                "My account number is four two seven.",
                                                "Can you repeat that?",
                                                "No, that is not what I said.",
                                                "Thanks, goodbye."};
    // Clean speech: 1 s lead, then each sentence followed by 1.5 s of silence.
    std::vector<std::int16_t> clean(rate, 0);
    for (std::size_t i = 0; i < sentences.size(); ++i) {
        const auto s = read_mono_pcm16(make_speech(dir, "s" + std::to_string(i), sentences[i]));
        clean.insert(clean.end(), s.begin(), s.end());
        clean.insert(clean.end(), rate * 3 / 2, 0);
    }
    const auto regions = speech_regions(clean);
    write_wav(dir / "clean.wav", clean);
    const double speech_rms = rms(clean, regions);
    const double seconds = static_cast<double>(clean.size()) / rate;

    std::vector<clip> clips;
    clips.push_back({"clean speech", clean, regions});
    // White noise from sox, scaled by sox -m so that speech RMS / noise RMS is the SNR.
    run("sox -R -n -r 8000 -b 16 -c 1 " + quote(dir / "noise.wav") + " synth " +
        std::to_string(seconds) + " whitenoise vol 0.5");
    const auto noise = read_mono_pcm16(dir / "noise.wav");
    const double noise_rms = rms(noise, {{0, noise.size()}});
    for (const int snr : {20, 10, 5}) {
        const double gain = speech_rms / noise_rms / std::pow(10.0, snr / 20.0);
        const fs::path mixed = dir / ("snr" + std::to_string(snr) + ".wav");
        run("sox -R -m -v 1 " + quote(dir / "clean.wav") + " -v " + std::to_string(gain) + " " +
            quote(dir / "noise.wav") + " -b 16 " + quote(mixed));
        clips.push_back(
            {"speech + noise " + std::to_string(snr) + " dB SNR", read_mono_pcm16(mixed), regions});
    }
    clips.push_back({"digital silence 30 s", std::vector<std::int16_t>(30 * rate, 0), {}});
    run("sox -R -n -r 8000 -b 16 -c 1 " + quote(dir / "line.wav") +
        " synth 30 whitenoise vol 0.002");
    clips.push_back({"line noise -60 dBFS 30 s", read_mono_pcm16(dir / "line.wav"), {}});
    // Hold music: a tone sequence of sine and plucked notes, 24 s.
    std::string notes;
    const char* melody[] = {"sine 440", "pluck 523", "sine 659", "pluck 784",
                            "sine 698", "pluck 587", "sine 494", "pluck 392"};
    for (int rep = 0; rep < 6; ++rep) {
        for (const char* n : melody) {
            notes += std::string(notes.empty() ? "" : " : ") + "synth 0.5 " + n + " vol 0.3";
        }
    }
    run("sox -R -n -r 8000 -b 16 -c 1 " + quote(dir / "music.wav") + " " + notes);
    clips.push_back({"hold music 24 s", read_mono_pcm16(dir / "music.wav"), {}});
    return clips;
}

TEST(vad_eval, detectors_on_speech_noise_silence_and_music) {
    temp_dir dir;
    const auto clips = make_clips(dir);
    ASSERT_EQ(clips[0].speech.size(), 6u) << "one onset per sentence";

    std::vector<detector_config> configs;
    for (int likelihood = 0; likelihood <= 3; ++likelihood) {
        configs.push_back({"webrtc L" + std::to_string(likelihood) + " hangover 200 ms", [=] {
                               pipeline::webrtc_vad_options o;
                               o.likelihood = likelihood;
                               o.hangover_frames = 20;
                               return pipeline::make_webrtc_voice_detector(o);
                           }});
    }
    configs.push_back({"webrtc L0 hangover 80 ms", [] {
                           // The defaults of webrtc_vad_options.
                           return pipeline::make_webrtc_voice_detector();
                       }});
    configs.push_back({"webrtc L0 hangover 80 ms onset 10 ms", [] {
                           pipeline::webrtc_vad_options o;
                           o.onset_frames = 1;
                           return pipeline::make_webrtc_voice_detector(o);
                       }});
    configs.push_back({"energy (default)", [] { return pipeline::make_energy_voice_detector(); }});
    configs.push_back({"energy onset 40 ms", [] {
                           pipeline::energy_vad_options o;
                           o.onset_frames = 4;
                           return pipeline::make_energy_voice_detector(o);
                       }});
    configs.push_back({"webrtc L0 + energy (both agree)",
                       [] { return pipeline::make_combined_voice_detector(); }});

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // Sanitizer builds check memory and threads, not detector quality: keep the two asserted
    // configurations so the test stays within a few seconds there.
    std::erase_if(configs, [](const detector_config& c) {
        return c.name != "energy (default)" && c.name != "webrtc L0 hangover 80 ms";
    });
#endif
    std::map<std::pair<std::string, std::string>, result> results;
    std::printf("\n| detector | clip | onsets found | median delay ms | max delay ms | false "
                "triggers/min |\n|---|---|---|---|---|---|\n");
    for (const auto& cfg : configs) {
        for (const auto& c : clips) {
            auto vad = cfg.make();
            ASSERT_NE(vad, nullptr) << cfg.name;
            const result r = evaluate(*vad, c);
            results[{cfg.name, c.name}] = r;
            if (c.speech.empty()) {
                std::printf("| %s | %s | - | - | - | %.1f |\n", cfg.name.c_str(), c.name.c_str(),
                            r.false_per_minute());
            } else {
                std::printf("| %s | %s | %zu/%zu | %.0f | %.0f | %.1f |\n", cfg.name.c_str(),
                            c.name.c_str(), r.detected, r.onsets, r.median_delay(), r.max_delay(),
                            r.false_per_minute());
            }
        }
    }

    const auto at = [&](const std::string& detector, const std::string& clip_name) {
        return results[std::make_pair(detector, clip_name)];
    };
    const char* speech_clips[] = {"clean speech", "speech + noise 20 dB SNR",
                                  "speech + noise 10 dB SNR"};
    const char* quiet_clips[] = {"digital silence 30 s", "line noise -60 dBFS 30 s"};
    // The barge-in default (energy): every onset within 200 ms down to 10 dB SNR, and not one
    // false trigger in silence, line noise or white noise at any SNR.
    for (const char* clip_name : speech_clips) {
        const result r = at("energy (default)", clip_name);
        EXPECT_EQ(r.detected, r.onsets) << clip_name;
        EXPECT_LE(r.max_delay(), 200.0) << clip_name;
    }
    for (const auto& c : clips) {
        if (c.name != "hold music 24 s") {
            EXPECT_EQ(at("energy (default)", c.name).false_triggers, 0u) << c.name;
        }
    }
    // The WebRTC default (likelihood 0 = very low, 20 ms onset, 80 ms hangover): every onset
    // within 200 ms in clean and 20 dB speech; in 10 dB white noise it keeps calling the noise
    // voice and misses some (one or two of six, depending on the sentences), so only most
    // there; never a trigger in silence or line noise.
    for (const char* clip_name : speech_clips) {
        const result r = at("webrtc L0 hangover 80 ms", clip_name);
        if (std::string_view(clip_name) == "speech + noise 10 dB SNR") {
            EXPECT_GE(r.detected, 4u) << clip_name;
        } else {
            EXPECT_EQ(r.detected, r.onsets) << clip_name;
        }
        EXPECT_LE(r.max_delay(), 200.0) << clip_name;
    }
    for (const char* clip_name : quiet_clips) {
        EXPECT_EQ(at("webrtc L0 hangover 80 ms", clip_name).false_triggers, 0u) << clip_name;
    }
}

} // namespace
