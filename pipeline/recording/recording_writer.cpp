#include "pipeline/recording/recording_writer.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fcntl.h>
#include <unistd.h>

#include "codec/iso8601.hpp"
#include "codec/json_string.hpp"
#include "codec/ogg_opus_writer.hpp"
#include "codec/wav.hpp"
#include "pipeline/pipeline_stats.hpp"
#include "pipeline/recording/recording_io.hpp"
#include "pipeline/resampler.hpp"

namespace callstream::pipeline {

namespace {

using steady = std::chrono::steady_clock;

std::int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// SIDs come from the network: keep file names to [A-Za-z0-9_-] so no SID can leave `dir`.
std::string safe_name(std::string_view sid) {
    std::string out;
    for (const char c : sid.substr(0, 64)) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-' || c == '_';
        out += ok ? c : '_';
    }
    return out.empty() ? std::string("unknown") : out;
}

bool pwrite_all(int fd, const void* data, std::size_t size, off_t offset) {
    // Header patches rewrite bytes already counted; they do not add to recording_bytes.
    return ::pwrite(fd, data, size, offset) == static_cast<ssize_t>(size);
}

struct dtmf_entry {
    char digit;
    std::int64_t timestamp_ms;
};
struct mark_entry {
    std::string name;
    std::int64_t timestamp_ms;
};

} // namespace

struct recording_session::files {
    bool opened = false;
    bool failed = false;
    bool finished = false;

    int wav_fd = -1;
    std::uint32_t wav_data_bytes = 0; // on disk
    std::vector<std::int16_t> wav_pending;

    int opus_fd = -1;
    std::unique_ptr<codec::ogg_opus_writer> opus;
    // 8 kHz -> opus_rate_hz, one per Opus channel (the resampler is mono); none at 8 kHz.
    std::vector<std::unique_ptr<resampler>> resamplers;
    std::vector<std::int16_t> opus_in[2];        // one channel each, 8 kHz
    std::vector<std::int16_t> opus_resampled[2]; // one channel each, at opus_rate_hz
    std::vector<std::int16_t> opus_interleaved;

    // Sent audio waiting for the caller frame it plays against.
    std::vector<std::int16_t> sent_fifo;
    std::size_t sent_read = 0;
    std::uint64_t sent_overflow = 0;

    // Caller frames are emitted one frame late so the sent frame of the same tick is in the FIFO
    // whatever the processor order ("echo,record" or "record,echo").
    bool have_caller = false;
    record_item caller;

    // Receive-only streams: both tracks placed by their media timestamps. pcm[i] of each track
    // is the sample at stream position aligned_base + i; `high` is where the track's audio
    // ends so far (positions in 8 kHz samples since the stream started).
    struct aligned_track {
        std::vector<std::int16_t> pcm;
        std::int64_t high = 0;
    };
    std::array<aligned_track, 2> aligned; // 0: inbound (left), 1: outbound (right)
    std::int64_t aligned_base = 0;
    std::uint64_t aligned_late = 0; // samples that arrived after their place was written

    std::uint64_t frames = 0;
    std::vector<dtmf_entry> dtmf;
    std::vector<mark_entry> marks;
    bool sidecar_dirty = true;
    steady::time_point last_flush = steady::now();

    ~files() {
        opus.reset();
        if (wav_fd >= 0) {
            ::close(wav_fd);
        }
        if (opus_fd >= 0) {
            ::close(opus_fd);
        }
    }
};

recording_session::recording_session(stream_info info, recording_options options)
    : info_(std::move(info)), options_(std::move(options)), start_unix_ms_(unix_now_ms()),
      base_path_(options_.dir / (safe_name(info_.call_sid) + "_" + safe_name(info_.stream_sid))),
      files_(std::make_unique<files>()) {}

recording_session::~recording_session() = default;

bool recording_session::push(const record_item& item) noexcept {
    if (!ring_.try_push(item)) {
        dropped_.fetch_add(1, std::memory_order_relaxed);
        pipeline::stats().recording_items_dropped.fetch_add(1, std::memory_order_relaxed);
        return false;
    }
    return true;
}

void recording_session::stop() noexcept {
    stop_unix_ms_.store(unix_now_ms(), std::memory_order_relaxed);
    stopped_.store(true, std::memory_order_release);
}

void recording_session::abandon() noexcept {
    stop_unix_ms_.store(unix_now_ms(), std::memory_order_relaxed);
    abandoned_.store(true, std::memory_order_release);
}

namespace {

std::string sidecar_json(const stream_info& info, const recording_options& options,
                         std::int64_t start_ms, std::int64_t stop_ms, std::string_view state,
                         std::uint64_t frames, std::uint64_t dropped,
                         const std::vector<dtmf_entry>& dtmf, const std::vector<mark_entry>& marks,
                         const std::string& base_name) {
    std::string j = "{\n  \"account_sid\": ";
    codec::append_json_string(j, info.account_sid);
    j += ",\n  \"call_sid\": ";
    codec::append_json_string(j, info.call_sid);
    j += ",\n  \"stream_sid\": ";
    codec::append_json_string(j, info.stream_sid);
    j += ",\n  \"custom_parameters\": {";
    for (std::size_t i = 0; i < info.custom_parameters.size(); ++i) {
        j += i == 0 ? "" : ", ";
        codec::append_json_string(j, info.custom_parameters[i].first);
        j += ": ";
        codec::append_json_string(j, info.custom_parameters[i].second);
    }
    j += "},\n  \"start_time\": ";
    codec::append_json_string(j, codec::format_iso8601_utc(start_ms));
    j += ",\n  \"stop_time\": ";
    if (stop_ms != 0) {
        codec::append_json_string(j, codec::format_iso8601_utc(stop_ms));
    } else {
        j += "null";
    }
    j += ",\n  \"state\": ";
    codec::append_json_string(j, state);
    j += ",\n  \"duration_ms\": " + std::to_string(frames * frame_ms);
    j += ",\n  \"dropped_frames\": " + std::to_string(dropped);
    j += ",\n  \"files\": {\"wav\": ";
    codec::append_json_string(j, options.write_wav ? base_name + ".wav" : "");
    j += ", \"opus\": ";
    codec::append_json_string(j, options.write_opus ? base_name + ".opus" : "");
    j += "},\n  \"dtmf\": [";
    for (std::size_t i = 0; i < dtmf.size(); ++i) {
        j += i == 0 ? "" : ", ";
        j += "{\"digit\": ";
        codec::append_json_string(j, std::string_view(&dtmf[i].digit, 1));
        j += ", \"media_timestamp_ms\": " + std::to_string(dtmf[i].timestamp_ms) + "}";
    }
    j += "],\n  \"marks\": [";
    for (std::size_t i = 0; i < marks.size(); ++i) {
        j += i == 0 ? "" : ", ";
        j += "{\"name\": ";
        codec::append_json_string(j, marks[i].name);
        j += ", \"media_timestamp_ms\": " + std::to_string(marks[i].timestamp_ms) + "}";
    }
    j += "]\n}\n";
    return j;
}

bool write_file_atomically(const std::filesystem::path& path, const std::string& text) {
    const std::filesystem::path tmp = path.string() + ".tmp";
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        return false;
    }
    const bool ok = write_recording_bytes(fd, text.data(), text.size());
    ::close(fd);
    return ok && ::rename(tmp.c_str(), path.c_str()) == 0;
}

} // namespace

recording_writer::recording_writer() : thread_([this] { run(); }) {}

recording_writer::~recording_writer() {
    {
        std::lock_guard lock(mutex_);
        quit_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

std::shared_ptr<recording_writer> recording_writer::shared() {
    static const std::shared_ptr<recording_writer> writer = std::make_shared<recording_writer>();
    return writer;
}

void recording_writer::add(std::shared_ptr<recording_session> session) {
    std::lock_guard lock(mutex_);
    incoming_.push_back(std::move(session));
}

void recording_writer::sync() {
    std::unique_lock lock(mutex_);
    // Two full passes: the first may have started before the caller's last push.
    const std::uint64_t target = pass_ + 2;
    while (pass_ < target && !quit_) {
        wake_ = true; // each pass consumes the wake-up: ask again for the second one
        cv_.notify_all();
        const std::uint64_t seen = pass_;
        cv_.wait(lock, [&] { return pass_ != seen || quit_; });
    }
}

recording_stats recording_writer::stats() const {
    std::lock_guard lock(mutex_);
    return stats_;
}

void recording_writer::run() {
    bool quitting = false;
    while (true) {
        {
            std::unique_lock lock(mutex_);
            for (auto& s : incoming_) {
                sessions_.push_back(std::move(s));
            }
            incoming_.clear();
            quitting = quit_;
        }
        // A sync() forces the periodic flushes so tests see everything on disk.
        bool force = quitting;
        {
            std::lock_guard lock(mutex_);
            force = force || wake_;
            wake_ = false;
        }
        std::uint64_t finished = 0;
        std::uint64_t errors = 0;
        for (auto it = sessions_.begin(); it != sessions_.end();) {
            recording_session& s = **it;
            const bool was_failed = s.files_->failed;
            if (quitting && !s.stopped_.load() && !s.abandoned_.load()) {
                s.abandon();
            }
            const bool done = service(s, force);
            errors += (!was_failed && s.files_->failed) ? 1u : 0u;
            if (done) {
                ++finished;
                it = sessions_.erase(it);
            } else {
                ++it;
            }
        }
        {
            std::unique_lock lock(mutex_);
            stats_.sessions_finished += finished;
            pipeline::stats().recordings_finished.fetch_add(finished, std::memory_order_relaxed);
            stats_.file_errors += errors;
            ++pass_;
            cv_.notify_all();
            if (quitting) {
                return;
            }
            cv_.wait_for(lock, std::chrono::milliseconds(poll_ms), [&] { return wake_ || quit_; });
        }
    }
}

// Drains one session; returns true once it is finalised and can be dropped.
bool recording_writer::service(recording_session& s, bool force_flush) {
    auto& f = *s.files_;
    const auto& opt = s.options_;
    const std::string base_name = s.base_path_.filename().string();
    const bool ended =
        s.stopped_.load(std::memory_order_acquire) || s.abandoned_.load(std::memory_order_acquire);

    if (!f.opened) {
        f.opened = true;
        pipeline::stats().recordings_started.fetch_add(1, std::memory_order_relaxed);
        std::error_code ec;
        std::filesystem::create_directories(opt.dir, ec);
        const int flags = O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC;
        if (opt.write_wav) {
            f.wav_fd = ::open((s.base_path_.string() + ".wav").c_str(), flags, 0644);
            const auto header = codec::wav_header(2, static_cast<int>(telephony_rate_hz), 0);
            f.failed =
                f.wav_fd < 0 || !write_recording_bytes(f.wav_fd, header.data(), header.size());
        }
        if (opt.write_opus && !f.failed) {
            f.opus_fd = ::open((s.base_path_.string() + ".opus").c_str(), flags, 0644);
            if (f.opus_fd >= 0) {
                codec::ogg_opus_writer_config o;
                o.rate_hz = static_cast<int>(opt.opus_rate_hz);
                o.channels = opt.opus_channels;
                o.bitrate_bps = opt.opus_bitrate_bps;
                o.complexity = opt.opus_complexity;
                // Pages are closed by our flush every flush_ms; this is only the backstop.
                o.max_page_delay_ms = 1000;
                o.comments = {{"CALLSID", s.info_.call_sid}, {"STREAMSID", s.info_.stream_sid}};
                f.opus = std::make_unique<codec::ogg_opus_writer>();
                const int fd = f.opus_fd;
                if (f.opus->open(o, [fd](std::span<const std::uint8_t> page) {
                        return write_recording_bytes(fd, page.data(), page.size());
                    })) {
                    f.opus.reset();
                }
            }
            f.failed = f.failed || f.opus == nullptr;
            if (opt.opus_rate_hz != telephony_rate_hz) {
                try {
                    for (int c = 0; c < opt.opus_channels; ++c) {
                        f.resamplers.push_back(
                            make_resampler(parse_resampler_spec(default_resampler_spec).spec,
                                           telephony_rate_hz, opt.opus_rate_hz));
                    }
                } catch (const std::exception&) {
                    f.failed = true; // a rate the resampler refuses: no Opus file
                    f.opus.reset();
                }
            }
        }
        const std::size_t frame_values = telephony_frame_samples * 2;
        f.wav_pending.reserve(frame_values * 50);
        for (int c = 0; c < 2; ++c) {
            f.opus_in[c].reserve(telephony_frame_samples);
            f.opus_resampled[c].resize(max_frame_samples);
        }
        f.opus_interleaved.reserve(2 * max_frame_samples);
        f.sent_fifo.reserve(telephony_rate_hz * 4);
    }

    // Writes n stereo samples (WAV, and the Opus mix or pair).
    auto emit_pair = [&](const std::int16_t* left, const std::int16_t* right, std::size_t n) {
        std::size_t wav_at = f.wav_pending.size();
        f.wav_pending.resize(wav_at + 2 * n);
        f.opus_in[0].clear();
        f.opus_in[1].clear();
        for (std::size_t i = 0; i < n; ++i) {
            f.wav_pending[wav_at++] = left[i];
            f.wav_pending[wav_at++] = right[i];
            if (opt.opus_channels == 2) {
                f.opus_in[0].push_back(left[i]);
                f.opus_in[1].push_back(right[i]);
            } else {
                f.opus_in[0].push_back(static_cast<std::int16_t>((left[i] + right[i]) / 2));
            }
        }
        ++f.frames;
        if (f.opus != nullptr) {
            const auto channels = static_cast<std::size_t>(opt.opus_channels);
            std::span<const std::int16_t> planes[2] = {f.opus_in[0], f.opus_in[1]};
            std::size_t samples = n;
            for (std::size_t c = 0; c < f.resamplers.size(); ++c) {
                samples = f.resamplers[c]->process(f.opus_in[c], f.opus_resampled[c]);
                planes[c] = std::span<const std::int16_t>(f.opus_resampled[c]).first(samples);
            }
            f.opus_interleaved.resize(samples * channels);
            for (std::size_t i = 0; i < samples; ++i) {
                for (std::size_t c = 0; c < channels; ++c) {
                    f.opus_interleaved[i * channels + c] = planes[c][i];
                }
            }
            if (f.opus->write(f.opus_interleaved)) {
                f.failed = true;
            }
        }
    };

    // Writes one stereo tick: the held caller frame against the next sent samples.
    auto emit = [&](const record_item& caller) {
        const std::size_t n = caller.count;
        std::array<std::int16_t, telephony_frame_samples> right{};
        for (std::size_t i = 0; i < n; ++i) {
            right[i] = f.sent_read < f.sent_fifo.size() ? f.sent_fifo[f.sent_read++] : 0;
        }
        if (f.sent_read == f.sent_fifo.size()) {
            f.sent_fifo.clear();
            f.sent_read = 0;
        }
        emit_pair(caller.pcm.data(), right.data(), n);
    };

    // Receive-only: puts a frame of one track at its timestamp (gaps stay silent).
    auto place = [&](std::size_t track, const record_item& it) {
        auto& t = f.aligned[track];
        const std::int64_t start =
            it.timestamp_ms * static_cast<std::int64_t>(telephony_rate_hz) / 1000;
        for (std::size_t i = 0; i < it.count; ++i) {
            const std::int64_t pos = start + static_cast<std::int64_t>(i) - f.aligned_base;
            if (pos < 0) {
                ++f.aligned_late;
                continue;
            }
            if (static_cast<std::size_t>(pos) >= t.pcm.size()) {
                // Bounded: a timestamp far ahead of what was written is not a reason to grow.
                if (pos >= static_cast<std::int64_t>(telephony_rate_hz) * 30) {
                    ++f.aligned_late;
                    continue;
                }
                t.pcm.resize(static_cast<std::size_t>(pos) + 1, 0);
            }
            t.pcm[static_cast<std::size_t>(pos)] = it.pcm[i];
        }
        t.high = std::max(t.high, start + static_cast<std::int64_t>(it.count));
    };
    // Receive-only: writes both tracks up to stream position `upto`, 20 ms at a time.
    auto emit_aligned = [&](std::int64_t upto) {
        std::array<std::int16_t, telephony_frame_samples> left{};
        std::array<std::int16_t, telephony_frame_samples> right{};
        std::size_t done = 0;
        const auto total = static_cast<std::size_t>(upto - f.aligned_base);
        while (done < total) {
            const std::size_t n = std::min(total - done, telephony_frame_samples);
            for (std::size_t i = 0; i < n; ++i) {
                const std::size_t at = done + i;
                left[i] = at < f.aligned[0].pcm.size() ? f.aligned[0].pcm[at] : 0;
                right[i] = at < f.aligned[1].pcm.size() ? f.aligned[1].pcm[at] : 0;
            }
            emit_pair(left.data(), right.data(), n);
            done += n;
        }
        for (auto& t : f.aligned) {
            t.pcm.erase(t.pcm.begin(),
                        t.pcm.begin() + static_cast<std::ptrdiff_t>(std::min(total, t.pcm.size())));
        }
        f.aligned_base = upto;
    };
    const bool aligned = s.info_.receive_only;

    record_item item;
    while (s.ring_.try_pop(item)) {
        switch (item.type) {
        case record_item::kind::caller:
            if (aligned) {
                place(0, item);
                break;
            }
            if (f.have_caller) {
                emit(f.caller);
            }
            f.caller = item;
            f.have_caller = true;
            break;
        case record_item::kind::outbound_track:
            if (aligned) {
                place(1, item);
            }
            break;
        case record_item::kind::sent: {
            if (aligned) {
                break; // nothing sent on a receive-only stream reaches the call
            }
            // Bounded: a sender far ahead of the caller (no caller audio) must not grow memory.
            constexpr std::size_t max_fifo = telephony_rate_hz * 30;
            if (f.sent_fifo.size() - f.sent_read + item.count > max_fifo) {
                ++f.sent_overflow;
                break;
            }
            f.sent_fifo.insert(f.sent_fifo.end(), item.pcm.begin(), item.pcm.begin() + item.count);
            break;
        }
        case record_item::kind::dtmf:
            f.dtmf.push_back({item.digit, item.timestamp_ms});
            f.sidecar_dirty = true;
            break;
        case record_item::kind::mark:
            f.marks.push_back({std::string(item.name.data(), item.name_size), item.timestamp_ms});
            f.sidecar_dirty = true;
            break;
        }
    }
    // The ring is empty, and `ended` was read before draining: nothing more will come.
    if (ended && f.have_caller) {
        emit(f.caller);
        f.have_caller = false;
    }
    if (aligned) {
        // Written once both tracks have reached a position, or when one runs more than a
        // second ahead of the other (a track Twilio stopped sending during silence), and in
        // full at the end.
        const std::int64_t lag = telephony_rate_hz;
        const std::int64_t high = std::max(f.aligned[0].high, f.aligned[1].high);
        std::int64_t upto = std::max(std::min(f.aligned[0].high, f.aligned[1].high), high - lag);
        if (ended) {
            upto = high;
        }
        if (upto > f.aligned_base) {
            emit_aligned(upto);
        }
    }

    const auto now = steady::now();
    const bool flush_due =
        force_flush || ended || now - f.last_flush >= std::chrono::milliseconds(flush_ms);
    if (flush_due) {
        f.last_flush = now;
        // Close the Ogg page so the audio so far is on disk and decodable.
        if (f.opus != nullptr && f.opus->flush()) {
            f.failed = true;
        }
    }
    if (flush_due && f.wav_fd >= 0) {
        if (!f.wav_pending.empty()) {
            const std::size_t bytes = f.wav_pending.size() * sizeof(std::int16_t);
            // PCM16 WAV is little-endian, as is every machine we build for.
            if (write_recording_bytes(f.wav_fd, f.wav_pending.data(), bytes)) {
                f.wav_data_bytes += static_cast<std::uint32_t>(bytes);
            } else {
                f.failed = true;
            }
            f.wav_pending.clear();
            const auto header =
                codec::wav_header(2, static_cast<int>(telephony_rate_hz), f.wav_data_bytes);
            f.failed = !pwrite_all(f.wav_fd, header.data(), header.size(), 0) || f.failed;
        }
    }
    if (f.sidecar_dirty || ended) {
        f.sidecar_dirty = false;
        const std::int64_t stop_ms = ended ? s.stop_unix_ms_.load() : 0;
        const char* state = !ended ? "recording" : s.stopped_.load() ? "stopped" : "abandoned";
        write_file_atomically(s.base_path_.string() + ".json",
                              sidecar_json(s.info_, opt, s.start_unix_ms_, stop_ms, state, f.frames,
                                           s.dropped(), f.dtmf, f.marks, base_name));
    }
    if (!ended) {
        return false;
    }
    // Finalise: EOS page with the exact length, closed files.
    if (f.opus != nullptr) {
        f.failed = static_cast<bool>(f.opus->finish()) || f.failed;
        f.opus.reset();
        ::close(f.opus_fd);
        f.opus_fd = -1;
    }
    if (f.wav_fd >= 0) {
        ::close(f.wav_fd);
        f.wav_fd = -1;
    }
    f.finished = true;
    return true;
}

} // namespace callstream::pipeline
