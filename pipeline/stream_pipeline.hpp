#pragma once
// One call's audio path: caller μ-law in, processors, μ-law/marks/clears out.
//
// Threading: the network thread that owns the call's WebSocket calls start/push_*/stop and
// drain. Processing happens inline inside push_* (the --dsp-threads 0 mode). Outbound events
// are buffered until the network thread drains them; the buffer is bounded and a full buffer
// drops media (never marks or clears) and counts it.

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "pipeline/audio_frame.hpp"
#include "pipeline/processor.hpp"

namespace callstream::pipeline {

struct outbound_event {
    enum class kind : std::uint8_t { media, mark, clear };
    static constexpr std::size_t max_mark_name = 256;

    kind type = kind::media;
    std::uint16_t size = 0; // μ-law bytes for media, name bytes for mark
    std::array<std::uint8_t, telephony_frame_samples> ulaw{};
    std::array<char, max_mark_name> name{};

    std::span<const std::uint8_t> media() const noexcept { return {ulaw.data(), size}; }
    std::string_view mark_name() const noexcept { return {name.data(), size}; }
};

struct pipeline_counters {
    std::uint64_t frames_in = 0;
    std::uint64_t frames_out = 0;
    std::uint64_t frames_dropped = 0; // outbound buffer full
};

class stream_pipeline {
  public:
    using processor_chain = std::vector<std::unique_ptr<processor>>;
    static constexpr std::size_t outbound_capacity = 512; // events: ~10 s of 20 ms frames

    explicit stream_pipeline(processor_chain chain);
    ~stream_pipeline();
    stream_pipeline(const stream_pipeline&) = delete;
    stream_pipeline& operator=(const stream_pipeline&) = delete;

    void start(const stream_info& info);
    // One media payload (any length; Twilio sends 160 bytes) of μ-law at 8 kHz.
    void push_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms);
    void push_dtmf(char digit);
    void push_mark(std::string_view name);
    void stop();

    // Hands every pending outbound event to `sink` in order; returns how many.
    template <typename Sink> std::size_t drain(Sink&& sink) {
        std::size_t n = 0;
        for (; !outbound_.empty(); outbound_.pop_front(), ++n) {
            sink(outbound_.front());
        }
        return n;
    }
    bool has_output() const noexcept { return !outbound_.empty(); }
    const pipeline_counters& counters() const noexcept { return counters_; }

  private:
    class output;
    processor_chain chain_;
    std::unique_ptr<output> output_;
    std::deque<outbound_event> outbound_;
    pipeline_counters counters_;
    audio_frame frame_;
};

} // namespace callstream::pipeline
