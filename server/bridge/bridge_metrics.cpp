#include "server/bridge/bridge_metrics.hpp"

namespace callstream::server::bridge {
namespace {

void line(std::string& out, std::string_view name, std::string_view type, std::string_view help,
          std::uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
}

} // namespace

bridge_metrics::frame_totals bridge_metrics::frame_sums() const noexcept {
    frame_totals t;
    for (const auto& s : frame_shards_.all()) {
        t.frames_to_upstream += s.frames_to_upstream.load(std::memory_order_relaxed);
        t.bytes_to_upstream += s.bytes_to_upstream.load(std::memory_order_relaxed);
        t.frames_from_upstream += s.frames_from_upstream.load(std::memory_order_relaxed);
        t.messages_from_upstream += s.messages_from_upstream.load(std::memory_order_relaxed);
        t.bytes_from_upstream += s.bytes_from_upstream.load(std::memory_order_relaxed);
    }
    return t;
}

void bridge_metrics::observe_connect_ms(std::uint64_t ms) noexcept {
    std::size_t i = 0;
    while (i < connect_bounds_ms.size() && ms > connect_bounds_ms[i]) {
        ++i;
    }
    connect_ms[i].fetch_add(1, std::memory_order_relaxed);
    connect_ms_sum.fetch_add(ms, std::memory_order_relaxed);
}

void bridge_metrics::count_failure(std::string_view reason) {
    const std::lock_guard lock(failures_mutex_);
    auto it = failures_.find(reason);
    if (it == failures_.end()) {
        failures_.emplace(std::string(reason), 1);
    } else {
        ++it->second;
    }
}

namespace {
template <std::size_t N>
std::string_view bounded(std::string_view value, const std::array<std::string_view, N>& known) {
    for (const auto k : known) {
        if (k == value) {
            return k;
        }
    }
    return value.empty() ? std::string_view("none") : std::string_view("other");
}
} // namespace

void bridge_metrics::count_upstream_error(std::string_view type, std::string_view code) {
    const auto key =
        std::make_pair(bounded(type, upstream_error_types), bounded(code, upstream_error_codes));
    const std::lock_guard lock(failures_mutex_);
    ++upstream_errors_[key];
}

void bridge_metrics::render(std::string& out) const {
    auto get = [](const auto& a) { return static_cast<std::uint64_t>(a.load()); };
    const auto sums = frame_sums();
    out += "# HELP callstream_bridges_active Calls bridged to an upstream now\n"
           "# TYPE callstream_bridges_active gauge\ncallstream_bridges_active ";
    out += std::to_string(active.load());
    out += '\n';
    line(out, "callstream_bridge_connects_total", "counter", "Upstream WebSockets opened",
         get(connects));
    line(out, "callstream_bridge_reconnects_total", "counter",
         "Upstream WebSockets reopened by the reconnect policy", get(reconnects));
    line(out, "callstream_bridge_frames_to_upstream_total", "counter",
         "Caller media messages sent upstream", sums.frames_to_upstream);
    line(out, "callstream_bridge_bytes_to_upstream_total", "counter",
         "Bytes of WebSocket messages sent upstream", sums.bytes_to_upstream);
    line(out, "callstream_bridge_frames_from_upstream_total", "counter",
         "20 ms frames of upstream audio released to callers", sums.frames_from_upstream);
    line(out, "callstream_bridge_messages_from_upstream_total", "counter",
         "WebSocket messages received from upstreams", sums.messages_from_upstream);
    line(out, "callstream_bridge_bytes_from_upstream_total", "counter",
         "Bytes of WebSocket messages received from upstreams", sums.bytes_from_upstream);
    line(out, "callstream_bridge_caller_frames_dropped_total", "counter",
         "Caller frames dropped while the upstream was not ready (over the buffer)",
         get(caller_frames_dropped));
    line(out, "callstream_bridge_port_dropped_total", "counter",
         "Upstream events dropped because the call's pipeline did not keep up", get(port_dropped));
    line(out, "callstream_bridge_clears_total", "counter", "Playback clears sent to Twilio",
         get(clears));
    line(out, "callstream_bridge_barge_ins_total", "counter",
         "Barge-ins acted on by a bridge protocol", get(barge_ins));
    line(out, "callstream_bridge_truncations_total", "counter",
         "Truncations sent upstream after a barge-in", get(truncations));
    line(out, "callstream_bridge_prewarm_opened_total", "counter",
         "Upstreams opened by /twiml or /make-call before the stream", get(prewarm_opened));
    line(out, "callstream_bridge_prewarm_adopted_total", "counter",
         "Pre-warmed upstreams adopted by their call's stream", get(prewarm_adopted));
    line(out, "callstream_bridge_prewarm_expired_total", "counter",
         "Pre-warmed upstreams closed unused after the timeout", get(prewarm_expired));
    out += "# HELP callstream_bridge_connect_ms Upstream connect time (TCP, TLS, WebSocket)\n"
           "# TYPE callstream_bridge_connect_ms histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < connect_ms.size(); ++i) {
        cumulative += connect_ms[i].load();
        out += "callstream_bridge_connect_ms_bucket{le=\"";
        out += i < connect_bounds_ms.size() ? std::to_string(connect_bounds_ms[i]) : "+Inf";
        out += "\"} " + std::to_string(cumulative) + "\n";
    }
    out += "callstream_bridge_connect_ms_sum " + std::to_string(connect_ms_sum.load()) + "\n";
    out += "callstream_bridge_connect_ms_count " + std::to_string(cumulative) + "\n";
    out += "# HELP callstream_bridge_failures_total Upstream failures by reason\n"
           "# TYPE callstream_bridge_failures_total counter\n";
    const std::lock_guard lock(failures_mutex_);
    for (const auto& [reason, n] : failures_) {
        out += "callstream_bridge_failures_total{reason=\"" + reason + "\"} " + std::to_string(n) +
               "\n";
    }
    out += "# HELP callstream_bridge_upstream_errors_total Error events upstreams sent, by type "
           "and code\n"
           "# TYPE callstream_bridge_upstream_errors_total counter\n";
    for (const auto& [key, n] : upstream_errors_) {
        out += "callstream_bridge_upstream_errors_total{type=\"";
        out += key.first;
        out += "\",code=\"";
        out += key.second;
        out += "\"} " + std::to_string(n) + "\n";
    }
}

} // namespace callstream::server::bridge
