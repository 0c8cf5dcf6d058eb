#include "server/calls/call_registry.hpp"

#include <charconv>
#include <ctime>

#include "codec/iso8601.hpp"
#include "codec/json_string.hpp"

namespace callstream::server {
namespace {

// The calls API speaks Twilio's precision: whole seconds.
std::string iso8601(std::chrono::system_clock::time_point t) {
    return codec::format_iso8601_utc(t, codec::iso8601_precision::seconds);
}

void set_if(std::string& field, const std::string& value) {
    if (!value.empty()) {
        field = value;
    }
}

} // namespace

call_registry::call_registry(std::size_t capacity, std::shared_ptr<call_parameter_store> parameters)
    : capacity_(capacity == 0 ? 1 : capacity),
      parameters_(parameters ? std::move(parameters)
                             : std::make_shared<memory_call_parameter_store>()) {}

call_record& call_registry::find_or_add_locked(std::string_view sid) {
    if (const auto it = by_sid_.find(std::string(sid)); it != by_sid_.end()) {
        return *it->second;
    }
    if (calls_.size() >= capacity_) {
        by_sid_.erase(calls_.front().sid);
        calls_.pop_front();
    }
    call_record& call = calls_.emplace_back();
    call.sid = sid;
    call.created = call.updated = std::chrono::system_clock::now();
    by_sid_.emplace(call.sid, std::prev(calls_.end()));
    return call;
}

void call_registry::on_call_created(std::string_view sid, std::string_view to,
                                    std::string_view from, std::string_view status) {
    std::lock_guard lock(mutex_);
    call_record& call = find_or_add_locked(sid);
    call.to = to;
    call.from = from;
    call.direction = "outbound-api";
    // A status callback may have overtaken the API response; never go back from it.
    if (call.sequence_number < 0) {
        call.status = status;
    }
    call.updated = std::chrono::system_clock::now();
}

bool call_registry::on_status(const status_update& update) {
    std::int64_t sequence = -1;
    if (!update.sequence_number.empty()) {
        const auto* end = update.sequence_number.data() + update.sequence_number.size();
        const auto [p, ec] = std::from_chars(update.sequence_number.data(), end, sequence);
        if (ec != std::errc{} || p != end || sequence < 0) {
            sequence = -1;
        }
    }
    std::lock_guard lock(mutex_);
    call_record& call = find_or_add_locked(update.call_sid);
    set_if(call.answered_by, update.answered_by);
    if (call.to.empty()) {
        set_if(call.to, update.to);
    }
    if (call.from.empty()) {
        set_if(call.from, update.from);
    }
    if (call.direction.empty()) {
        set_if(call.direction, update.direction);
    }
    call.updated = std::chrono::system_clock::now();
    if (sequence < 0 || update.call_status.empty() || sequence <= call.sequence_number) {
        return false; // an AMD result, or a callback overtaken by a later one
    }
    call.sequence_number = sequence;
    call.status = update.call_status;
    set_if(call.sip_response_code, update.sip_response_code);
    set_if(call.duration_s, update.call_duration);
    return true;
}

void call_registry::on_webhook(const std::vector<std::pair<std::string, std::string>>& form) {
    status_update u;
    for (const auto& [name, value] : form) {
        std::string* field = name == "CallSid"     ? &u.call_sid
                             : name == "To"        ? &u.to
                             : name == "From"      ? &u.from
                             : name == "Direction" ? &u.direction
                                                   : nullptr;
        if (field != nullptr && field->empty()) {
            *field = value;
        }
    }
    // Only SIDs of the documented shape: the registry is keyed by them and listed over HTTP.
    if (u.call_sid.size() == 34 && u.call_sid.rfind("CA", 0) == 0) {
        on_status(u);
    }
}

void call_registry::on_stream_started(std::string_view call_sid, std::string_view stream_sid,
                                      std::string_view processors, stream_parameters parameters) {
    {
        std::lock_guard lock(mutex_);
        call_record& call = find_or_add_locked(call_sid);
        stream_record& s = call.streams.emplace_back();
        s.stream_sid = stream_sid;
        s.processors = processors;
        s.parameters = std::move(parameters);
        s.started = std::chrono::system_clock::now();
        call.updated = s.started;
    }
    if (observer_) {
        observer_->stream_started(call_sid, stream_sid);
    }
}

void call_registry::on_stream_stopped(std::string_view call_sid, std::string_view stream_sid) {
    if (observer_) {
        observer_->stream_stopped(call_sid, stream_sid);
    }
    std::lock_guard lock(mutex_);
    const auto it = by_sid_.find(std::string(call_sid));
    if (it == by_sid_.end()) {
        return; // evicted meanwhile
    }
    for (auto& s : it->second->streams) {
        if (s.stream_sid == stream_sid && !s.stopped) {
            s.stopped = std::chrono::system_clock::now();
            it->second->updated = *s.stopped;
        }
    }
}

std::vector<call_record> call_registry::recent(std::size_t limit) const {
    std::lock_guard lock(mutex_);
    std::vector<call_record> out;
    out.reserve(std::min(limit, calls_.size()));
    for (auto it = calls_.rbegin(); it != calls_.rend() && out.size() < limit; ++it) {
        out.push_back(*it);
    }
    return out;
}

std::optional<call_record> call_registry::find(std::string_view sid) const {
    std::lock_guard lock(mutex_);
    if (const auto it = by_sid_.find(std::string(sid)); it != by_sid_.end()) {
        return *it->second;
    }
    return std::nullopt;
}

std::size_t call_registry::size() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
}

std::string call_record_json(const call_record& call) {
    std::string out = "{\"sid\":";
    codec::append_json_string(out, call.sid);
    out += ",\"to\":";
    codec::append_json_string(out, call.to);
    out += ",\"from\":";
    codec::append_json_string(out, call.from);
    out += ",\"direction\":";
    codec::append_json_string(out, call.direction);
    out += ",\"status\":";
    codec::append_json_string(out, call.status);
    if (!call.answered_by.empty()) {
        out += ",\"answered_by\":";
        codec::append_json_string(out, call.answered_by);
    }
    if (!call.sip_response_code.empty()) {
        out += ",\"sip_response_code\":";
        codec::append_json_string(out, call.sip_response_code);
    }
    if (!call.duration_s.empty()) {
        out += ",\"duration_s\":";
        codec::append_json_string(out, call.duration_s);
    }
    out += ",\"created\":";
    codec::append_json_string(out, iso8601(call.created));
    out += ",\"updated\":";
    codec::append_json_string(out, iso8601(call.updated));
    out += ",\"streams\":[";
    std::string processors = "[";
    for (std::size_t i = 0; i < call.streams.size(); ++i) {
        const auto& s = call.streams[i];
        out += i == 0 ? "{" : ",{";
        out += "\"stream_sid\":";
        codec::append_json_string(out, s.stream_sid);
        out += ",\"processors\":";
        codec::append_json_string(out, s.processors);
        out += ",\"parameters\":{";
        for (std::size_t p = 0; p < s.parameters.size(); ++p) {
            out += p == 0 ? "" : ",";
            codec::append_json_string(out, s.parameters[p].first);
            out += ":";
            codec::append_json_string(out, s.parameters[p].second);
        }
        out += "}";
        out += ",\"started\":";
        codec::append_json_string(out, iso8601(s.started));
        out += ",\"stopped\":";
        out += s.stopped ? codec::json_string(iso8601(*s.stopped)) : "null";
        out += "}";
        if (i != 0) {
            processors += ",";
        }
        codec::append_json_string(processors, s.processors);
    }
    out += "],\"processors\":" + processors + "]}";
    return out;
}

} // namespace callstream::server
