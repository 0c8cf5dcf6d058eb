#include "pipeline/voice_detector.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include <webrtc/modules/audio_processing/include/audio_processing.h>
#include <webrtc/modules/interface/module_common_types.h>

namespace callstream::pipeline {

namespace {

// Shared debounce: onset after N voiced 10 ms frames, offset after M unvoiced ones.
class debounce {
  public:
    debounce(int onset, int hangover) : onset_(onset), hangover_(hangover) {}
    bool update(bool voiced) noexcept {
        if (voiced) {
            run_ = std::min(run_ + 1, onset_);
            quiet_ = 0;
            if (run_ >= onset_) {
                speech_ = true;
            }
        } else {
            run_ = 0;
            if (speech_ && ++quiet_ >= hangover_) {
                speech_ = false;
            }
        }
        return speech_;
    }
    void reset() noexcept { run_ = quiet_ = 0, speech_ = false; }

  private:
    int onset_;
    int hangover_;
    int run_ = 0;
    int quiet_ = 0;
    bool speech_ = false;
};

// Per-10 ms raw classifiers; debounced_detector turns them into a voice_detector.

class webrtc_classifier {
  public:
    explicit webrtc_classifier(int likelihood) : likelihood_(std::clamp(likelihood, 0, 3)) {
        init();
    }
    ~webrtc_classifier() { delete apm_; }
    webrtc_classifier(const webrtc_classifier&) = delete;
    webrtc_classifier& operator=(const webrtc_classifier&) = delete;

    bool ok() const noexcept { return apm_ != nullptr; }
    bool classify(std::span<const std::int16_t> pcm10, std::uint32_t rate_hz) noexcept {
        frame_.sample_rate_hz_ = static_cast<int>(rate_hz);
        frame_.num_channels_ = 1;
        frame_.samples_per_channel_ = pcm10.size();
        std::memcpy(frame_.data_, pcm10.data(), pcm10.size_bytes());
        return apm_->ProcessStream(&frame_) == webrtc::AudioProcessing::kNoError &&
               apm_->voice_detection()->stream_has_voice();
    }
    void reset() noexcept {
        delete apm_;
        apm_ = nullptr;
        init(); // a fresh APM re-learns the background; not for the audio path
    }

  private:
    void init() {
        apm_ = webrtc::AudioProcessing::Create();
        if (apm_ == nullptr) {
            return;
        }
        auto* vd = apm_->voice_detection();
        if (vd->Enable(true) != 0 ||
            vd->set_likelihood(static_cast<webrtc::VoiceDetection::Likelihood>(likelihood_)) != 0 ||
            vd->set_frame_size_ms(10) != 0) {
            delete apm_;
            apm_ = nullptr;
        }
    }

    int likelihood_;
    webrtc::AudioProcessing* apm_ = nullptr;
    webrtc::AudioFrame frame_;
};

class energy_classifier {
  public:
    explicit energy_classifier(const energy_vad_options& options) : options_(options) {}
    bool ok() const noexcept { return true; }
    bool classify(std::span<const std::int16_t> pcm10, std::uint32_t /*rate_hz*/) noexcept {
        double sum = 0;
        for (const std::int16_t s : pcm10) {
            const double v = s;
            sum += v * v;
        }
        const double rms = std::sqrt(sum / static_cast<double>(pcm10.size())) / 32768.0;
        const double level_db = 20.0 * std::log10(std::max(rms, 1e-7));
        // The floor drops at once to a quieter frame and rises slowly, so it tracks the
        // background between words but not the words themselves.
        if (first_) {
            floor_db_ = level_db;
            first_ = false;
        } else if (level_db < floor_db_) {
            floor_db_ = level_db;
        } else {
            floor_db_ = std::min(level_db, floor_db_ + options_.floor_rise_db_per_s / 100.0);
        }
        return level_db > options_.min_level_dbfs && level_db > floor_db_ + options_.threshold_db;
    }
    void reset() noexcept { first_ = true; }

  private:
    energy_vad_options options_;
    double floor_db_ = -140.0;
    bool first_ = true;
};

// Both must agree: WebRTC's spectral model, gated by an energy rise over the background.
class combined_classifier {
  public:
    combined_classifier(int likelihood, const energy_vad_options& options)
        : webrtc_(likelihood), energy_(options) {}
    bool ok() const noexcept { return webrtc_.ok(); }
    bool classify(std::span<const std::int16_t> pcm10, std::uint32_t rate_hz) noexcept {
        const bool e = energy_.classify(pcm10, rate_hz); // always run: keeps the floor current
        const bool w = webrtc_.classify(pcm10, rate_hz);
        return e && w;
    }
    void reset() noexcept {
        webrtc_.reset();
        energy_.reset();
    }

  private:
    webrtc_classifier webrtc_;
    energy_classifier energy_;
};

template <typename Classifier> class debounced_detector final : public voice_detector {
  public:
    template <typename... Args>
    debounced_detector(int onset_frames, int hangover_frames, Args&&... args)
        : classifier_(std::forward<Args>(args)...), debounce_(onset_frames, hangover_frames) {}

    bool ok() const noexcept { return classifier_.ok(); }

    bool process(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) noexcept override {
        const std::size_t per10 = rate_hz / 100;
        while (pcm.size() >= per10) {
            speech_ = debounce_.update(classifier_.classify(pcm.first(per10), rate_hz));
            pcm = pcm.subspan(per10);
        }
        return speech_;
    }
    void reset() noexcept override {
        classifier_.reset();
        debounce_.reset();
        speech_ = false;
    }

  private:
    Classifier classifier_;
    debounce debounce_;
    bool speech_ = false;
};

template <typename Detector> std::unique_ptr<voice_detector> checked(std::unique_ptr<Detector> d) {
    if (!d->ok()) {
        return nullptr;
    }
    return d;
}

} // namespace

std::unique_ptr<voice_detector> make_webrtc_voice_detector(const webrtc_vad_options& options) {
    return checked(std::make_unique<debounced_detector<webrtc_classifier>>(
        options.onset_frames, options.hangover_frames, options.likelihood));
}

std::unique_ptr<voice_detector> make_energy_voice_detector(const energy_vad_options& options) {
    return checked(std::make_unique<debounced_detector<energy_classifier>>(
        options.onset_frames, options.hangover_frames, options));
}

std::unique_ptr<voice_detector> make_combined_voice_detector(const webrtc_vad_options& webrtc,
                                                             const energy_vad_options& energy) {
    return checked(std::make_unique<debounced_detector<combined_classifier>>(
        webrtc.onset_frames, webrtc.hangover_frames, webrtc.likelihood, energy));
}

std::unique_ptr<voice_detector> make_voice_detector(std::string_view kind) {
    if (kind == "webrtc") {
        return make_webrtc_voice_detector();
    }
    if (kind == "energy") {
        return make_energy_voice_detector();
    }
    if (kind == "webrtc+energy") {
        return make_combined_voice_detector();
    }
    return nullptr;
}

} // namespace callstream::pipeline
