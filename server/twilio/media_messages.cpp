#include "server/twilio/media_messages.hpp"

#include <charconv>

#include "codec/base64.hpp"
#include "codec/json_string.hpp"

namespace callstream::server {
namespace {

namespace od = simdjson::ondemand;

class protocol_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "twilio-protocol"; }
    std::string message(int ev) const override {
        switch (static_cast<protocol_errc>(ev)) {
        case protocol_errc::invalid_json:
            return "message is not a JSON object";
        case protocol_errc::missing_event:
            return "message has no \"event\" string";
        case protocol_errc::bad_field:
            return "a field has the wrong type";
        case protocol_errc::missing_stream_sid:
            return "message has no \"streamSid\"";
        case protocol_errc::missing_payload:
            return "media message has no \"media.payload\" string";
        case protocol_errc::bad_start:
            return "start message lacks start.streamSid or start.callSid";
        }
        return "protocol error";
    }
};

inbound_event event_from_name(std::string_view name) noexcept {
    if (name == "media") {
        return inbound_event::media;
    }
    if (name == "start") {
        return inbound_event::start;
    }
    if (name == "connected") {
        return inbound_event::connected;
    }
    if (name == "dtmf") {
        return inbound_event::dtmf;
    }
    if (name == "mark") {
        return inbound_event::mark;
    }
    if (name == "stop") {
        return inbound_event::stop;
    }
    return inbound_event::unknown;
}

// Twilio sends counters as strings; some carriers send numbers. Accept both.
bool read_integer(od::value value, std::int64_t& out) {
    od::json_type type;
    if (value.type().get(type)) {
        return false;
    }
    if (type == od::json_type::number) {
        return !value.get_int64().get(out);
    }
    std::string_view s;
    if (type != od::json_type::string || value.get_string().get(s)) {
        return false;
    }
    const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc{} && ptr == s.data() + s.size();
}

std::error_code parse_media(od::object media, inbound_message& out) {
    for (auto field : media) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return protocol_errc::invalid_json;
        }
        if (key == "payload") {
            if (field.value().get_string().get(out.payload)) {
                return protocol_errc::bad_field;
            }
        } else if (key == "timestamp") {
            if (!read_integer(field.value(), out.timestamp_ms)) {
                return protocol_errc::bad_field;
            }
        } else if (key == "track") {
            if (field.value().get_string().get(out.track)) {
                return protocol_errc::bad_field;
            }
        }
    }
    return {};
}

std::error_code parse_start(od::object start, pipeline::stream_info& info) {
    for (auto field : start) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return protocol_errc::invalid_json;
        }
        std::string_view s;
        if (key == "streamSid" || key == "callSid" || key == "accountSid") {
            if (field.value().get_string().get(s)) {
                return protocol_errc::bad_field;
            }
            (key == "streamSid" ? info.stream_sid
             : key == "callSid" ? info.call_sid
                                : info.account_sid) = s;
        } else if (key == "tracks") {
            // Only a <Start> (receive-only) stream can carry the outbound track: a
            // <Connect> stream is always ["inbound"].
            od::array tracks;
            if (field.value().get_array().get(tracks)) {
                return protocol_errc::bad_field;
            }
            for (auto track : tracks) {
                if (track.get_string().get(s)) {
                    return protocol_errc::bad_field;
                }
                info.receive_only = info.receive_only || s == "outbound";
            }
        } else if (key == "customParameters") {
            od::object params;
            if (field.value().get_object().get(params)) {
                return protocol_errc::bad_field;
            }
            for (auto param : params) {
                std::string_view name, value;
                if (param.unescaped_key().get(name) || param.value().get_string().get(value)) {
                    return protocol_errc::bad_field;
                }
                info.custom_parameters.emplace_back(name, value);
            }
        }
    }
    return {};
}

} // namespace

std::string_view to_string(inbound_event e) noexcept {
    switch (e) {
    case inbound_event::connected:
        return "connected";
    case inbound_event::start:
        return "start";
    case inbound_event::media:
        return "media";
    case inbound_event::dtmf:
        return "dtmf";
    case inbound_event::mark:
        return "mark";
    case inbound_event::stop:
        return "stop";
    case inbound_event::unknown:
        return "unknown";
    }
    return "unknown";
}

const std::error_category& protocol_category() noexcept {
    static const protocol_category_impl category;
    return category;
}

std::error_code make_error_code(protocol_errc e) noexcept {
    return {static_cast<int>(e), protocol_category()};
}

std::error_code parse_inbound(od::parser& parser, std::string_view json, std::size_t capacity,
                              inbound_message& out, pipeline::stream_info& start) {
    out = inbound_message{};
    od::document doc;
    if (parser.iterate(json.data(), json.size(), capacity).get(doc)) {
        return protocol_errc::invalid_json;
    }
    od::object root;
    if (doc.get_object().get(root)) {
        return protocol_errc::invalid_json;
    }
    bool has_media = false;
    bool has_start = false;
    // One pass over the fields in whatever order they come; simdjson validates as it goes,
    // so a syntax error anywhere surfaces as an error from the iteration.
    for (auto field : root) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return protocol_errc::invalid_json;
        }
        if (key == "event") {
            if (field.value().get_string().get(out.event_name)) {
                return protocol_errc::missing_event;
            }
            out.event = event_from_name(out.event_name);
        } else if (key == "streamSid") {
            if (field.value().get_string().get(out.stream_sid)) {
                return protocol_errc::bad_field;
            }
        } else if (key == "media") {
            od::object media;
            if (field.value().get_object().get(media)) {
                return protocol_errc::bad_field;
            }
            if (auto ec = parse_media(media, out)) {
                return ec;
            }
            has_media = true;
        } else if (key == "start") {
            od::object obj;
            if (field.value().get_object().get(obj)) {
                return protocol_errc::bad_field;
            }
            start = pipeline::stream_info{};
            if (auto ec = parse_start(obj, start)) {
                return ec;
            }
            has_start = true;
        } else if (key == "dtmf" || key == "mark") {
            od::object obj;
            if (field.value().get_object().get(obj)) {
                return protocol_errc::bad_field;
            }
            for (auto inner : obj) {
                std::string_view inner_key;
                if (inner.unescaped_key().get(inner_key)) {
                    return protocol_errc::invalid_json;
                }
                if ((key == "dtmf" && inner_key == "digit") ||
                    (key == "mark" && inner_key == "name")) {
                    if (inner.value().get_string().get(key == "dtmf" ? out.digit : out.mark_name)) {
                        return protocol_errc::bad_field;
                    }
                }
            }
        }
        // Other fields (sequenceNumber, stop, protocol, version, ...) are skipped unread.
    }
    if (out.event_name.data() == nullptr) {
        return protocol_errc::missing_event;
    }
    switch (out.event) {
    case inbound_event::media:
        if (!has_media || out.payload.data() == nullptr) {
            return protocol_errc::missing_payload;
        }
        [[fallthrough]];
    case inbound_event::dtmf:
    case inbound_event::mark:
    case inbound_event::stop:
        if (out.stream_sid.empty()) {
            return protocol_errc::missing_stream_sid;
        }
        break;
    case inbound_event::start:
        if (!has_start || start.call_sid.empty()) {
            return protocol_errc::bad_start;
        }
        if (start.stream_sid.empty()) {
            start.stream_sid = out.stream_sid;
        }
        if (start.stream_sid.empty()) {
            return protocol_errc::bad_start;
        }
        break;
    default:
        break;
    }
    return {};
}

void outbound_writer::set_stream_sid(std::string_view stream_sid) {
    sid_json_ = codec::json_string(stream_sid);
    media_prefix_ =
        "{\"event\":\"media\",\"streamSid\":" + sid_json_ + ",\"media\":{\"payload\":\"";
}

void outbound_writer::media(std::span<const std::uint8_t> ulaw, std::string& out) const {
    const std::size_t b64 = codec::base64_encoded_size(ulaw.size());
    out.resize(media_prefix_.size() + b64 + 3);
    char* p = out.data();
    std::copy(media_prefix_.begin(), media_prefix_.end(), p);
    p += media_prefix_.size();
    p += codec::base64_encode(ulaw, p);
    *p++ = '"';
    *p++ = '}';
    *p++ = '}';
}

void outbound_writer::mark(std::string_view name, std::string& out) const {
    out = "{\"event\":\"mark\",\"streamSid\":" + sid_json_ + ",\"mark\":{\"name\":";
    codec::append_json_string(out, name);
    out += "}}";
}

void outbound_writer::clear(std::string& out) const {
    out = "{\"event\":\"clear\",\"streamSid\":" + sid_json_ + "}";
}

} // namespace callstream::server
