#include "server/bridge/audio_protocol_messages.hpp"

#include <charconv>

#include "codec/json_string.hpp"

namespace callstream::server::bridge {
namespace {

namespace od = simdjson::ondemand;

class audio_protocol_category_impl : public std::error_category {
  public:
    const char* name() const noexcept override { return "callstream.audio.v1"; }
    std::string message(int ev) const override {
        switch (static_cast<audio_protocol_errc>(ev)) {
        case audio_protocol_errc::invalid_json:
            return "control frame is not a JSON object";
        case audio_protocol_errc::missing_type:
            return "control frame has no \"type\" string";
        case audio_protocol_errc::bad_field:
            return "a field of the control frame has the wrong type, or a mark has no name";
        }
        return "callstream.audio.v1 protocol error";
    }
};

void append_number(std::string& out, std::uint64_t n) {
    char digits[24];
    const auto [end, ec] = std::to_chars(digits, digits + sizeof digits, n);
    out.append(digits, end);
}

void append_field(std::string& out, std::string_view key, std::string_view value) {
    out += '"';
    out += key;
    out += "\":";
    codec::append_json_string(out, value);
    out += ',';
}

} // namespace

std::string audio_format::to_string() const {
    if (encoding == audio_encoding::pcmu) {
        return "pcmu";
    }
    std::string out = "l16-";
    append_number(out, rate_hz);
    return out;
}

std::optional<audio_format> parse_audio_format(std::string_view text) {
    if (text == "pcmu") {
        return audio_format{audio_encoding::pcmu, 8000};
    }
    for (std::uint32_t rate : {8000u, 16000u, 24000u}) {
        if (text == audio_format{audio_encoding::l16, rate}.to_string()) {
            return audio_format{audio_encoding::l16, rate};
        }
    }
    return std::nullopt;
}

void append_audio_start(std::string& out, const call_metadata& call, const audio_format& format,
                        std::uint32_t channels) {
    out += R"({"type":"start","version":1,)";
    append_field(out, "callSid", call.call_sid);
    append_field(out, "streamSid", call.stream_sid);
    append_field(out, "accountSid", call.account_sid);
    append_field(out, "from", call.from);
    append_field(out, "to", call.to);
    out += R"("customParameters":{)";
    bool first = true;
    for (const auto& [key, value] : call.custom_parameters) {
        if (!first) {
            out += ',';
        }
        first = false;
        codec::append_json_string(out, key);
        out += ':';
        codec::append_json_string(out, value);
    }
    out += R"(},"format":{"encoding":)";
    out += format.encoding == audio_encoding::pcmu ? R"("pcmu")" : R"("l16")";
    out += R"(,"sampleRate":)";
    append_number(out, format.rate_hz);
    out += R"(,"channels":)";
    append_number(out, channels);
    out += R"(},"frameMs":)";
    append_number(out, audio_frame_ms);
    out += '}';
}

void append_audio_mark(std::string& out, std::string_view name, bool cleared) {
    out += R"({"type":"mark","name":)";
    codec::append_json_string(out, name);
    out += cleared ? R"(,"cleared":true})" : R"(,"cleared":false})";
}

void append_audio_dtmf(std::string& out, char digit) {
    out += R"({"type":"dtmf","digit":)";
    codec::append_json_string(out, std::string_view(&digit, 1));
    out += '}';
}

void append_audio_flow(std::string& out, bool xoff, std::uint64_t queued_ms) {
    out += xoff ? R"({"type":"xoff","queuedMs":)" : R"({"type":"xon","queuedMs":)";
    append_number(out, queued_ms);
    out += '}';
}

void append_audio_stop(std::string& out, std::string_view reason) {
    out += R"({"type":"stop","reason":)";
    codec::append_json_string(out, reason);
    out += '}';
}

void append_pcm16le(std::vector<std::uint8_t>& out, std::span<const std::int16_t> samples) {
    const std::size_t at = out.size();
    out.resize(at + samples.size() * 2);
    for (std::size_t i = 0; i < samples.size(); ++i) {
        const auto s = static_cast<std::uint16_t>(samples[i]);
        out[at + 2 * i] = static_cast<std::uint8_t>(s & 0xff);
        out[at + 2 * i + 1] = static_cast<std::uint8_t>(s >> 8);
    }
}

void pcm16le_decoder::decode(std::span<const std::uint8_t> bytes, std::vector<std::int16_t>& out) {
    out.clear();
    std::size_t i = 0;
    if (have_odd_byte_ && !bytes.empty()) {
        out.push_back(static_cast<std::int16_t>(odd_byte_ | (bytes[0] << 8)));
        have_odd_byte_ = false;
        i = 1;
    }
    for (; i + 1 < bytes.size(); i += 2) {
        out.push_back(static_cast<std::int16_t>(bytes[i] | (bytes[i + 1] << 8)));
    }
    if (i < bytes.size()) {
        odd_byte_ = bytes[i];
        have_odd_byte_ = true;
    }
}

const std::error_category& audio_protocol_category() noexcept {
    static const audio_protocol_category_impl category;
    return category;
}

std::error_code make_error_code(audio_protocol_errc e) noexcept {
    return {static_cast<int>(e), audio_protocol_category()};
}

std::error_code parse_audio_control(od::parser& parser, std::string_view json, std::size_t capacity,
                                    audio_control& out) {
    out = {};
    od::document doc;
    if (parser.iterate(json.data(), json.size(), capacity).get(doc)) {
        return audio_protocol_errc::invalid_json;
    }
    od::object object;
    if (doc.get_object().get(object)) {
        return audio_protocol_errc::invalid_json;
    }
    bool have_type = false;
    bool have_name = false;
    for (auto field : object) {
        std::string_view key;
        if (field.unescaped_key().get(key)) {
            return audio_protocol_errc::invalid_json;
        }
        if (key == "type") {
            if (field.value().get_string().get(out.type_name)) {
                return audio_protocol_errc::missing_type;
            }
            have_type = true;
        } else if (key == "name") {
            if (field.value().get_string().get(out.name)) {
                return audio_protocol_errc::bad_field;
            }
            have_name = true;
        } else if (key == "reason") {
            if (field.value().get_string().get(out.reason)) {
                return audio_protocol_errc::bad_field;
            }
        }
    }
    if (!doc.current_location().error()) { // something follows the object
        return audio_protocol_errc::invalid_json;
    }
    if (!have_type) {
        return audio_protocol_errc::missing_type;
    }
    out.type = out.type_name == "mark"     ? audio_control_type::mark
               : out.type_name == "clear"  ? audio_control_type::clear
               : out.type_name == "hangup" ? audio_control_type::hangup
                                           : audio_control_type::other;
    if (out.type == audio_control_type::mark && (!have_name || out.name.empty())) {
        return audio_protocol_errc::bad_field;
    }
    return {};
}

} // namespace callstream::server::bridge
