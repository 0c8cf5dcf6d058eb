#include "pipeline/processors/bridge.hpp"

#include <cstring>

#include "codec/g711.hpp"
#include "pipeline/scratch_frames.hpp"

namespace callstream::pipeline {

bool bridge_port::push_media(std::span<const std::uint8_t, telephony_frame_samples> ulaw) {
    if (ring_.try_push_with([&](event& ev) {
            ev.type = event::kind::media;
            std::memcpy(ev.ulaw.data(), ulaw.data(), ulaw.size());
        })) {
        return true;
    }
    frames_dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

bool bridge_port::push_mark(std::string_view name) {
    if (name.size() <= outbound_event::max_mark_name && ring_.try_push_with([&](event& ev) {
            ev.type = event::kind::mark;
            ev.size = static_cast<std::uint16_t>(name.size());
            std::memcpy(ev.name.data(), name.data(), name.size());
        })) {
        return true;
    }
    control_dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

bool bridge_port::push_clear() {
    if (ring_.try_push_with([](event& ev) { ev.type = event::kind::clear; })) {
        return true;
    }
    control_dropped_.fetch_add(1, std::memory_order_relaxed);
    return false;
}

void bridge_processor::emit(processor_output& out) {
    port_->consume([&](const bridge_port::event& ev) {
        switch (ev.type) {
        case bridge_port::event::kind::media: {
            // The pipeline's outbound path is PCM; μ-law -> PCM -> μ-law is exact.
            auto& frame = thread_scratch_frames().bridged;
            frame.rate_hz = telephony_rate_hz;
            frame.count = static_cast<std::uint16_t>(telephony_frame_samples);
            codec::ulaw_decode(ev.ulaw, frame.pcm());
            out.send_audio(frame);
            break;
        }
        case bridge_port::event::kind::mark:
            out.send_mark({ev.name.data(), ev.size});
            break;
        case bridge_port::event::kind::clear:
            out.send_clear();
            break;
        }
    });
}

} // namespace callstream::pipeline
