#include "pipeline/processors/play.hpp"

#include <algorithm>
#include <charconv>

namespace callstream::pipeline {

namespace {

constexpr std::string_view mark_prefix = "play:";

// "play:<gen>:<index>" -> gen; false for marks that are not ours.
bool parse_mark(std::string_view name, std::uint32_t& gen) {
    if (!name.starts_with(mark_prefix)) {
        return false;
    }
    name.remove_prefix(mark_prefix.size());
    const auto [end, ec] = std::from_chars(name.data(), name.data() + name.size(), gen);
    return ec == std::errc{} && end != name.data() + name.size() && *end == ':';
}

} // namespace

play_processor::play_processor(play_options options, std::shared_ptr<play_control> control)
    : options_(std::move(options)), control_(std::move(control)) {
    if (!control_) {
        control_ = std::make_shared<play_control>(options_.prompts_dir);
    }
}

play_processor::~play_processor() {
    while (queued_ > 0) {
        retire_front();
    }
}

void play_processor::on_start(const stream_info& info, processor_output& /*out*/) {
    if (options_.barge_in && options_.vad != "none") {
        vad_ = make_voice_detector(options_.vad);
        if (!vad_) {
            start_error_ = "voice detector '" + options_.vad + "' unavailable";
        }
    }
    const std::string_view list = info.parameter("play");
    if (list.empty()) {
        return;
    }
    std::vector<prompt> prompts;
    if (auto err = load_prompts(list, control_->prompts_dir(), prompts); !err.empty()) {
        start_error_ = std::move(err);
        return;
    }
    enqueue(control_->adopt(std::move(prompts)));
}

void play_processor::enqueue(prompt_batch* batch) noexcept {
    if (queued_ == max_batches) {
        control_->retire(batch);
        return;
    }
    batches_[(head_ + queued_) % max_batches] = batch;
    ++queued_;
}

void play_processor::retire_front() noexcept {
    control_->retire(batches_[head_]);
    batches_[head_] = nullptr;
    head_ = (head_ + 1) % max_batches;
    --queued_;
    prompt_index_ = 0;
    sample_pos_ = 0;
}

void play_processor::on_audio(const audio_frame& in, processor_output& out) {
    now_ms_ = in.timestamp_ms + static_cast<std::int64_t>(in.count) * 1000 / in.rate_hz;

    play_control::command cmd;
    while (control_->poll(cmd)) {
        if (cmd.type == play_control::command::kind::play) {
            enqueue(cmd.batch);
        } else {
            stop_playback(out, false);
        }
    }

    if (vad_) {
        const bool speech = vad_->process(in.pcm(), in.rate_hz);
        const bool onset = speech && !speech_;
        speech_ = speech;
        if (onset && playing()) {
            stop_playback(out, true);
        }
    }
    pump(now_ms_, out);
}

void play_processor::pump(std::int64_t now_ms, processor_output& out) noexcept {
    // Twilio's buffer has run dry if what we sent ends before now.
    queued_end_ms_ = std::max(queued_end_ms_, now_ms);
    while (queued_ > 0 && queued_end_ms_ < now_ms + options_.lead_ms) {
        prompt_batch& batch = *batches_[head_];
        if (prompt_index_ >= batch.prompts.size()) {
            retire_front();
            continue;
        }
        const std::vector<std::int16_t>& pcm = batch.prompts[prompt_index_].pcm;
        const std::size_t n = std::min(telephony_frame_samples, pcm.size() - sample_pos_);
        std::copy_n(pcm.begin() + static_cast<std::ptrdiff_t>(sample_pos_), n,
                    frame_.samples.begin());
        std::fill(frame_.samples.begin() + static_cast<std::ptrdiff_t>(n),
                  frame_.samples.begin() + telephony_frame_samples, std::int16_t{0});
        frame_.count = telephony_frame_samples;
        frame_.rate_hz = telephony_rate_hz;
        frame_.timestamp_ms = queued_end_ms_;
        if (n > 0) {
            out.send_audio(frame_);
            ++stats_.frames_sent;
            queued_end_ms_ += frame_ms;
        }
        sample_pos_ += n;
        if (sample_pos_ >= pcm.size()) {
            // End of this prompt: the mark tells us when the caller has heard it.
            // "play:<gen>:<index>": two 10-digit numbers always fit in 32 bytes.
            std::array<char, 32> name{};
            char* const end = name.data() + name.size();
            char* p = std::copy(mark_prefix.begin(), mark_prefix.end(), name.data());
            p = std::to_chars(p, end - 12, stats_.generation).ptr;
            p = std::fill_n(p, 1, ':');
            p = std::to_chars(p, end, mark_index_).ptr;
            out.send_mark(std::string_view(name.data(), static_cast<std::size_t>(p - name.data())));
            ++mark_index_;
            ++pending_marks_;
            ++stats_.marks_sent;
            ++prompt_index_;
            sample_pos_ = 0;
        }
    }
}

void play_processor::stop_playback(processor_output& out, bool barge_in) noexcept {
    out.send_clear();
    ++stats_.clears;
    stats_.barge_ins += barge_in ? 1 : 0;
    stats_.last_clear_ms = now_ms_;
    ++stats_.generation;
    mark_index_ = 0;
    pending_marks_ = 0;
    while (queued_ > 0) {
        retire_front();
    }
    // Twilio dropped its buffer: new audio plays from now.
    queued_end_ms_ = now_ms_;
}

void play_processor::on_dtmf(char digit, processor_output& out) {
    if (options_.barge_in && (digit == '#' || digit == '*') && playing()) {
        stop_playback(out, true);
    }
}

void play_processor::on_mark(std::string_view name, processor_output& /*out*/) {
    std::uint32_t gen = 0;
    if (!parse_mark(name, gen)) {
        return;
    }
    if (gen != stats_.generation || pending_marks_ == 0) {
        ++stats_.marks_ignored;
        return;
    }
    --pending_marks_;
    ++stats_.marks_played;
}

void play_processor::on_stop(processor_output& /*out*/) {
    while (queued_ > 0) {
        retire_front();
    }
}

} // namespace callstream::pipeline
