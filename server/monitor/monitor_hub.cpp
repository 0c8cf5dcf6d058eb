#include "server/monitor/monitor_hub.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <boost/asio/post.hpp>

#include "codec/g711.hpp"
#include "codec/json_string.hpp"
#include "server/bridge/bridge_service.hpp"

namespace callstream::server::monitor {
namespace {

// A peak magnitude code (stream_tap.hpp) as dBFS, -100 for digital silence.
double peak_dbfs(std::uint8_t code) {
    if (code == 0) {
        return -100.0;
    }
    // ~code has the top bit set: the positive μ-law byte of that magnitude.
    const double mag = std::abs(codec::ulaw_to_linear(static_cast<std::uint8_t>(~code)));
    return 20.0 * std::log10(std::max(mag, 1.0) / 32768.0);
}

// Speech on a phone line peaks well above -30 dBFS; line noise stays under -45.
constexpr double speaking_dbfs = -40.0;
constexpr std::int64_t event_window_ms = 2000;

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

void append_leg(std::string& out, std::string_view name, std::uint8_t peak) {
    char buf[96];
    const double db = peak_dbfs(peak);
    std::snprintf(buf, sizeof buf, "\"%.*s\":{\"level_dbfs\":%.1f,\"speaking\":%s}",
                  static_cast<int>(name.size()), name.data(), db,
                  db >= speaking_dbfs ? "true" : "false");
    out += buf;
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
    out += '"';
    out += name;
    out += "\":";
    codec::append_json_string(out, value);
    out += ',';
}

} // namespace

monitor_hub::monitor_hub(boost::asio::any_io_executor timer_executor, token_signer tokens,
                         std::shared_ptr<const monitor_assets> assets,
                         std::shared_ptr<bridge::bridge_service> bridge, std::string instance_id)
    : timer_(std::move(timer_executor)), tokens_(std::move(tokens)), assets_(std::move(assets)),
      bridge_(std::move(bridge)), instance_id_(std::move(instance_id)) {}

void monitor_hub::set_cluster(std::shared_ptr<cluster_view> view, std::string instance_id) {
    cluster_ = std::move(view);
    instance_id_ = std::move(instance_id);
}

std::shared_ptr<stream_tap> monitor_hub::open_tap(call_facts facts) {
    auto tap = std::make_shared<stream_tap>(std::move(facts));
    const std::lock_guard lock(mutex_);
    taps_[tap->facts().stream_sid] = tap;
    full_due_ = true; // watchers learn the new call's facts at the next tick
    return tap;
}

void monitor_hub::close_tap(const std::shared_ptr<stream_tap>& tap) {
    const std::lock_guard lock(mutex_);
    const auto it = taps_.find(tap->facts().stream_sid);
    if (it != taps_.end() && it->second == tap) {
        taps_.erase(it);
    }
}

std::shared_ptr<stream_tap> monitor_hub::find(std::string_view stream_sid) const {
    const std::lock_guard lock(mutex_);
    const auto it = taps_.find(std::string(stream_sid));
    return it == taps_.end() ? nullptr : it->second;
}

bool monitor_hub::running(const stream_tap& tap) const {
    const std::lock_guard lock(mutex_);
    const auto it = taps_.find(tap.facts().stream_sid);
    return it != taps_.end() && it->second.get() == &tap;
}

void monitor_hub::add_watcher(const std::shared_ptr<watcher>& w) {
    bool start = false;
    {
        const std::lock_guard lock(mutex_);
        watchers_.push_back(w);
        full_due_ = true;
        start = !ticking_;
        ticking_ = true;
    }
    if (start) {
        boost::asio::post(timer_.get_executor(),
                          [self = shared_from_this()] { self->schedule_tick(); });
    }
}

std::size_t monitor_hub::watchers() const {
    const std::lock_guard lock(mutex_);
    return watchers_.size();
}

void monitor_hub::schedule_tick() {
    timer_.expires_after(tick);
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
        if (!ec) {
            self->on_tick();
        }
    });
}

void monitor_hub::on_tick() {
    std::vector<std::shared_ptr<watcher>> live;
    {
        const std::lock_guard lock(mutex_);
        std::erase_if(watchers_, [](const std::weak_ptr<watcher>& w) { return w.expired(); });
        for (const auto& w : watchers_) {
            if (auto p = w.lock()) {
                live.push_back(std::move(p));
            }
        }
        if (live.empty()) {
            ticking_ = false; // nobody watches: no timer, no cost
            return;
        }
    }
    // One snapshot per tick, shared by every watcher: every call's facts once a second, when
    // a call or a watcher is new, and only levels and counters in between.
    // The other instances' calls: one EVAL at most every cluster_view::refresh_every, its
    // answer used from the tick after it arrives; a change is sent at once as a full snapshot.
    bool cluster_changed = false;
    if (cluster_) {
        cluster_->refresh();
        const auto version = cluster_->current().version;
        cluster_changed = version != cluster_version_;
        cluster_version_ = version;
    }
    bool full = false;
    {
        const std::lock_guard lock(mutex_);
        full = full_due_ || cluster_changed || ticks_ % full_every == 0;
        full_due_ = false;
        ++ticks_;
    }
    const auto snapshot = std::make_shared<const std::string>(snapshot_json(full));
    for (const auto& w : live) {
        w->offer(snapshot, full);
    }
    schedule_tick();
}

std::string monitor_hub::snapshot_json(bool full) {
    std::vector<std::shared_ptr<stream_tap>> taps;
    {
        const std::lock_guard lock(mutex_);
        taps.reserve(taps_.size());
        for (const auto& [sid, tap] : taps_) {
            taps.push_back(tap);
        }
    }
    std::sort(taps.begin(), taps.end(),
              [](const auto& a, const auto& b) { return a->facts().started < b->facts().started; });
    const auto now = std::chrono::system_clock::now();
    std::string out = std::string("{\"type\":\"") + (full ? "snapshot" : "levels") +
                      "\",\"at\":" + std::to_string(unix_ms(now)) + ",";
    cluster_view::state cluster;
    if (full) {
        append_field(out, "instance", instance_id_);
        if (cluster_) {
            cluster = cluster_->current();
            out += "\"cluster\":{\"ok\":";
            out += cluster.ok ? "true" : "false";
            out += ",\"error\":";
            codec::append_json_string(out, cluster.error);
            out += ",\"remote_calls\":" + std::to_string(cluster.calls->size()) + "},";
        }
    }
    out += "\"calls\":[";
    bool first = true;
    for (const auto& tap : taps) {
        const auto r = tap->take_reading();
        out += first ? "" : ",";
        first = false;
        if (full) {
            append_call(out, *tap, r, now);
        } else {
            append_levels(out, *tap, r, now);
        }
    }
    if (full && cluster.calls) {
        append_remote(out, cluster, first, now);
    }
    out += "]}";
    return out;
}

void monitor_hub::append_call(std::string& out, const stream_tap& tap, const stream_tap::reading& r,
                              std::chrono::system_clock::time_point now) const {
    const auto& f = tap.facts();
    out += '{';
    append_field(out, "instance", instance_id_);
    append_field(out, "call_sid", f.call_sid);
    append_field(out, "stream_sid", f.stream_sid);
    append_field(out, "from", f.from);
    append_field(out, "to", f.to);
    append_field(out, "app", f.app);
    out += "\"receive_only\":";
    out += f.receive_only ? "true," : "false,";
    out += "\"started\":" + std::to_string(unix_ms(f.started)) + ",";
    out += "\"duration_ms\":" + std::to_string(unix_ms(now) - unix_ms(f.started)) + ",";
    std::string bridge_json = f.bridged && bridge_ ? bridge_->describe(f.call_sid) : "";
    out += "\"bridge\":" + (bridge_json.empty() ? std::string("null") : bridge_json) + ",";
    append_leg(out, "caller", r.caller_peak);
    out += ',';
    append_leg(out, "outbound", r.outbound_peak);
    out += ",\"frames_in\":" + std::to_string(r.frames_in);
    out += ",\"frames_out\":" + std::to_string(r.frames_out);
    out += ",\"frames_dropped\":" + std::to_string(r.frames_dropped);
    out += ",\"listen_dropped\":" + std::to_string(r.listen_dropped);
    out += ",\"listening\":";
    out += r.listening ? "true" : "false";
    out += ",\"events\":";
    append_events(out, tap, now);
    out += '}';
}

// Another instance's call: what the registry holds; its meters live on its owner.
void monitor_hub::append_remote(std::string& out, const cluster_view::state& cluster, bool first,
                                std::chrono::system_clock::time_point now) const {
    for (const auto& c : *cluster.calls) {
        out += first ? "{" : ",{";
        first = false;
        append_field(out, "instance", c.instance);
        out += "\"remote\":true,";
        append_field(out, "call_sid", c.call_sid);
        append_field(out, "stream_sid", c.stream_sid);
        append_field(out, "from", c.from);
        append_field(out, "to", c.to);
        append_field(out, "app", c.app);
        out += "\"started\":" + std::to_string(c.started_ms) + ",";
        out += "\"duration_ms\":" +
               std::to_string(c.started_ms == 0 ? 0 : unix_ms(now) - c.started_ms) + ",";
        out += "\"bridge\":null,\"caller\":null,\"outbound\":null,\"listening\":false,"
               "\"events\":[]}";
    }
}

// [stream_sid, duration_ms, caller dBFS, caller speaking, outbound dBFS, outbound speaking,
//  frames_in, frames_out, frames_dropped, listening, events]: about a quarter of a full entry.
void monitor_hub::append_levels(std::string& out, const stream_tap& tap,
                                const stream_tap::reading& r,
                                std::chrono::system_clock::time_point now) const {
    const auto& f = tap.facts();
    const double caller = peak_dbfs(r.caller_peak);
    const double outbound = peak_dbfs(r.outbound_peak);
    char buf[160];
    std::snprintf(buf, sizeof buf, ",%lld,%.1f,%d,%.1f,%d,%llu,%llu,%llu,%d,",
                  static_cast<long long>(unix_ms(now) - unix_ms(f.started)), caller,
                  caller >= speaking_dbfs ? 1 : 0, outbound, outbound >= speaking_dbfs ? 1 : 0,
                  static_cast<unsigned long long>(r.frames_in),
                  static_cast<unsigned long long>(r.frames_out),
                  static_cast<unsigned long long>(r.frames_dropped), r.listening ? 1 : 0);
    out += '[';
    codec::append_json_string(out, f.stream_sid);
    out += buf;
    append_events(out, tap, now);
    out += ']';
}

void monitor_hub::append_events(std::string& out, const stream_tap& tap,
                                std::chrono::system_clock::time_point now) const {
    out += '[';
    bool first_event = true;
    for (const auto& e : tap.recent_events()) {
        // Only the last 2 s: the page numbers what it has seen, and resending a busy call's
        // whole history ten times a second would dwarf the rest of the snapshot.
        if (e.unix_ms < unix_ms(now) - event_window_ms) {
            continue;
        }
        out += first_event ? "{" : ",{";
        first_event = false;
        out += "\"seq\":" + std::to_string(e.seq) + ",\"at\":" + std::to_string(e.unix_ms) + ",";
        append_field(out, "kind", e.kind);
        out += "\"detail\":";
        codec::append_json_string(out, e.detail);
        out += '}';
    }
    out += ']';
}

} // namespace callstream::server::monitor
