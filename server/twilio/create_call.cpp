#include "server/twilio/create_call.hpp"

#include <algorithm>
#include <array>
#include <set>

#include <boost/url/parse.hpp>
#include <simdjson.h>

#include "server/twilio/twiml.hpp"

namespace callstream::server {
namespace {

using simdjson::ondemand::json_type;

constexpr std::size_t body_max_bytes = 16 * 1024;
constexpr std::size_t sip_uri_max_chars = 254; // Twilio: under 255
constexpr std::size_t sip_headers_max_chars = 1023;
constexpr std::size_t parameter_max_chars = 499; // name + value under 500
constexpr std::size_t parameters_max_count = 32;
constexpr std::size_t credential_max_chars = 128;
constexpr std::size_t call_reason_max_chars = 255;
constexpr std::size_t send_digits_max_chars = 32;
constexpr std::size_t client_identity_max_chars = 256; // Twilio error 31105
constexpr std::size_t callback_url_max_chars = 1024;
constexpr std::size_t uui_max_hex_chars = 256;
const std::vector<std::string_view> all_events = {"initiated", "ringing", "answered", "completed"};
const std::vector<std::string_view> recording_events = {"in-progress", "completed", "absent"};
// Twilio's SIP-out regions (the <Sip> noun's region= URI parameter).
const std::vector<std::string_view> sip_regions = {"us1", "us2", "ie1", "de1",
                                                   "sg1", "jp1", "br1", "au1"};

bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_hex(char c) {
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3261 user part: unreserved, escaped, and the user-unreserved marks (no ';', '?', '@').
bool is_sip_user_char(char c) {
    return is_alpha(c) || is_digit(c) ||
           std::string_view("-_.!~*'()&=+$,/%").find(c) != std::string_view::npos;
}

bool has_valid_escapes(std::string_view s) {
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%') {
            if (i + 2 >= s.size() || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) {
                return false;
            }
            i += 2;
        }
    }
    return true;
}

// The integer fields: JSON name, where it goes, Twilio's range and its unit.
struct int_field {
    std::string_view name;
    std::optional<long long> make_call_request::*member;
    std::int64_t min;
    std::int64_t max;
    std::string_view unit;
};
const int_field int_fields[] = {
    {"timeout", &make_call_request::timeout_s, 1, 600, "seconds"},
    {"time_limit", &make_call_request::time_limit_s, 1, 86400, "seconds"},
    {"machine_detection_timeout", &make_call_request::machine_detection_timeout_s, 3, 59,
     "seconds"},
    {"machine_detection_speech_threshold",
     &make_call_request::machine_detection_speech_threshold_ms, 1000, 6000, "milliseconds"},
    {"machine_detection_speech_end_threshold",
     &make_call_request::machine_detection_speech_end_threshold_ms, 500, 5000, "milliseconds"},
    {"machine_detection_silence_timeout", &make_call_request::machine_detection_silence_timeout_ms,
     2000, 10000, "milliseconds"},
};
const int_field* find_int_field(std::string_view name) {
    for (const auto& f : int_fields) {
        if (f.name == name) {
            return &f;
        }
    }
    return nullptr;
}

// The fields that take one of a few strings.
struct choice_field {
    std::string_view name;
    std::string make_call_request::*member;
    std::vector<std::string_view> choices;
};
const choice_field choice_fields[] = {
    {"recording_channels", &make_call_request::recording_channels, {"mono", "dual"}},
    {"recording_track", &make_call_request::recording_track, {"inbound", "outbound", "both"}},
    {"trim", &make_call_request::trim, {"trim-silence", "do-not-trim"}},
};
const choice_field* find_choice_field(std::string_view name) {
    for (const auto& f : choice_fields) {
        if (f.name == name) {
            return &f;
        }
    }
    return nullptr;
}

bool contains(const std::vector<std::string_view>& set, std::string_view s) {
    return std::find(set.begin(), set.end(), s) != set.end();
}

// RFC 7433 User-to-User: hex data, then percent-encoded ;encoding=hex / ;purpose= / ;content=.
bool is_uui_value(std::string_view value) {
    const auto semi =
        value.find("%3B") != std::string_view::npos ? value.find("%3B") : value.find("%3b");
    const std::string_view data = value.substr(0, semi);
    if (data.empty() || data.size() > uui_max_hex_chars ||
        !std::all_of(data.begin(), data.end(), is_hex)) {
        return false;
    }
    std::string_view params = semi == std::string_view::npos ? "" : value.substr(semi + 3);
    while (!params.empty()) {
        auto next = params.find("%3B");
        if (next == std::string_view::npos) {
            next = params.find("%3b");
        }
        const std::string_view param = params.substr(0, next);
        params = next == std::string_view::npos ? "" : params.substr(next + 3);
        const auto eq =
            param.find("%3D") != std::string_view::npos ? param.find("%3D") : param.find("%3d");
        if (eq == std::string_view::npos) {
            return false;
        }
        const std::string_view name = param.substr(0, eq);
        const std::string_view v = param.substr(eq + 3);
        const bool token = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) {
            return is_alpha(c) || is_digit(c) || c == '-' || c == '.';
        });
        if (!token || (name != "encoding" && name != "purpose" && name != "content") ||
            (name == "encoding" && v != "hex")) {
            return false;
        }
    }
    return true;
}

bool has_control_chars(std::string_view s) {
    // XML 1.0 cannot carry C0 controls other than tab/LF/CR even escaped; DEL is refused too.
    return std::any_of(s.begin(), s.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return (u < 0x20 && c != '\t' && c != '\n' && c != '\r') || u == 0x7F;
    });
}

std::string type_name(json_type t) {
    switch (t) {
    case json_type::array:
        return "an array";
    case json_type::object:
        return "an object";
    case json_type::number:
        return "a number";
    case json_type::string:
        return "a string";
    case json_type::boolean:
        return "a boolean";
    case json_type::null:
        return "null";
    }
    return "unknown";
}

// Reads a string field, or sets `error` naming the field.
bool read_string(simdjson::ondemand::value& value, std::string_view field, std::string& out,
                 request_error& error) {
    json_type type;
    if (value.type().get(type) != simdjson::SUCCESS) {
        error = {std::string(field), "malformed JSON value"};
        return false;
    }
    std::string_view text;
    if (type != json_type::string || value.get_string().get(text) != simdjson::SUCCESS) {
        error = {std::string(field),
                 std::string(field) + " must be a string, got " + type_name(type)};
        return false;
    }
    out = text;
    return true;
}

} // namespace

bool is_e164(std::string_view s) {
    if (s.size() < 3 || s.size() > 16 || s[0] != '+' || s[1] < '1' || s[1] > '9') {
        return false;
    }
    return std::all_of(s.begin() + 1, s.end(), is_digit);
}

bool is_call_sid(std::string_view s) {
    return s.size() == 34 && s.substr(0, 2) == "CA" && std::all_of(s.begin() + 2, s.end(), is_hex);
}

bool is_host_name(std::string_view host) {
    if (host.empty() || host.size() > 253) {
        return false;
    }
    if (host.front() == '[') { // IPv6 reference
        if (host.back() != ']' || host.size() < 4) {
            return false;
        }
        return std::all_of(host.begin() + 1, host.end() - 1,
                           [](char c) { return is_hex(c) || c == ':' || c == '.'; });
    }
    std::size_t start = 0;
    while (start <= host.size()) {
        const auto dot = host.find('.', start);
        const auto label =
            host.substr(start, dot == std::string_view::npos ? host.npos : dot - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (const char c : label) {
            if (!is_alpha(c) && !is_digit(c) && c != '-') {
                return false;
            }
        }
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return true;
}

bool is_host_port(std::string_view host_port) {
    const auto bracket = host_port.rfind(']');
    const auto colon = host_port.rfind(':');
    if (colon == std::string_view::npos || (bracket != std::string_view::npos && colon < bracket)) {
        return is_host_name(host_port);
    }
    const std::string_view port = host_port.substr(colon + 1);
    long value = 0;
    if (port.empty() || port.size() > 5) {
        return false;
    }
    for (const char c : port) {
        if (!is_digit(c)) {
            return false;
        }
        value = value * 10 + (c - '0');
    }
    return value >= 1 && value <= 65535 && is_host_name(host_port.substr(0, colon));
}

bool is_client_identity(std::string_view s) {
    // Twilio (error 31105): no control, space, delimiter (<>#%") or unwise ({}|\^[]`) characters,
    // at most 256. Non-ASCII is refused too: it would need an encoding Twilio does not document.
    return !s.empty() && s.size() <= client_identity_max_chars &&
           std::all_of(s.begin(), s.end(), [](char c) {
               const auto u = static_cast<unsigned char>(c);
               return u > 0x20 && u < 0x7F &&
                      std::string_view("<>#%\"{}|\\^[]`").find(c) == std::string_view::npos;
           });
}

bool parse_call_target(std::string_view s, call_target_kind& kind, std::string& why) {
    if (s.substr(0, 5) == "sips:") {
        kind = call_target_kind::sip;
        why = "sips: URIs are not supported: use sip:…;transport=tls;secure=true for TLS "
              "signalling and SRTP";
        return false;
    }
    if (s.substr(0, 4) == "sip:") {
        kind = call_target_kind::sip;
        return is_sip_uri(s, why);
    }
    if (s.substr(0, 7) == "client:") {
        kind = call_target_kind::client;
        if (!is_client_identity(s.substr(7))) {
            why = "a client: identity is 1..256 characters without spaces, controls or any of "
                  "<>#%\"{}|\\^[]`";
            return false;
        }
        return true;
    }
    kind = call_target_kind::phone;
    if (!is_e164(s)) {
        why = "an E.164 number (+ then 2 to 15 digits, no spaces), a sip: URI or client:identity";
        return false;
    }
    return true;
}

bool is_sip_from_user(std::string_view s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](char c) {
        return is_alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '_' || c == '.';
    });
}

bool is_sip_uri(std::string_view s, std::string& why) {
    if (s.size() > sip_uri_max_chars) {
        why = "a SIP URI must be under 255 characters";
        return false;
    }
    if (s.substr(0, 4) != "sip:") {
        why = "a SIP URI starts with sip:";
        return false;
    }
    std::string_view rest = s.substr(4);
    std::string_view headers;
    if (const auto q = rest.find('?'); q != std::string_view::npos) {
        headers = rest.substr(q + 1);
        rest = rest.substr(0, q);
        if (headers.empty() || headers.size() > sip_headers_max_chars) {
            why = "SIP headers after '?' must be X-Name=value pairs under 1024 characters";
            return false;
        }
    }
    std::string_view params;
    if (const auto semi = rest.find(';'); semi != std::string_view::npos) {
        params = rest.substr(semi + 1);
        rest = rest.substr(0, semi);
    }
    const auto at = rest.find('@');
    if (at == std::string_view::npos || at == 0) {
        why = "a SIP URI needs user@host";
        return false;
    }
    const std::string_view user = rest.substr(0, at);
    std::string_view host = rest.substr(at + 1);
    if (!std::all_of(user.begin(), user.end(), is_sip_user_char) || !has_valid_escapes(user)) {
        why = "the SIP user part has characters a SIP URI does not allow";
        return false;
    }
    // Optional :port after the host (after the ']' of an IPv6 reference).
    const auto bracket = host.rfind(']');
    const auto colon = host.rfind(':');
    if (colon != std::string_view::npos && (bracket == std::string_view::npos || colon > bracket)) {
        const std::string_view port = host.substr(colon + 1);
        host = host.substr(0, colon);
        long value = 0;
        for (const char c : port) {
            if (!is_digit(c) || (value = value * 10 + (c - '0')) > 65535) {
                why = "the SIP port must be 1..65535";
                return false;
            }
        }
        if (port.empty() || port.size() > 5 || value == 0) {
            why = "the SIP port must be 1..65535";
            return false;
        }
    }
    if (!is_host_name(host)) {
        why = "the SIP host is not a valid host name or address";
        return false;
    }
    std::set<std::string_view> seen;
    while (!params.empty()) {
        const auto semi = params.find(';');
        const std::string_view param = params.substr(0, semi);
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        const bool ok = param == "transport=udp" || param == "transport=tcp" ||
                        param == "transport=tls" || param == "secure=true" ||
                        (param.substr(0, 7) == "region=" && contains(sip_regions, param.substr(7)));
        if (!ok) {
            why = "SIP URI parameters may only be ;transport=udp|tcp|tls, ;secure=true and "
                  ";region=us1|us2|ie1|de1|sg1|jp1|br1|au1";
            return false;
        }
        if (!seen.insert(param.substr(0, param.find('='))).second) {
            why = "a SIP URI parameter is repeated";
            return false;
        }
    }
    while (!headers.empty()) {
        const auto amp = headers.find('&');
        const std::string_view header = headers.substr(0, amp);
        headers = amp == std::string_view::npos ? std::string_view{} : headers.substr(amp + 1);
        const auto eq = header.find('=');
        const std::string_view name = header.substr(0, eq);
        const std::string_view value =
            eq == std::string_view::npos ? std::string_view{} : header.substr(eq + 1);
        const bool name_ok =
            name.size() > 2 && (name[0] == 'X' || name[0] == 'x') && name[1] == '-' &&
            std::all_of(name.begin() + 2, name.end(),
                        [](char c) { return is_alpha(c) || is_digit(c) || c == '-'; });
        const bool value_ok =
            eq != std::string_view::npos && has_valid_escapes(value) &&
            std::all_of(value.begin(), value.end(), [](char c) {
                return is_alpha(c) || is_digit(c) ||
                       std::string_view("-_.!~*'()%+:/$,[]").find(c) != std::string_view::npos;
            });
        // User-to-User (RFC 7433) is the one standard header Twilio documents passing through.
        const bool uui = eq != std::string_view::npos && name.size() == 12 &&
                         std::equal(name.begin(), name.end(), "user-to-user", [](char a, char b) {
                             return (a >= 'A' && a <= 'Z' ? a - 'A' + 'a' : a) == b;
                         });
        if (uui) {
            if (!is_uui_value(value)) {
                why = "the User-to-User header takes hex data (up to 256 digits), optionally "
                      "followed by %3Bencoding%3Dhex";
                return false;
            }
        } else if (!name_ok || !value_ok) {
            why = "SIP headers after '?' must be X-Name=value pairs (custom X- headers and "
                  "User-to-User only, values percent-encoded)";
            return false;
        }
    }
    return true;
}

std::optional<make_call_request> parse_make_call_request(std::string_view body,
                                                         std::string_view default_from,
                                                         request_error& error) {
    if (body.size() > body_max_bytes) {
        error = {"", "the request body is over 16 KiB"};
        return std::nullopt;
    }
    simdjson::padded_string padded(body);
    simdjson::ondemand::parser parser;
    simdjson::ondemand::document doc;
    simdjson::ondemand::object object;
    if (parser.iterate(padded).get(doc) != simdjson::SUCCESS ||
        doc.get_object().get(object) != simdjson::SUCCESS) {
        error = {"", "the body must be a JSON object"};
        return std::nullopt;
    }

    make_call_request req;
    bool have_to = false;
    bool have_from = false;
    std::string mode;
    std::set<std::string, std::less<>> seen;
    for (auto field : object) {
        std::string_view key_view;
        if (field.unescaped_key().get(key_view) != simdjson::SUCCESS) {
            error = {"", "the body is not valid JSON"};
            return std::nullopt;
        }
        const std::string key(key_view); // the view dies when the value is read
        if (!seen.insert(key).second) {
            error = {key, "field " + key + " appears twice"};
            return std::nullopt;
        }
        simdjson::ondemand::value value;
        json_type type;
        if (field.value().get(value) != simdjson::SUCCESS ||
            value.type().get(type) != simdjson::SUCCESS) {
            error = {key, "malformed JSON value"};
            return std::nullopt;
        }

        // An integer within [min, max]; get_int64 refuses 1.5, 1e2, "30" and anything beyond
        // int64: all malformed here.
        const auto read_int = [&](std::optional<long long>& out, std::int64_t min, std::int64_t max,
                                  std::string_view unit) {
            std::int64_t n = 0;
            if (type != json_type::number || value.get_int64().get(n) != simdjson::SUCCESS ||
                n < min || n > max) {
                error = {key, key + " must be an integer number of " + std::string(unit) +
                                  " from " + std::to_string(min) + " to " + std::to_string(max)};
                return false;
            }
            out = n;
            return true;
        };
        // One of a fixed set of strings.
        const auto read_choice = [&](std::string& out,
                                     const std::vector<std::string_view>& choices) {
            if (!read_string(value, key, out, error)) {
                return false;
            }
            if (!contains(choices, out)) {
                std::string list;
                for (const auto c : choices) {
                    list += (list.empty() ? "" : " or ") + std::string(c);
                }
                error = {key, key + " must be " + list};
                return false;
            }
            return true;
        };
        // A non-empty array of distinct strings from `choices`.
        const auto read_events = [&](std::vector<std::string>& out,
                                     const std::vector<std::string_view>& choices) {
            std::string list;
            for (const auto c : choices) {
                list += (list.empty() ? "" : ", ") + std::string(c);
            }
            simdjson::ondemand::array events;
            if (type != json_type::array || value.get_array().get(events) != simdjson::SUCCESS) {
                error = {key, key + " must be an array of " + list};
                return false;
            }
            for (auto e : events) {
                std::string_view name;
                if (e.get_string().get(name) != simdjson::SUCCESS || !contains(choices, name)) {
                    error = {key, key + " entries must be one of " + list};
                    return false;
                }
                if (std::find(out.begin(), out.end(), name) != out.end()) {
                    error = {key, key + " lists " + std::string(name) + " twice"};
                    return false;
                }
                out.emplace_back(name);
            }
            if (out.empty()) {
                // Twilio would take an empty list as "completed only": say so instead.
                error = {key, key + " must list at least one event; leave it out for the "
                                    "default"};
                return false;
            }
            return true;
        };

        if (key == "to" || key == "from" || key == "dial") {
            std::string& out = key == "to" ? req.to : key == "from" ? req.from : req.dial;
            if (!read_string(value, key, out, error)) {
                return std::nullopt;
            }
            (key == "to" ? have_to : key == "from" ? have_from : req.fork) = true;
        } else if (key == "byoc" || key == "sip_auth_username" || key == "sip_auth_password" ||
                   key == "machine_detection") {
            std::string text;
            if (!read_string(value, key, text, error)) {
                return std::nullopt;
            }
            (key == "byoc"                ? req.byoc
             : key == "sip_auth_username" ? req.sip_auth_username
             : key == "sip_auth_password" ? req.sip_auth_password
                                          : req.machine_detection) = std::move(text);
            // Checks that need no other field come first, so each error names its own field.
            if (key == "byoc" && (req.byoc.size() != 34 || req.byoc.substr(0, 2) != "BY" ||
                                  !std::all_of(req.byoc.begin() + 2, req.byoc.end(), is_hex))) {
                error = {key, "byoc must be a BYOC trunk SID: BY followed by 32 hex digits"};
                return std::nullopt;
            }
            if (key == "machine_detection" && req.machine_detection != "Enable" &&
                req.machine_detection != "DetectMessageEnd") {
                error = {key, "machine_detection must be Enable or DetectMessageEnd"};
                return std::nullopt;
            }
        } else if (const auto* f = find_int_field(key)) {
            if (!read_int(req.*(f->member), f->min, f->max, f->unit)) {
                return std::nullopt;
            }
        } else if (key == "record") {
            bool flag = false;
            if (type != json_type::boolean || value.get_bool().get(flag) != simdjson::SUCCESS) {
                error = {key, "record must be true or false, got " + type_name(type)};
                return std::nullopt;
            }
            req.record = flag;
        } else if (key == "send_digits") {
            if (!read_string(value, key, req.send_digits, error)) {
                return std::nullopt;
            }
            if (req.send_digits.empty() || req.send_digits.size() > send_digits_max_chars ||
                !std::all_of(req.send_digits.begin(), req.send_digits.end(), [](char c) {
                    return is_digit(c) || c == '#' || c == '*' || c == 'w';
                })) {
                error = {key, "send_digits must be 1 to 32 of 0-9, #, * and w (a half-second "
                              "pause)"};
                return std::nullopt;
            }
        } else if (key == "caller_id" || key == "call_reason") {
            std::string& out = key == "caller_id" ? req.caller_id : req.call_reason;
            if (!read_string(value, key, out, error)) {
                return std::nullopt;
            }
            if (out.empty() || out.size() > call_reason_max_chars || has_control_chars(out)) {
                error = {key, key + " must be 1 to 255 characters without control characters"};
                return std::nullopt;
            }
        } else if (const auto* f = find_choice_field(key)) {
            if (!read_choice(req.*(f->member), f->choices)) {
                return std::nullopt;
            }
        } else if (key == "mode") {
            if (!read_choice(mode, {"connect", "fork"})) {
                return std::nullopt;
            }
        } else if (key == "recording_status_callback") {
            if (!read_string(value, key, req.recording_status_callback, error)) {
                return std::nullopt;
            }
            const auto url = boost::urls::parse_absolute_uri(req.recording_status_callback);
            if (!url || (url->scheme() != "https" && url->scheme() != "http") ||
                req.recording_status_callback.size() > callback_url_max_chars ||
                !is_host_name(url->encoded_host()) || url->has_fragment()) {
                error = {key, "recording_status_callback must be an absolute http(s) URL under "
                              "1024 characters whose host has no '_' (Twilio refuses those)"};
                return std::nullopt;
            }
        } else if (key == "recording_status_callback_event") {
            if (!read_events(req.recording_status_callback_events, recording_events)) {
                return std::nullopt;
            }
        } else if (key == "parameters") {
            simdjson::ondemand::object params;
            if (type != json_type::object || value.get_object().get(params) != simdjson::SUCCESS) {
                error = {key,
                         "parameters must be an object of string values, got " + type_name(type)};
                return std::nullopt;
            }
            std::set<std::string, std::less<>> names;
            for (auto p : params) {
                std::string_view name_view;
                simdjson::ondemand::value pv;
                if (p.unescaped_key().get(name_view) != simdjson::SUCCESS) {
                    error = {key, "malformed parameter name"};
                    return std::nullopt;
                }
                std::string name(name_view);
                std::string text;
                if (p.value().get(pv) != simdjson::SUCCESS ||
                    !read_string(pv, "parameters." + name, text, error)) {
                    error.field = key;
                    if (error.message.empty()) {
                        error.message = "malformed parameter value";
                    }
                    return std::nullopt;
                }
                if (name.empty() || has_control_chars(name) || has_control_chars(text)) {
                    error = {key, "parameter names must be non-empty and names and values free of "
                                  "control characters"};
                    return std::nullopt;
                }
                if (name == parameters_id_name) {
                    error = {key, "parameter " + name + " is reserved by callstream"};
                    return std::nullopt;
                }
                if (name.size() + text.size() > parameter_max_chars) {
                    error = {key, "parameter " + name +
                                      ": name + value must be under 500 "
                                      "characters"};
                    return std::nullopt;
                }
                if (!names.insert(name).second) {
                    error = {key, "parameter " + name + " appears twice"};
                    return std::nullopt;
                }
                if (names.size() > parameters_max_count) {
                    error = {key, "at most 32 parameters"};
                    return std::nullopt;
                }
                req.parameters.emplace_back(std::move(name), std::move(text));
            }
        } else if (key == "status_callback_events") {
            if (!read_events(req.status_callback_events, all_events)) {
                return std::nullopt;
            }
        } else {
            error = {key, "unknown field " + key};
            return std::nullopt;
        }
    }
    // (Trailing content after the object makes get_object() fail above: TRAILING_CONTENT.)

    // Cross-field checks, in the order a caller would fix them.
    if (!have_to || req.to.empty()) {
        error = {"to", "to is required: an E.164 number like +14155551212, a sip: URI or "
                       "client:identity"};
        return std::nullopt;
    }
    if (std::string why; !parse_call_target(req.to, req.to_kind, why)) {
        error = {"to", req.to_kind == call_target_kind::phone ? "to must be " + why : why};
        return std::nullopt;
    }
    req.to_is_sip = req.to_kind == call_target_kind::sip;
    const bool to_phone = req.to_kind == call_target_kind::phone;
    const bool to_client = req.to_kind == call_target_kind::client;
    if (!have_from) {
        req.from = default_from;
    }
    const std::string from_origin = have_from ? "from" : "the default from (--twilio-from)";
    if (req.from.empty()) {
        error = {"from", "from is required: pass it or start the server with --twilio-from / "
                         "TWILIO_FROM"};
        return std::nullopt;
    }
    const bool from_ok =
        req.to_is_sip ? is_sip_from_user(req.from)
        : to_client
            ? is_e164(req.from) ||
                  is_client_identity(req.from.substr(req.from.rfind("client:", 0) == 0 ? 7 : 0))
            : is_e164(req.from);
    if (!from_ok) {
        error = {"from", req.to_is_sip
                             ? from_origin + " must be letters, digits and + - _ . for a SIP call"
                         : to_client ? from_origin + " must be an E.164 number or a client "
                                                     "identity for a client: call"
                                     : from_origin + " must be an E.164 number for a phone call"};
        return std::nullopt;
    }
    if (seen.count("byoc") != 0 && !to_phone) {
        error = {"byoc", "byoc only applies when to is a phone number"};
        return std::nullopt;
    }
    for (const char* f : {"sip_auth_username", "sip_auth_password"}) {
        if (seen.count(f) != 0 && !req.to_is_sip) {
            error = {f, std::string(f) + " only applies when to is a sip: URI"};
            return std::nullopt;
        }
    }
    if (seen.count("sip_auth_username") != 0 || seen.count("sip_auth_password") != 0) {
        if (req.sip_auth_username.empty() || req.sip_auth_username.size() > credential_max_chars ||
            has_control_chars(req.sip_auth_username)) {
            error = {"sip_auth_username",
                     "sip_auth_username must be 1..128 characters and is required with "
                     "sip_auth_password"};
            return std::nullopt;
        }
        if (req.sip_auth_password.empty() || req.sip_auth_password.size() > credential_max_chars ||
            has_control_chars(req.sip_auth_password)) {
            error = {"sip_auth_password",
                     "sip_auth_password must be 1..128 characters and is required with "
                     "sip_auth_username"};
            return std::nullopt;
        }
    }
    if (!req.caller_id.empty()) {
        // Twilio: a phone number for phone targets, the SIP From user for SIP targets, a number
        // or client:identity for client targets.
        const bool ok =
            to_phone    ? is_e164(req.caller_id)
            : to_client ? is_e164(req.caller_id) || (req.caller_id.rfind("client:", 0) == 0 &&
                                                     is_client_identity(req.caller_id.substr(7)))
                        : is_sip_from_user(req.caller_id);
        if (!ok) {
            error = {"caller_id", to_phone ? "caller_id must be an E.164 number for a phone call"
                                  : to_client
                                      ? "caller_id must be an E.164 number or client:identity"
                                      : "caller_id must be letters, digits and + - _ . for a "
                                        "SIP call"};
            return std::nullopt;
        }
    }
    for (const char* f : {"recording_channels", "recording_track", "recording_status_callback",
                          "recording_status_callback_event", "trim"}) {
        if (seen.count(f) != 0 && req.record != true) {
            error = {f, std::string(f) + " only applies with record: true"};
            return std::nullopt;
        }
    }
    for (const char* f :
         {"machine_detection_timeout", "machine_detection_speech_threshold",
          "machine_detection_speech_end_threshold", "machine_detection_silence_timeout"}) {
        if (seen.count(f) != 0 && req.machine_detection.empty()) {
            error = {f, std::string(f) + " only applies with machine_detection"};
            return std::nullopt;
        }
    }
    if (!req.send_digits.empty() && !req.machine_detection.empty()) {
        error = {"send_digits", "Twilio ignores machine_detection when send_digits is set: "
                                "send one of them"};
        return std::nullopt;
    }
    req.fork = mode == "fork";
    if (req.fork && seen.count("dial") == 0) {
        error = {"dial", "mode fork needs dial: the number, sip: URI or client:identity to "
                         "connect the callee to"};
        return std::nullopt;
    }
    if (!req.fork && seen.count("dial") != 0) {
        error = {"dial", "dial only applies with mode: fork"};
        return std::nullopt;
    }
    if (req.fork) {
        call_target_kind kind{};
        if (std::string why; !parse_call_target(req.dial, kind, why)) {
            error = {"dial", kind == call_target_kind::phone ? "dial must be " + why : why};
            return std::nullopt;
        }
    }
    if (seen.count("status_callback_events") == 0) {
        req.status_callback_events.assign(all_events.begin(), all_events.end());
    }
    return req;
}

std::string
make_call_twiml(const make_call_request& req, std::string_view media_stream_url,
                const std::vector<std::pair<std::string, std::string>>& stream_parameters) {
    return req.fork ? fork_stream_twiml(media_stream_url, stream_parameters, req.dial)
                    : connect_stream_twiml(media_stream_url, stream_parameters);
}

form_fields make_call_form(const make_call_request& req, std::string_view public_url,
                           std::string twiml) {
    const std::string status_url = std::string(public_url) + "/status";
    form_fields form = {{"To", req.to}, {"From", req.from}, {"Twiml", std::move(twiml)}};
    form.push_back({"StatusCallback", status_url});
    form.push_back({"StatusCallbackMethod", "POST"});
    for (const auto& e : req.status_callback_events) {
        form.push_back({"StatusCallbackEvent", e});
    }
    const auto add_if = [&form](const char* name, const std::string& value) {
        if (!value.empty()) {
            form.push_back({name, value});
        }
    };
    const auto add_int = [&form](const char* name, const std::optional<long long>& value) {
        if (value) {
            form.push_back({name, std::to_string(*value)});
        }
    };
    add_int("Timeout", req.timeout_s);
    add_int("TimeLimit", req.time_limit_s);
    add_if("SendDigits", req.send_digits);
    add_if("CallerId", req.caller_id);
    add_if("CallReason", req.call_reason);
    if (req.record) {
        form.push_back({"Record", *req.record ? "true" : "false"});
    }
    add_if("RecordingChannels", req.recording_channels);
    add_if("RecordingTrack", req.recording_track);
    add_if("Trim", req.trim);
    if (!req.recording_status_callback.empty()) {
        form.push_back({"RecordingStatusCallback", req.recording_status_callback});
        form.push_back({"RecordingStatusCallbackMethod", "POST"});
    }
    for (const auto& e : req.recording_status_callback_events) {
        form.push_back({"RecordingStatusCallbackEvent", e});
    }
    if (!req.machine_detection.empty()) {
        form.push_back({"MachineDetection", req.machine_detection});
        form.push_back({"AsyncAmd", "true"});
        form.push_back({"AsyncAmdStatusCallback", status_url});
        form.push_back({"AsyncAmdStatusCallbackMethod", "POST"});
    }
    add_int("MachineDetectionTimeout", req.machine_detection_timeout_s);
    add_int("MachineDetectionSpeechThreshold", req.machine_detection_speech_threshold_ms);
    add_int("MachineDetectionSpeechEndThreshold", req.machine_detection_speech_end_threshold_ms);
    add_int("MachineDetectionSilenceTimeout", req.machine_detection_silence_timeout_ms);
    add_if("Byoc", req.byoc);
    if (!req.sip_auth_username.empty()) {
        form.push_back({"SipAuthUsername", req.sip_auth_username});
        form.push_back({"SipAuthPassword", req.sip_auth_password});
    }
    return form;
}

} // namespace callstream::server
