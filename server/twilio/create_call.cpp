#include "server/twilio/create_call.hpp"

#include <algorithm>
#include <array>
#include <set>

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
constexpr std::array<std::string_view, 4> all_events = {"initiated", "ringing", "answered",
                                                        "completed"};

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

bool is_hostname(std::string_view host) {
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
    if (!is_hostname(host)) {
        why = "the SIP host is not a valid host name or address";
        return false;
    }
    std::set<std::string_view> seen;
    while (!params.empty()) {
        const auto semi = params.find(';');
        const std::string_view param = params.substr(0, semi);
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        const bool ok = param == "transport=udp" || param == "transport=tcp" ||
                        param == "transport=tls" || param == "secure=true";
        if (!ok) {
            why = "SIP URI parameters may only be ;transport=udp|tcp|tls and ;secure=true";
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
        if (!name_ok || !value_ok) {
            why = "SIP headers after '?' must be X-Name=value pairs (custom X- headers only, "
                  "values percent-encoded)";
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

        if (key == "to") {
            if (!read_string(value, key, req.to, error)) {
                return std::nullopt;
            }
            have_to = true;
        } else if (key == "from") {
            if (!read_string(value, key, req.from, error)) {
                return std::nullopt;
            }
            have_from = true;
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
        } else if (key == "timeout") {
            std::int64_t seconds = 0;
            // get_int64 refuses 1.5, 1e2, "30" and anything beyond int64: all malformed here.
            if (type != json_type::number || value.get_int64().get(seconds) != simdjson::SUCCESS ||
                seconds < 1 || seconds > 600) {
                error = {key, "timeout must be an integer number of seconds from 1 to 600"};
                return std::nullopt;
            }
            req.timeout_s = seconds;
        } else if (key == "record") {
            bool flag = false;
            if (type != json_type::boolean || value.get_bool().get(flag) != simdjson::SUCCESS) {
                error = {key, "record must be true or false, got " + type_name(type)};
                return std::nullopt;
            }
            req.record = flag;
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
            simdjson::ondemand::array events;
            if (type != json_type::array || value.get_array().get(events) != simdjson::SUCCESS) {
                error = {key, "status_callback_events must be an array of initiated, ringing, "
                              "answered, completed"};
                return std::nullopt;
            }
            for (auto e : events) {
                std::string_view name;
                if (e.get_string().get(name) != simdjson::SUCCESS ||
                    std::find(all_events.begin(), all_events.end(), name) == all_events.end()) {
                    error = {key, "status_callback_events entries must be initiated, ringing, "
                                  "answered or completed"};
                    return std::nullopt;
                }
                if (std::find(req.status_callback_events.begin(), req.status_callback_events.end(),
                              name) != req.status_callback_events.end()) {
                    error = {key, "status_callback_events lists " + std::string(name) + " twice"};
                    return std::nullopt;
                }
                req.status_callback_events.emplace_back(name);
            }
        } else {
            error = {key, "unknown field " + key};
            return std::nullopt;
        }
    }
    // (Trailing content after the object makes get_object() fail above: TRAILING_CONTENT.)

    // Cross-field checks, in the order a caller would fix them.
    if (!have_to || req.to.empty()) {
        error = {"to", "to is required: an E.164 number like +14155551212 or a sip: URI"};
        return std::nullopt;
    }
    if (req.to.substr(0, 5) == "sips:") {
        error = {"to", "sips: URIs are not supported: use sip:…;transport=tls;secure=true for TLS "
                       "signalling and SRTP"};
        return std::nullopt;
    }
    if (req.to.substr(0, 4) == "sip:") {
        std::string why;
        if (!is_sip_uri(req.to, why)) {
            error = {"to", why};
            return std::nullopt;
        }
        req.to_is_sip = true;
    } else if (!is_e164(req.to)) {
        error = {"to", "to must be an E.164 number (+ then 2 to 15 digits, no spaces) or a sip: "
                       "URI"};
        return std::nullopt;
    }
    if (!have_from) {
        req.from = default_from;
    }
    const std::string from_origin = have_from ? "from" : "the default from (--twilio-from)";
    if (req.from.empty()) {
        error = {"from", "from is required: pass it or start the server with --twilio-from / "
                         "TWILIO_FROM"};
        return std::nullopt;
    }
    if (req.to_is_sip ? !is_sip_from_user(req.from) : !is_e164(req.from)) {
        error = {"from", req.to_is_sip
                             ? from_origin + " must be letters, digits and + - _ . for a SIP call"
                             : from_origin + " must be an E.164 number for a phone call"};
        return std::nullopt;
    }
    if (seen.count("byoc") != 0) {
        if (req.to_is_sip) {
            error = {"byoc", "byoc only applies when to is a phone number"};
            return std::nullopt;
        }
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
    if (seen.count("status_callback_events") == 0) {
        req.status_callback_events.assign(all_events.begin(), all_events.end());
    }
    return req;
}

form_fields make_call_form(const make_call_request& req, std::string_view public_url,
                           std::string_view media_stream_url) {
    const std::string status_url = std::string(public_url) + "/status";
    form_fields form = {{"To", req.to}, {"From", req.from}};
    const std::string twiml = connect_stream_twiml(media_stream_url, req.parameters);
    if (twiml.size() <= twiml_inline_max_chars) {
        form.push_back({"Twiml", twiml});
    } else {
        // Too long to inline: Twilio fetches it from /twiml, which turns the query back into
        // <Parameter>s. The query is form-encoded with the same rules.
        const form_fields& query = req.parameters;
        form.push_back({"Url", std::string(public_url) + "/twiml?" + form_encode(query)});
        form.push_back({"Method", "POST"});
    }
    form.push_back({"StatusCallback", status_url});
    form.push_back({"StatusCallbackMethod", "POST"});
    for (const auto& e : req.status_callback_events) {
        form.push_back({"StatusCallbackEvent", e});
    }
    if (req.timeout_s) {
        form.push_back({"Timeout", std::to_string(*req.timeout_s)});
    }
    if (req.record) {
        form.push_back({"Record", *req.record ? "true" : "false"});
    }
    if (!req.machine_detection.empty()) {
        form.push_back({"MachineDetection", req.machine_detection});
        form.push_back({"AsyncAmd", "true"});
        form.push_back({"AsyncAmdStatusCallback", status_url});
        form.push_back({"AsyncAmdStatusCallbackMethod", "POST"});
    }
    if (!req.byoc.empty()) {
        form.push_back({"Byoc", req.byoc});
    }
    if (!req.sip_auth_username.empty()) {
        form.push_back({"SipAuthUsername", req.sip_auth_username});
        form.push_back({"SipAuthPassword", req.sip_auth_password});
    }
    return form;
}

} // namespace callstream::server
