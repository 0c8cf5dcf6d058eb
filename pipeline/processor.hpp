#pragma once
// The processor interface: what a call does with its audio (echo, record, play, ...).
//
// Calling thread: every method of one processor instance is called from one thread at a time,
// the DSP worker that owns its stream (or the network thread with --dsp-threads 0). Processors
// must not block, lock, log or allocate in on_audio (real-time rules); setup work belongs in
// on_start. Audio arrives at rate_hz(); the pipeline resamples both ways when it is not 8 kHz.
// Frames are 20 ms (audio_frame.hpp: 160 samples at 8 kHz, 320 at 16 kHz, ...).
// Ownership: the stream_pipeline owns its processors; the processor_output passed to a call is
// valid only during that call. Errors: processors must not throw (in DSP mode they run inside
// the worker's noexcept run(), where a throw ends the process); they report problems through
// their own state (counters, play's start_error(), the recorder's file_errors).

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "pipeline/audio_frame.hpp"

namespace callstream::pipeline {

// What Twilio's `start` message told us about the stream. Copied once at start.
struct stream_info {
    std::string account_sid;
    std::string call_sid;
    std::string stream_sid;
    std::vector<std::pair<std::string, std::string>> custom_parameters;
    // A receive-only stream (<Start><Stream>, e.g. a forked call): nothing processors send
    // reaches the call, and with both tracks the outbound one arrives through
    // on_outbound_track.
    bool receive_only = false;

    // The value of a custom parameter, or `fallback` when it is absent.
    std::string_view parameter(std::string_view name, std::string_view fallback = {}) const {
        for (const auto& [key, value] : custom_parameters) {
            if (key == name) {
                return value;
            }
        }
        return fallback;
    }
};

// Where a processor sends things back into the call. Audio is at the processor's rate_hz().
class processor_output {
  public:
    virtual void send_audio(const audio_frame& frame) = 0;
    virtual void send_mark(std::string_view name) = 0;
    virtual void send_clear() = 0;

  protected:
    ~processor_output() = default;
};

class processor {
  public:
    virtual ~processor() = default;

    // The rate this processor wants its audio at: 8000, 16000, 24000 or 48000.
    virtual std::uint32_t rate_hz() const noexcept { return telephony_rate_hz; }

    virtual void on_start(const stream_info& /*info*/, processor_output& /*out*/) {}
    // One frame of the caller's audio.
    virtual void on_audio(const audio_frame& in, processor_output& out) = 0;
    // A frame this stream sent to the caller (any processor's), at 8 kHz, for recorders.
    virtual void on_audio_sent(const audio_frame& /*sent*/) {}
    // Receive-only streams with both tracks: one frame of the call's outbound track (what
    // Twilio plays into the call, e.g. the dialled party's voice), at 8 kHz, with its media
    // timestamp. Same thread and rules as on_audio.
    virtual void on_outbound_track(const audio_frame& /*frame*/) {}
    virtual void on_dtmf(char /*digit*/, processor_output& /*out*/) {}
    // Twilio echoed a mark: the audio queued before it has played (or was cleared).
    virtual void on_mark(std::string_view /*name*/, processor_output& /*out*/) {}
    virtual void on_stop(processor_output& /*out*/) {}
    // stream_pipeline::push_wake(): something outside the caller's audio has output for this
    // processor (the bridge's upstream audio); a processor with no such source ignores it.
    virtual void on_wake(processor_output& /*out*/) {}

    // Any thread (the network thread asks while the processor runs on its DSP worker); must be
    // a lock-free read. True while work this processor handed to another thread is piling up
    // (the recorder's disk writer is behind). The pipeline then holds the caller's frames and
    // the stream stops reading its socket until it is false again: TCP slows the sender
    // instead of the processor dropping audio the call accepted.
    virtual bool backlogged() const noexcept { return false; }
};

} // namespace callstream::pipeline
