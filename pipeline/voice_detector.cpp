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

class webrtc_voice_detector final : public voice_detector {
  public:
    explicit webrtc_voice_detector(const webrtc_vad_options& options)
        : options_(options), debounce_(options.onset_frames, options.hangover_frames) {
        init();
    }
    ~webrtc_voice_detector() override { delete apm_; }

    bool ok() const noexcept { return apm_ != nullptr; }

    bool process(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) noexcept override {
        const std::size_t per10 = rate_hz / 100;
        bool speech = debounce_.speech_now();
        while (pcm.size() >= per10) {
            frame_.sample_rate_hz_ = static_cast<int>(rate_hz);
            frame_.num_channels_ = 1;
            frame_.samples_per_channel_ = per10;
            std::memcpy(frame_.data_, pcm.data(), per10 * sizeof(std::int16_t));
            const bool voiced = apm_->ProcessStream(&frame_) == webrtc::AudioProcessing::kNoError &&
                                apm_->voice_detection()->stream_has_voice();
            speech = debounce_.update(voiced);
            pcm = pcm.subspan(per10);
        }
        return speech;
    }

    void reset() noexcept override {
        delete apm_;
        apm_ = nullptr;
        init();
        debounce_.reset();
    }

  private:
    struct tracked_debounce : debounce {
        using debounce::debounce;
        bool update(bool voiced) noexcept { return last_ = debounce::update(voiced); }
        void reset() noexcept {
            debounce::reset();
            last_ = false;
        }
        bool speech_now() const noexcept { return last_; }
        bool last_ = false;
    };

    void init() {
        apm_ = webrtc::AudioProcessing::Create();
        if (apm_ == nullptr) {
            return;
        }
        auto* vd = apm_->voice_detection();
        const int likelihood = std::clamp(options_.likelihood, 0, 3);
        if (vd->Enable(true) != 0 ||
            vd->set_likelihood(static_cast<webrtc::VoiceDetection::Likelihood>(likelihood)) != 0 ||
            vd->set_frame_size_ms(10) != 0) {
            delete apm_;
            apm_ = nullptr;
        }
    }

    webrtc_vad_options options_;
    webrtc::AudioProcessing* apm_ = nullptr;
    webrtc::AudioFrame frame_;
    tracked_debounce debounce_;
};

class energy_voice_detector final : public voice_detector {
  public:
    explicit energy_voice_detector(const energy_vad_options& options)
        : options_(options), debounce_(options.onset_frames, options.hangover_frames) {}

    bool process(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) noexcept override {
        const std::size_t per10 = rate_hz / 100;
        while (pcm.size() >= per10) {
            double sum = 0;
            for (std::size_t i = 0; i < per10; ++i) {
                const double v = pcm[i];
                sum += v * v;
            }
            const double rms = std::sqrt(sum / static_cast<double>(per10)) / 32768.0;
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
            const bool voiced =
                level_db > options_.min_level_dbfs && level_db > floor_db_ + options_.threshold_db;
            speech_ = debounce_.update(voiced);
            pcm = pcm.subspan(per10);
        }
        return speech_;
    }

    void reset() noexcept override {
        debounce_.reset();
        first_ = true;
        speech_ = false;
    }

  private:
    energy_vad_options options_;
    debounce debounce_;
    double floor_db_ = -100.0;
    bool first_ = true;
    bool speech_ = false;
};

} // namespace

std::unique_ptr<voice_detector> make_webrtc_voice_detector(const webrtc_vad_options& options) {
    auto d = std::make_unique<webrtc_voice_detector>(options);
    if (!d->ok()) {
        return nullptr;
    }
    return d;
}

std::unique_ptr<voice_detector> make_energy_voice_detector(const energy_vad_options& options) {
    return std::make_unique<energy_voice_detector>(options);
}

std::unique_ptr<voice_detector> make_voice_detector(std::string_view kind) {
    if (kind == "webrtc") {
        return make_webrtc_voice_detector();
    }
    if (kind == "energy") {
        return make_energy_voice_detector();
    }
    return nullptr;
}

} // namespace callstream::pipeline
