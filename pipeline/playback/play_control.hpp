#pragma once
// The mailbox through which the server's HTTP routes (POST /streams/{streamSid}/play and
// /streams/{streamSid}/clear) command a running stream's play processor.
//
// Wiring: make_processor_chain() returns the chain's play_control (null when the chain has no
// "play"). The server keeps that shared_ptr next to the stream's session, keyed by streamSid,
// and calls play()/clear() on it from any thread. The play processor polls the mailbox at the
// start of every on_audio (every 20 ms of caller audio), so a command takes effect within one
// frame; nothing is woken.
//
// Threads: play() and clear() may be called from any number of threads except the stream's
// audio thread; a mutex serialises callers (never held by the audio thread). The audio side
// (poll, retire) is lock-free: two pipeline/spsc_ring.hpp rings (the mutex makes the server side
// one producer at a time, which is all the ring needs). Prompts are loaded by
// play() on the calling thread, so the audio thread never reads a file; the audio thread hands
// finished prompt batches back through the `retired` ring and they are freed by the next play()
// or by the destructor, so the audio thread never frees memory either.
//
// Lifetime: shared by the processor and the server; either may outlive the other.

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/playback/prompt_loader.hpp"
#include "pipeline/spsc_ring.hpp"

namespace callstream::pipeline {

struct prompt_batch {
    std::vector<prompt> prompts;
};

// One mailbox entry (at namespace scope so that the ring can default-construct its slots while
// play_control is still incomplete).
struct play_command {
    enum class kind : std::uint8_t { play, clear };
    kind type = kind::play;
    prompt_batch* batch = nullptr; // owned by the receiver for kind::play
};

class play_control {
  public:
    static constexpr std::size_t command_capacity = 16;
    static constexpr int max_live_batches = 32;

    explicit play_control(std::filesystem::path prompts_dir);
    ~play_control();
    play_control(const play_control&) = delete;
    play_control& operator=(const play_control&) = delete;

    // --- server side: any thread except the stream's audio thread ---

    // Loads `prompt_list` (comma-separated prompt names or tone:<hz>:<ms>, as in the `play`
    // custom parameter) and queues it after whatever is playing. Returns an error text, empty
    // when queued: a refused or missing prompt (HTTP 400/404), or a full mailbox (HTTP 503).
    // Reads and resamples files on the calling thread: run it off the network threads.
    std::string play(std::string_view prompt_list);
    // Stops the prompt, drops the queue and sends `clear` (barge-in from outside). False when
    // the mailbox is full.
    bool clear();

    // --- audio side: the play processor only ---

    using command = play_command;
    bool poll(command& out) noexcept;
    // Gives a batch back to be freed off the audio thread. Never blocks or frees.
    void retire(prompt_batch* batch) noexcept;
    // For on_start: a batch that counts toward max_live_batches (allocates; not per frame).
    prompt_batch* adopt(std::vector<prompt> prompts);

    const std::filesystem::path& prompts_dir() const noexcept { return prompts_dir_; }

  private:
    void free_retired(); // producer side, under mutex_

    const std::filesystem::path prompts_dir_;
    std::mutex mutex_; // serialises producers only
    spsc_ring<command> commands_{command_capacity};
    // Sized so it can never fill: at most max_live_batches exist at once.
    spsc_ring<prompt_batch*> retired_{max_live_batches * 2};
    std::atomic<int> live_batches_{0};
};

} // namespace callstream::pipeline
