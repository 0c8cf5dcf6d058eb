#include "server/app/metrics.hpp"

#include <type_traits>

#include "pipeline/pipeline_stats.hpp"

namespace callstream::server {

void latency_histogram::observe(std::uint64_t us) noexcept {
    std::size_t i = 0;
    while (i < bounds_us.size() && us > bounds_us[i]) {
        ++i;
    }
    counts_[i].fetch_add(1, std::memory_order_relaxed);
    sum_us_.fetch_add(us, std::memory_order_relaxed);
}

void latency_histogram::add_to(latency_histogram& into) const noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        into.counts_[i].fetch_add(counts_[i].load(std::memory_order_relaxed),
                                  std::memory_order_relaxed);
    }
    into.sum_us_.fetch_add(sum_us_.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

std::uint64_t latency_histogram::count() const noexcept {
    std::uint64_t n = 0;
    for (const auto& c : counts_) {
        n += c.load(std::memory_order_relaxed);
    }
    return n;
}

void latency_histogram::render(std::string& out, std::string_view name,
                               std::string_view help) const {
    const std::string n(name);
    out += "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
        cumulative += counts_[i].load(std::memory_order_relaxed);
        const std::string le = i < bounds_us.size()
                                   ? std::to_string(static_cast<double>(bounds_us[i]) / 1e6)
                                   : std::string("+Inf");
        out += n + "_bucket{le=\"" + le + "\"} " + std::to_string(cumulative) + "\n";
    }
    out += n + "_sum " +
           std::to_string(static_cast<double>(sum_us_.load(std::memory_order_relaxed)) / 1e6) +
           "\n";
    out += n + "_count " + std::to_string(cumulative) + "\n";
}

metrics::frame_totals metrics::frame_sums() const noexcept {
    frame_totals t;
    for (const auto& s : frame_shards_.all()) {
        t.messages_in += s.messages_in.load(std::memory_order_relaxed);
        t.bytes_in += s.bytes_in.load(std::memory_order_relaxed);
        t.frames_in += s.frame_processing.count();
        t.frames_out += s.frames_out.load(std::memory_order_relaxed);
        t.bytes_out += s.bytes_out.load(std::memory_order_relaxed);
    }
    return t;
}

void metrics::count_close(close_reason r) noexcept {
    streams_closed[static_cast<std::size_t>(r)].fetch_add(1, std::memory_order_relaxed);
}

void metrics::count_http(std::string_view route, unsigned status) {
    const std::lock_guard lock(http_mutex_);
    ++http_requests_[{std::string(route), status}];
}

namespace {
void metric_value(std::string& out, std::string_view name, std::string_view type,
                  std::string_view help, const std::string& value) {
    const std::string n(name);
    out += "# HELP " + n + " " + std::string(help) + "\n# TYPE " + n + " " + std::string(type) +
           "\n" + n + " " + value + "\n";
}

template <typename Value>
void metric(std::string& out, std::string_view name, std::string_view type, std::string_view help,
            const Value& value) {
    if constexpr (std::is_integral_v<Value>) {
        metric_value(out, name, type, help, std::to_string(value));
    } else {
        metric_value(out, name, type, help, std::to_string(value.load(std::memory_order_relaxed)));
    }
}
} // namespace

std::string metrics::render_prometheus() const {
    std::string out;
    out.reserve(4096);
    const frame_totals frames = frame_sums();
    metric(out, "callstream_streams_active", "gauge", "Media streams open now.", streams_active);
    metric(out, "callstream_connections_active", "gauge", "TCP connections open now.",
           connections_active);
    out += "# HELP callstream_streams_closed_total Media streams ended, by reason.\n"
           "# TYPE callstream_streams_closed_total counter\n";
    for (std::size_t i = 0; i < streams_closed.size(); ++i) {
        out += "callstream_streams_closed_total{reason=\"" +
               std::string(to_string(static_cast<close_reason>(i))) + "\"} " +
               std::to_string(streams_closed[i].load(std::memory_order_relaxed)) + "\n";
    }
    metric(out, "callstream_streams_refused_total", "counter",
           "WebSocket upgrades refused because --max-streams was reached.", streams_refused);
    metric(out, "callstream_messages_in_total", "counter", "WebSocket messages received.",
           frames.messages_in);
    metric(out, "callstream_messages_unknown_total", "counter",
           "Messages with an unknown event, ignored.", messages_unknown);
    metric(out, "callstream_frames_in_total", "counter", "Media frames received.",
           frames.frames_in);
    metric(out, "callstream_frames_out_total", "counter", "Media frames sent.", frames.frames_out);
    out += "# HELP callstream_frames_dropped_total Media frames dropped, by cause.\n"
           "# TYPE callstream_frames_dropped_total counter\n"
           "callstream_frames_dropped_total{cause=\"pipeline_full\"} " +
           std::to_string(frames_dropped_pipeline.load(std::memory_order_relaxed)) +
           "\ncallstream_frames_dropped_total{cause=\"cleared\"} " +
           std::to_string(frames_dropped_cleared.load(std::memory_order_relaxed)) +
           "\ncallstream_frames_dropped_total{cause=\"closing\"} " +
           std::to_string(frames_dropped_closing.load(std::memory_order_relaxed)) + "\n";
    const auto& pipe = pipeline::stats();
    // The pipeline's own drops: a recording ring or a DSP inbound ring that was full although
    // the stream stops reading its socket first (both should stay 0).
    out += "callstream_frames_dropped_total{cause=\"recording_full\"} " +
           std::to_string(pipe.recording_items_dropped.load(std::memory_order_relaxed)) +
           "\ncallstream_frames_dropped_total{cause=\"inbound_full\"} " +
           std::to_string(pipe.inbound_dropped.load(std::memory_order_relaxed)) + "\n";
    metric(out, "callstream_stream_writes_waited_total", "counter",
           "Writes to a stream's socket that it could not take at once (a slow reader, or a "
           "peer gone); they finish through the reactor, messages queue up to --outbox-bytes.",
           writes_waited);
    metric(out, "callstream_recording_bytes_total", "counter", "Bytes written to recording files.",
           pipe.recording_bytes);
    metric(out, "callstream_recordings_started_total", "counter", "Recordings opened.",
           pipe.recordings_started);
    metric(out, "callstream_recordings_finished_total", "counter",
           "Recordings finished and flushed.", pipe.recordings_finished);
    metric(out, "callstream_bytes_in_total", "counter", "WebSocket payload bytes received.",
           frames.bytes_in);
    metric(out, "callstream_bytes_out_total", "counter", "WebSocket payload bytes sent.",
           frames.bytes_out);
    metric(out, "callstream_marks_out_total", "counter", "Mark messages sent.", marks_out);
    metric(out, "callstream_clears_out_total", "counter", "Clear messages sent.", clears_out);
    metric(out, "callstream_dtmf_in_total", "counter", "DTMF events received.", dtmf_in);
    metric(out, "callstream_signature_failures_total", "counter",
           "Requests refused for a bad X-Twilio-Signature.", signature_failures);
    latency_histogram frame_processing;
    for (const auto& s : frame_shards_.all()) {
        s.frame_processing.add_to(frame_processing);
    }
    frame_processing.render(out, "callstream_frame_processing_seconds",
                            "Time from a media message parsed to its echo queued.");
    {
        const std::lock_guard lock(http_mutex_);
        out += "# HELP callstream_http_requests_total HTTP requests, by route and status.\n"
               "# TYPE callstream_http_requests_total counter\n";
        for (const auto& [key, count] : http_requests_) {
            out += "callstream_http_requests_total{route=\"" + key.first + "\",status=\"" +
                   std::to_string(key.second) + "\"} " + std::to_string(count) + "\n";
        }
    }
    return out;
}

} // namespace callstream::server
