#include "server/bridge/twilio_protocol.hpp"

#include <charconv>

#include <simdjson.h>

#include "codec/base64.hpp"
#include "codec/json_string.hpp"
#include "server/twilio/media_messages.hpp"

namespace callstream::server::bridge {
namespace twilio_wire {
namespace {

void append_counter(std::string& out, std::string_view key, std::int64_t value) {
    // Twilio's counters are JSON strings (TWILIO.md §1.1).
    // to_chars into the stack, not to_string: no temporary string per counter per frame.
    char digits[24];
    const auto end = std::to_chars(digits, digits + sizeof digits, value).ptr;
    out += ",\"";
    out += key;
    out += "\":\"";
    out.append(digits, end);
    out += '"';
}

void append_sid(std::string& out, std::string_view stream_sid) {
    out += ",\"streamSid\":";
    codec::append_json_string(out, stream_sid);
}

} // namespace

std::string connected() {
    return R"({"event":"connected","protocol":"Call","version":"1.0.0"})";
}

std::string start(const call_metadata& call, std::uint64_t sequence) {
    std::string out = R"({"event":"start")";
    append_counter(out, "sequenceNumber", static_cast<std::int64_t>(sequence));
    out += R"(,"start":{"accountSid":)";
    codec::append_json_string(out, call.account_sid);
    out += ",\"streamSid\":";
    codec::append_json_string(out, call.stream_sid);
    out += ",\"callSid\":";
    codec::append_json_string(out, call.call_sid);
    out += ",\"tracks\":[";
    const std::vector<std::string> inbound{"inbound"};
    const auto& tracks = call.tracks.empty() ? inbound : call.tracks;
    for (std::size_t i = 0; i < tracks.size(); ++i) {
        out += i ? "," : "";
        codec::append_json_string(out, tracks[i]);
    }
    out += "],\"customParameters\":{";
    for (std::size_t i = 0; i < call.custom_parameters.size(); ++i) {
        out += i ? "," : "";
        codec::append_json_string(out, call.custom_parameters[i].first);
        out += ':';
        codec::append_json_string(out, call.custom_parameters[i].second);
    }
    out += R"(},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}})";
    append_sid(out, call.stream_sid);
    out += '}';
    return out;
}

std::string stream_sid_field(std::string_view stream_sid) {
    std::string out;
    append_sid(out, stream_sid);
    return out;
}

void media(std::string& out, std::string_view sid_field, std::uint64_t sequence,
           std::uint64_t chunk, std::int64_t timestamp_ms, std::span<const std::uint8_t> ulaw) {
    out.clear();
    out += R"({"event":"media")";
    append_counter(out, "sequenceNumber", static_cast<std::int64_t>(sequence));
    out += R"(,"media":{"track":"inbound")";
    append_counter(out, "chunk", static_cast<std::int64_t>(chunk));
    append_counter(out, "timestamp", timestamp_ms);
    out += R"(,"payload":")";
    const std::size_t at = out.size();
    out.resize(at + codec::base64_encoded_size(ulaw.size()));
    codec::base64_encode(ulaw, out.data() + at);
    out += "\"}";
    out += sid_field;
    out += '}';
}

std::string dtmf(std::string_view stream_sid, std::uint64_t sequence, char digit) {
    std::string out = R"({"event":"dtmf")";
    append_sid(out, stream_sid);
    append_counter(out, "sequenceNumber", static_cast<std::int64_t>(sequence));
    out += R"(,"dtmf":{"track":"inbound_track","digit":)";
    codec::append_json_string(out, std::string_view(&digit, 1));
    out += "}}";
    return out;
}

std::string mark(std::string_view stream_sid, std::uint64_t sequence, std::string_view name) {
    std::string out = R"({"event":"mark")";
    append_counter(out, "sequenceNumber", static_cast<std::int64_t>(sequence));
    append_sid(out, stream_sid);
    out += R"(,"mark":{"name":)";
    codec::append_json_string(out, name);
    out += "}}";
    return out;
}

std::string stop(const call_metadata& call, std::uint64_t sequence) {
    std::string out = R"({"event":"stop")";
    append_counter(out, "sequenceNumber", static_cast<std::int64_t>(sequence));
    out += R"(,"stop":{"accountSid":)";
    codec::append_json_string(out, call.account_sid);
    out += ",\"callSid\":";
    codec::append_json_string(out, call.call_sid);
    out += '}';
    append_sid(out, call.stream_sid);
    out += '}';
    return out;
}

} // namespace twilio_wire

namespace {

// One parser per network thread, not per call: a parser keeps buffers as large as the largest
// message it saw, and a thread parses one message at a time.
simdjson::ondemand::parser& thread_parser() {
    thread_local simdjson::ondemand::parser parser;
    return parser;
}

// The decoded payload of an upstream media message, per thread for the same reason (and so
// that it is in the cache: a per-call buffer was cold on every message).
std::vector<std::uint8_t>& thread_ulaw() {
    thread_local std::vector<std::uint8_t> ulaw;
    return ulaw;
}

class twilio_protocol final : public upstream_protocol {
  public:
    void on_open(bridge_actions& bridge) override { bridge.send_text(twilio_wire::connected()); }

    void on_start(const call_metadata& call, bridge_actions& bridge) override {
        call_ = call;
        sid_field_ = twilio_wire::stream_sid_field(call_.stream_sid);
        started_ = true;
        bridge.send_text(twilio_wire::start(call_, next_sequence()));
    }

    void add_hot_lines(pipeline::warm_lines& lines) const override {
        lines.add(this, sizeof(upstream_protocol));
        lines.add_range(&sid_field_, &ignored_start_); // sid_field_ and msg_
        lines.add(sid_field_.data(), sid_field_.size());
        lines.add_range(&started_, &sid_field_); // started_, sequence_, chunk_
    }

    void on_caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                         bridge_actions& bridge) override {
        std::string out = bridge.take_buffer();
        out.reserve(300);
        twilio_wire::media(out, sid_field_, next_sequence(), ++chunk_, timestamp_ms, ulaw);
        bridge.send_text(std::move(out));
    }

    void on_dtmf(char digit, bridge_actions& bridge) override {
        bridge.send_text(twilio_wire::dtmf(call_.stream_sid, next_sequence(), digit));
    }

    // Twilio echoes a mark both when it played and when a clear dropped it (TWILIO.md §2.4):
    // the bot cannot tell the two apart, and neither can it behind callstream.
    void on_mark_played(std::string_view name, bool /*cleared*/, bridge_actions& bridge) override {
        bridge.send_text(twilio_wire::mark(call_.stream_sid, next_sequence(), name));
    }

    void on_stop(bridge_actions& bridge) override {
        if (started_) {
            bridge.send_text(twilio_wire::stop(call_, next_sequence()));
        }
    }

    void on_upstream_text(std::string_view message, bridge_actions& bridge) override {
        // The core guarantees SIMDJSON_PADDING readable bytes after the message.
        if (auto ec =
                parse_inbound(thread_parser(), message, message.size() + simdjson::SIMDJSON_PADDING,
                              msg_, ignored_start_)) {
            bridge.fail("invalid_json", ec.message());
            return;
        }
        const bool known = msg_.event == inbound_event::media ||
                           msg_.event == inbound_event::mark || msg_.event_name == "clear";
        if (!known) {
            bridge.fail("bad_event", "a Twilio server sends only media, mark and clear; got '" +
                                         std::string(msg_.event_name) + "'");
            return;
        }
        if (started_ && msg_.stream_sid != call_.stream_sid) {
            bridge.fail("bad_event", "streamSid does not match the call's stream");
            return;
        }
        if (msg_.event == inbound_event::mark) {
            bridge.play_mark(std::string(msg_.mark_name));
            return;
        }
        if (msg_.event_name == "clear") {
            bridge.clear_playback();
            return;
        }
        auto& ulaw = thread_ulaw();
        const std::size_t max_bytes = codec::base64_decoded_max_size(msg_.payload.size());
        if (ulaw.size() < max_bytes) {
            ulaw.resize(max_bytes);
        }
        std::size_t n = 0;
        if (auto ec = codec::base64_decode(msg_.payload, ulaw, n)) {
            bridge.fail("bad_base64", "media.payload: " + ec.message());
            return;
        }
        bridge.play_ulaw({ulaw.data(), n});
    }

    void on_upstream_binary(std::span<const std::uint8_t> /*bytes*/,
                            bridge_actions& bridge) override {
        bridge.fail("binary_frame", "binary frames are not part of the Twilio protocol");
    }

  private:
    std::uint64_t next_sequence() { return ++sequence_; }

    call_metadata call_;
    bool started_ = false;
    std::uint64_t sequence_ = 0; // Twilio numbers every message after connected, from 1
    std::uint64_t chunk_ = 0;
    std::string sid_field_; // twilio_wire::stream_sid_field(call_.stream_sid)
    inbound_message msg_;
    pipeline::stream_info ignored_start_;
};

} // namespace

std::unique_ptr<upstream_protocol> make_twilio_protocol(const upstream_config& /*upstream*/) {
    return std::make_unique<twilio_protocol>();
}

std::string validate_twilio_options(const upstream_config& upstream) {
    if (!upstream.options.empty()) {
        return "--bridge-option " + upstream.name + "=" + upstream.options.front().first +
               "=...: the twilio protocol takes no options";
    }
    return {};
}

} // namespace callstream::server::bridge
