#pragma once
// The recorder's disk side: one shared thread that turns every recording call's frames into a
// stereo WAV, an Ogg Opus file and a JSON sidecar, so that audio threads never touch a file.
//
// Data flow: record_processor (audio thread) pushes fixed-size record_items into its session's
// SPSC ring (push never blocks, allocates or makes a syscall). The writer thread wakes every
// `poll_ms`, drains every ring, and:
//   - WAV: 8 kHz PCM16 stereo, caller left, what we sent right. Data is written and the RIFF and
//     data sizes are patched every `flush_ms` (250 ms), so a SIGKILLed server leaves a valid
//     file holding everything up to the last flush.
//   - Ogg Opus (codec/ogg_opus_writer.hpp: raw libopus + libogg, a third of libopusenc's
//     cost): each packet is encoded as soon as 20 ms are there, and the page is closed and
//     written straight to the file descriptor every `flush_ms` (no stdio buffer to lose).
//   - JSON sidecar: written at start and rewritten (temp file + rename, never half-written) on
//     every DTMF digit, mark and at the end.
// The right channel is a FIFO of the sent audio consumed one caller frame at a time, so prompts
// sent ahead of real time land where the caller heard them (clears are not modelled: audio Twilio
// dropped on a clear still appears in the right channel).
// A receive-only stream (stream_info::receive_only, a forked call) records its inbound track
// left and its outbound track right instead, each frame placed by its media timestamp (gaps are
// silence); a position is written once both tracks have passed it, or once one track is a
// second ahead of the other, and everything at the end.
//
// Backpressure, not loss: once `backlog_items` wait in a session's ring (the writer is behind,
// e.g. a burst sent faster than real time), backlogged() turns true; the record processor
// reports it (processor::backlogged), the pipeline holds the caller's frames and the server
// stops reading the call's socket, so TCP slows the sender. The ring keeps room for what is
// already in flight; an item that still finds it full is dropped and counted both in the
// sidecar ("dropped_frames") and in pipeline::stats().recording_items_dropped (/metrics).
//
// Ownership: sessions are shared between the processor and the writer (shared_ptr); the writer
// finalises a session once it is stopped or abandoned (the processor was destroyed without
// on_stop) and its ring is empty. Destroying the writer finalises everything it still holds.
// Errors (a directory that cannot be written) are counted in stats() and the session's files
// are skipped; a recording never fails the call.

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pipeline/audio_frame.hpp"
#include "pipeline/processor.hpp"
#include "pipeline/spsc_ring.hpp"

namespace callstream::pipeline {

struct recording_options {
    std::filesystem::path dir = "recordings";
    bool write_wav = true;
    bool write_opus = true;
    // Ogg Opus settings. 16 kHz mono at complexity 1 costs ~45 µs of CPU per 20 ms frame for the
    // encode (bench/micro/micro_processors.cpp, docs/processors.md), so one core records
    // several hundred calls. Mono is the mix of both sides; stereo keeps them apart as in the
    // WAV.
    std::uint32_t opus_rate_hz = 16000; // 8000, 12000, 16000, 24000 or 48000
    int opus_channels = 1;              // 1 or 2
    int opus_bitrate_bps = 24000;
    int opus_complexity = 1; // 0..10
};

// One event from the audio thread. 20 ms of audio at most, mark names truncated to 63 bytes.
struct record_item {
    enum class kind : std::uint8_t { caller, sent, dtmf, mark, outbound_track };
    static constexpr std::size_t max_name = 63;

    kind type = kind::caller;
    char digit = 0;
    std::uint8_t name_size = 0;
    std::uint16_t count = 0;
    std::int64_t timestamp_ms = 0;
    std::array<std::int16_t, telephony_frame_samples> pcm{};
    std::array<char, max_name> name{};
};

struct recording_stats {
    std::uint64_t sessions_finished = 0;
    std::uint64_t file_errors = 0;
};

class recording_writer;

// One call's recording. Created on the network/DSP thread in on_start.
class recording_session {
  public:
    static constexpr std::size_t ring_capacity = 256; // ~2.5 s of caller + sent frames
    // Items waiting at which the session reports a backlog: a quarter of the ring, so that
    // what a DSP worker or the network thread has already taken in still finds room.
    static constexpr std::size_t backlog_items = ring_capacity / 4;

    recording_session(stream_info info, recording_options options);
    ~recording_session();
    recording_session(const recording_session&) = delete;
    recording_session& operator=(const recording_session&) = delete;

    // Audio thread: never blocks, allocates or makes a syscall. False when the ring was full
    // (the item is dropped and counted).
    bool push(const record_item& item) noexcept;
    // Any thread: the writer has not yet taken backlog_items or more items (lock-free read).
    bool backlogged() const noexcept { return ring_.size_approx() >= backlog_items; }
    // Audio thread, once: the call ended normally (Twilio `stop`).
    void stop() noexcept;
    // Owner's thread, once: the processor is going away without stop (dropped call).
    void abandon() noexcept;

    std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
    // Base path of the files without extension: <dir>/<CallSid>_<StreamSid>.
    const std::filesystem::path& base_path() const noexcept { return base_path_; }

  private:
    friend class recording_writer;
    struct files; // writer-thread state (fds, encoder, FIFOs), defined in the .cpp

    spsc_ring<record_item> ring_{ring_capacity};
    std::atomic<bool> stopped_{false};
    std::atomic<bool> abandoned_{false};
    std::atomic<std::int64_t> stop_unix_ms_{0};
    std::atomic<std::uint64_t> dropped_{0};
    const stream_info info_;
    const recording_options options_;
    const std::int64_t start_unix_ms_;
    std::filesystem::path base_path_;
    std::unique_ptr<files> files_;
};

class recording_writer {
  public:
    static constexpr int poll_ms = 20;
    static constexpr int flush_ms = 250;

    recording_writer();
    ~recording_writer();
    recording_writer(const recording_writer&) = delete;
    recording_writer& operator=(const recording_writer&) = delete;

    // The process-wide writer, started on first use.
    static std::shared_ptr<recording_writer> shared();

    // Any thread (on_start): hands a session to the writer thread. Takes a mutex; not for the
    // audio path.
    void add(std::shared_ptr<recording_session> session);
    // Any thread except the writer: returns after the writer has drained every ring, flushed
    // every file and finalised every stopped or abandoned session once. For tests and shutdown.
    void sync();
    recording_stats stats() const;

  private:
    void run();
    bool service(recording_session& s, bool force_flush);

    mutable std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<std::shared_ptr<recording_session>> incoming_;
    std::uint64_t pass_ = 0; // completed writer passes, guarded by mutex_
    bool wake_ = false;      // a sync() wants a pass now
    bool quit_ = false;
    recording_stats stats_;                                    // guarded by mutex_
    std::vector<std::shared_ptr<recording_session>> sessions_; // writer thread only
    std::thread thread_;
};

} // namespace callstream::pipeline
