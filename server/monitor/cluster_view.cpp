#include "server/monitor/cluster_view.hpp"

#include <ctime>
#include <tuple>

#include <simdjson.h>

#include "server/cluster/redis_client.hpp"
#include "server/cluster/registry_keys.hpp"

namespace callstream::server::monitor {
namespace {

std::string string_field(simdjson::dom::element e, std::string_view key) {
    std::string_view v;
    if (e[key].get_string().get(v) != simdjson::SUCCESS) {
        return {};
    }
    return std::string(v);
}

// "2026-12-02T03:18:07Z" (what the call registry writes) as unix ms; 0 if it is not that.
std::int64_t parse_utc_seconds(std::string_view iso) {
    std::tm tm{};
    int consumed = 0;
    const std::string s(iso);
    if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                    &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &consumed) != 6) {
        return 0;
    }
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return static_cast<std::int64_t>(timegm(&tm)) * 1000;
}

bool same(const std::vector<remote_call>& a, const std::vector<remote_call>& b) {
    if (a.size() != b.size()) {
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (std::tie(a[i].instance, a[i].call_sid, a[i].stream_sid) !=
            std::tie(b[i].instance, b[i].call_sid, b[i].stream_sid)) {
            return false;
        }
    }
    return true;
}

} // namespace

std::vector<remote_call> parse_remote_calls(const std::vector<std::string>& entries,
                                            std::string_view own) {
    std::vector<remote_call> out;
    simdjson::dom::parser parser;
    for (const auto& json : entries) {
        simdjson::dom::element doc;
        if (parser.parse(json).get(doc) != simdjson::SUCCESS || !doc.is_object()) {
            continue;
        }
        remote_call c;
        c.instance = string_field(doc, "instance");
        c.call_sid = string_field(doc, "sid");
        if (c.instance.empty() || c.instance == own || c.call_sid.empty()) {
            continue;
        }
        c.from = string_field(doc, "from");
        c.to = string_field(doc, "to");
        // The stream that runs: the last one not stopped (a call may have had earlier ones).
        simdjson::dom::array streams;
        if (doc["streams"].get_array().get(streams) == simdjson::SUCCESS) {
            for (simdjson::dom::element s : streams) {
                if (!s["stopped"].is_null()) {
                    continue;
                }
                c.stream_sid = string_field(s, "stream_sid");
                c.app = string_field(s, "processors");
                c.started_ms = parse_utc_seconds(string_field(s, "started"));
                // A stream started without a webhook knows its parties from Twilio's
                // customParameters only.
                if (c.from.empty()) {
                    c.from = string_field(s["parameters"], "From");
                }
                if (c.to.empty()) {
                    c.to = string_field(s["parameters"], "To");
                }
            }
        }
        out.push_back(std::move(c));
    }
    return out;
}

cluster_view::cluster_view(std::shared_ptr<redis_client> redis, std::string own_instance)
    : redis_(std::move(redis)), own_(std::move(own_instance)) {
    state_.calls = std::make_shared<const std::vector<remote_call>>();
    state_.error = "not asked yet";
}

void cluster_view::refresh() {
    const auto now = std::chrono::steady_clock::now();
    {
        const std::lock_guard lock(mutex_);
        if (in_flight_ || now - asked_ < refresh_every) {
            return;
        }
        in_flight_ = true;
        asked_ = now;
    }
    if (!redis_->ready()) {
        settle(false,
               "Redis at " + redis_->endpoint().describe() +
                   " unavailable: " + redis_->last_error(),
               {});
        return;
    }
    std::weak_ptr<cluster_view> weak = weak_from_this();
    redis_->command({"EVAL", std::string(cluster_keys::list_calls_script), "0"},
                    [weak](redis_reply r) {
                        const auto self = weak.lock();
                        if (!self) {
                            return;
                        }
                        if (!r.ok) {
                            self->settle(false, r.error, {});
                            return;
                        }
                        std::vector<std::string> entries;
                        entries.reserve(r.value.elements.size());
                        for (auto& e : r.value.elements) {
                            entries.push_back(std::move(e.text));
                        }
                        self->settle(true, {}, parse_remote_calls(entries, self->own_));
                    });
}

void cluster_view::settle(bool ok, std::string error, std::vector<remote_call> calls) {
    const std::lock_guard lock(mutex_);
    in_flight_ = false;
    if (ok != state_.ok || error != state_.error || !same(calls, *state_.calls)) {
        ++state_.version;
    }
    state_.ok = ok;
    state_.error = std::move(error);
    state_.calls = std::make_shared<const std::vector<remote_call>>(std::move(calls));
}

cluster_view::state cluster_view::current() const {
    const std::lock_guard lock(mutex_);
    return state_;
}

} // namespace callstream::server::monitor
