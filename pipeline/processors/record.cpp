#include "pipeline/processors/record.hpp"

#include <algorithm>
#include <cstring>

namespace callstream::pipeline {

record_processor::record_processor(recording_options options,
                                   std::shared_ptr<recording_writer> writer)
    : options_(std::move(options)), writer_(std::move(writer)) {}

record_processor::~record_processor() {
    if (session_ && !stopped_) {
        session_->abandon();
    }
}

void record_processor::on_start(const stream_info& info, processor_output& /*out*/) {
    session_ = std::make_shared<recording_session>(info, options_);
    writer_->add(session_);
    live_session_.store(session_.get(), std::memory_order_release);
}

bool record_processor::backlogged() const noexcept {
    const recording_session* s = live_session_.load(std::memory_order_acquire);
    return s != nullptr && s->backlogged();
}

void record_processor::push_audio(record_item::kind type, const audio_frame& frame) noexcept {
    if (!session_ || stopped_) {
        return;
    }
    // Frames reach us at 8 kHz (rate_hz() is the default); longer frames are split.
    auto pcm = frame.pcm();
    std::int64_t ts = frame.timestamp_ms;
    while (!pcm.empty()) {
        const std::size_t n = std::min(pcm.size(), telephony_frame_samples);
        item_.type = type;
        item_.count = static_cast<std::uint16_t>(n);
        item_.timestamp_ms = ts;
        std::copy_n(pcm.begin(), n, item_.pcm.begin());
        session_->push(item_);
        pcm = pcm.subspan(n);
        ts += static_cast<std::int64_t>(frame_ms);
    }
}

void record_processor::on_audio(const audio_frame& in, processor_output& /*out*/) {
    last_timestamp_ms_ = in.timestamp_ms + static_cast<std::int64_t>(frame_ms);
    push_audio(record_item::kind::caller, in);
}

void record_processor::on_audio_sent(const audio_frame& sent) {
    push_audio(record_item::kind::sent, sent);
}

void record_processor::on_outbound_track(const audio_frame& frame) {
    push_audio(record_item::kind::outbound_track, frame);
}

void record_processor::on_dtmf(char digit, processor_output& /*out*/) {
    if (!session_ || stopped_) {
        return;
    }
    item_.type = record_item::kind::dtmf;
    item_.count = 0;
    item_.digit = digit;
    item_.timestamp_ms = last_timestamp_ms_;
    session_->push(item_);
}

void record_processor::on_mark(std::string_view name, processor_output& /*out*/) {
    if (!session_ || stopped_) {
        return;
    }
    item_.type = record_item::kind::mark;
    item_.count = 0;
    item_.name_size = static_cast<std::uint8_t>(std::min(name.size(), record_item::max_name));
    std::memcpy(item_.name.data(), name.data(), item_.name_size);
    item_.timestamp_ms = last_timestamp_ms_;
    session_->push(item_);
}

void record_processor::on_stop(processor_output& /*out*/) {
    if (session_ && !stopped_) {
        session_->stop();
    }
    stopped_ = true;
}

} // namespace callstream::pipeline
