#include "server/bridge/openai_realtime_messages.hpp"

#include <charconv>

#include "codec/base64.hpp"
#include "codec/json_string.hpp"

namespace callstream::server::bridge {
namespace {

namespace od = simdjson::ondemand;

class realtime_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "openai-realtime"; }
    std::string message(int ev) const override {
        switch (static_cast<realtime_errc>(ev)) {
        case realtime_errc::invalid_json:
            return "server event is not a JSON object";
        case realtime_errc::missing_type:
            return "server event has no \"type\" string";
        case realtime_errc::bad_field:
            return "a field of the server event has the wrong type";
        }
        return "openai-realtime protocol error";
    }
};

struct event_name {
    std::string_view name;
    realtime_event_type type;
};
// GA names first; the beta names of the audio events map to the same types.
constexpr event_name event_names[] = {
    {"response.output_audio.delta", realtime_event_type::audio_delta},
    {"response.audio.delta", realtime_event_type::audio_delta},
    {"input_audio_buffer.speech_started", realtime_event_type::speech_started},
    {"input_audio_buffer.speech_stopped", realtime_event_type::speech_stopped},
    {"response.created", realtime_event_type::response_created},
    {"response.done", realtime_event_type::response_done},
    {"response.output_audio.done", realtime_event_type::audio_done},
    {"response.audio.done", realtime_event_type::audio_done},
    {"session.created", realtime_event_type::session_created},
    {"session.updated", realtime_event_type::session_updated},
    {"conversation.item.truncated", realtime_event_type::item_truncated},
    {"error", realtime_event_type::error},
};

realtime_event_type type_from_name(std::string_view name) noexcept {
    for (const auto& e : event_names) {
        if (e.name == name) {
            return e.type;
        }
    }
    return realtime_event_type::other;
}

bool read_string(od::value value, std::string_view& out) {
    return !value.get_string().get(out);
}

bool read_int(od::value value, std::int64_t& out) {
    return !value.get_int64().get(out);
}

// GA: {"type":"audio/pcm","rate":24000} | {"type":"audio/pcmu"} | {"type":"audio/pcma"}.
// Beta: "pcm16" | "g711_ulaw" | "g711_alaw". audio/pcm without a rate is 24 kHz (its only rate).
bool read_format(od::value value, realtime_format& format, std::string_view& name) {
    od::json_type kind;
    if (value.type().get(kind)) {
        return false;
    }
    if (kind == od::json_type::null) {
        return true;
    }
    if (kind == od::json_type::string) {
        if (!read_string(value, name)) {
            return false;
        }
        format = name == "g711_ulaw"   ? realtime_format::pcmu
                 : name == "g711_alaw" ? realtime_format::pcma
                 : name == "pcm16"     ? realtime_format::pcm24
                                       : realtime_format::unknown;
        return true;
    }
    od::object object;
    if (value.get_object().get(object)) {
        return false;
    }
    std::int64_t rate = 24000;
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return false;
        }
        if (key == "type") {
            if (!read_string(field.value(), name)) {
                return false;
            }
        } else if (key == "rate") {
            if (!read_int(field.value(), rate)) {
                return false;
            }
        }
    }
    format = name == "audio/pcmu"                   ? realtime_format::pcmu
             : name == "audio/pcma"                 ? realtime_format::pcma
             : name == "audio/pcm" && rate == 24000 ? realtime_format::pcm24
                                                    : realtime_format::unknown;
    return true;
}

// session.audio.input / session.audio.output: only "format" matters here.
bool read_direction(od::value value, realtime_format& format, std::string_view& name) {
    od::object object;
    if (value.get_object().get(object)) {
        return false;
    }
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return false;
        }
        if (key == "format" && !read_format(field.value(), format, name)) {
            return false;
        }
    }
    return true;
}

std::error_code parse_session(od::value value, realtime_event& out) {
    od::object session;
    if (value.get_object().get(session)) {
        return realtime_errc::bad_field;
    }
    for (auto field : session) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return realtime_errc::invalid_json;
        }
        bool ok = true;
        if (key == "audio") {
            od::object audio;
            if (field.value().get_object().get(audio)) {
                return realtime_errc::bad_field;
            }
            for (auto direction : audio) {
                std::string_view name;
                if (direction.unescaped_key().get(name)) {
                    return realtime_errc::invalid_json;
                }
                if (name == "input") {
                    ok = read_direction(direction.value(), out.input_format, out.input_format_name);
                } else if (name == "output") {
                    ok = read_direction(direction.value(), out.output_format,
                                        out.output_format_name);
                }
                if (!ok) {
                    return realtime_errc::bad_field;
                }
            }
        } else if (key == "input_audio_format") {
            ok = read_format(field.value(), out.input_format, out.input_format_name);
        } else if (key == "output_audio_format") {
            ok = read_format(field.value(), out.output_format, out.output_format_name);
        }
        if (!ok) {
            return realtime_errc::bad_field;
        }
    }
    return {};
}

std::error_code parse_response(od::value value, realtime_event& out) {
    od::object response;
    if (value.get_object().get(response)) {
        return realtime_errc::bad_field;
    }
    for (auto field : response) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return realtime_errc::invalid_json;
        }
        if ((key == "id" && !read_string(field.value(), out.response_id)) ||
            (key == "status" && !read_string(field.value(), out.response_status))) {
            return realtime_errc::bad_field;
        }
    }
    return {};
}

std::error_code parse_error(od::value value, realtime_event& out) {
    od::object error;
    if (value.get_object().get(error)) {
        return realtime_errc::bad_field;
    }
    for (auto field : error) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return realtime_errc::invalid_json;
        }
        std::string_view* target = key == "type"      ? &out.error_type
                                   : key == "code"    ? &out.error_code
                                   : key == "message" ? &out.error_message
                                                      : nullptr;
        if (target == nullptr) {
            continue;
        }
        od::json_type kind;
        if (field.value().type().get(kind)) {
            return realtime_errc::bad_field;
        }
        // code and message may be null.
        if (kind != od::json_type::null && !read_string(field.value(), *target)) {
            return realtime_errc::bad_field;
        }
    }
    return {};
}

void append_format(std::string& out, realtime_format format) {
    out += format == realtime_format::pcm24 ? R"({"type":"audio/pcm","rate":24000})"
                                            : R"({"type":"audio/pcmu"})";
}

} // namespace

std::string_view to_string(realtime_format f) noexcept {
    switch (f) {
    case realtime_format::pcmu:
        return "audio/pcmu";
    case realtime_format::pcma:
        return "audio/pcma";
    case realtime_format::pcm24:
        return "audio/pcm@24000";
    case realtime_format::unknown:
        break;
    }
    return "unknown";
}

std::string_view to_string(realtime_event_type t) noexcept {
    for (const auto& e : event_names) {
        if (e.type == t) {
            return e.name;
        }
    }
    return "other";
}

const std::error_category& realtime_category() noexcept {
    static const realtime_category_impl category;
    return category;
}

std::error_code make_error_code(realtime_errc e) noexcept {
    return {static_cast<int>(e), realtime_category()};
}

void append_session_update(std::string& out, const realtime_session_config& config) {
    out += R"({"type":"session.update","session":{"type":"realtime",)";
    if (!config.model.empty()) {
        out += R"("model":)";
        codec::append_json_string(out, config.model);
        out += ',';
    }
    out += R"("output_modalities":["audio"],)";
    if (!config.instructions.empty()) {
        out += R"("instructions":)";
        codec::append_json_string(out, config.instructions);
        out += ',';
    }
    out += R"("audio":{"input":{"format":)";
    append_format(out, config.format);
    out += R"(,"turn_detection":{"type":"server_vad","create_response":true,)"
           R"("interrupt_response":true}},"output":{"format":)";
    append_format(out, config.format);
    if (!config.voice.empty()) {
        out += R"(,"voice":)";
        codec::append_json_string(out, config.voice);
    }
    out += "}}}}";
}

void append_input_audio(std::string& out, std::span<const std::uint8_t> audio) {
    constexpr std::string_view prefix = R"({"type":"input_audio_buffer.append","audio":")";
    const std::size_t start = out.size();
    out.resize(start + prefix.size() + codec::base64_encoded_size(audio.size()) + 2);
    char* p = out.data() + start;
    p = std::copy(prefix.begin(), prefix.end(), p);
    p += codec::base64_encode(audio, p);
    *p++ = '"';
    *p = '}';
}

void append_response_create(std::string& out) {
    out += R"({"type":"response.create"})";
}

void append_response_cancel(std::string& out) {
    out += R"({"type":"response.cancel"})";
}

void append_item_truncate(std::string& out, std::string_view item_id, std::uint64_t audio_end_ms) {
    out += R"({"type":"conversation.item.truncate","item_id":)";
    codec::append_json_string(out, item_id);
    out += R"(,"content_index":0,"audio_end_ms":)";
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, audio_end_ms);
    out.append(digits, end);
    out += '}';
}

std::error_code parse_server_event(od::parser& parser, std::string_view json, std::size_t capacity,
                                   realtime_event& out) {
    out = {};
    od::document doc;
    if (parser.iterate(json.data(), json.size(), capacity).get(doc)) {
        return realtime_errc::invalid_json;
    }
    od::object object;
    if (doc.get_object().get(object)) {
        return realtime_errc::invalid_json;
    }
    bool have_type = false;
    // One pass in document order: fields are stored as seen and interpreted afterwards, so a
    // "type" that comes last is fine.
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return realtime_errc::invalid_json;
        }
        std::error_code ec;
        if (key == "type") {
            if (!read_string(field.value(), out.type_name)) {
                return realtime_errc::missing_type;
            }
            have_type = true;
        } else if (key == "delta") {
            od::json_type kind;
            // Transcript deltas are strings too; other events' "delta" fields are ignored.
            if (!field.value().type().get(kind) && kind == od::json_type::string &&
                !read_string(field.value(), out.delta)) {
                return realtime_errc::bad_field;
            }
        } else if (key == "item_id") {
            if (!read_string(field.value(), out.item_id)) {
                return realtime_errc::bad_field;
            }
        } else if (key == "response_id") {
            if (!read_string(field.value(), out.response_id)) {
                return realtime_errc::bad_field;
            }
        } else if (key == "audio_start_ms" || key == "audio_end_ms") {
            if (!read_int(field.value(), out.audio_ms)) {
                return realtime_errc::bad_field;
            }
        } else if (key == "session") {
            ec = parse_session(field.value(), out);
        } else if (key == "response") {
            ec = parse_response(field.value(), out);
        } else if (key == "error") {
            ec = parse_error(field.value(), out);
        }
        if (ec) {
            return ec;
        }
    }
    // The whole text must have been one object (trailing garbage is refused).
    if (!doc.current_location().error()) { // something follows the object
        return realtime_errc::invalid_json;
    }
    if (!have_type) {
        return realtime_errc::missing_type;
    }
    out.type = type_from_name(out.type_name);
    return {};
}

} // namespace callstream::server::bridge
