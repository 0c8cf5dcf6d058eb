#include "server/twilio/twiml.hpp"

namespace callstream::server {
namespace {

constexpr std::string_view xml_declaration = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

void append_stream(std::string& out, std::string_view stream_url, const twiml_parameters& params,
                   std::string_view track) {
    out += "<Stream url=\"";
    out += xml_escape(stream_url);
    out += "\"";
    if (!track.empty()) {
        out += " track=\"";
        out += track;
        out += "\"";
    }
    out += ">";
    for (const auto& [name, value] : params) {
        out += "<Parameter name=\"" + xml_escape(name) + "\" value=\"" + xml_escape(value) + "\"/>";
    }
    out += "</Stream>";
}

} // namespace

std::string xml_escape(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (const char c : s) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&apos;";
            break;
        // A literal TAB/LF/CR inside an attribute is normalised to a space by every XML parser;
        // a character reference survives as the character itself.
        case '\t':
            out += "&#9;";
            break;
        case '\n':
            out += "&#10;";
            break;
        case '\r':
            out += "&#13;";
            break;
        default:
            // Other control characters are not allowed in XML 1.0 at all, not even escaped.
            if (static_cast<unsigned char>(c) >= 0x20) {
                out.push_back(c);
            }
        }
    }
    return out;
}

std::string connect_stream_twiml(std::string_view stream_url, const twiml_parameters& params) {
    std::string out(xml_declaration);
    out += "<Response><Connect>";
    append_stream(out, stream_url, params, {});
    out += "</Connect></Response>\n";
    return out;
}

std::string fork_stream_twiml(std::string_view stream_url, const twiml_parameters& params,
                              std::string_view dial) {
    std::string out(xml_declaration);
    out += "<Response><Start>";
    append_stream(out, stream_url, params, "both_tracks");
    out += "</Start><Dial>";
    if (dial.substr(0, 4) == "sip:") {
        out += "<Sip>" + xml_escape(dial) + "</Sip>";
    } else if (dial.substr(0, 7) == "client:") {
        out += "<Client>" + xml_escape(dial.substr(7)) + "</Client>";
    } else {
        out += "<Number>" + xml_escape(dial) + "</Number>";
    }
    out += "</Dial></Response>\n";
    return out;
}

std::string media_stream_url(std::string_view public_base, std::string_view path) {
    // Twilio only connects streams over wss; whatever scheme the base names, the stream is wss.
    if (const auto pos = public_base.find("://"); pos != std::string_view::npos) {
        public_base.remove_prefix(pos + 3);
    }
    while (!public_base.empty() && public_base.back() == '/') {
        public_base.remove_suffix(1);
    }
    return "wss://" + std::string(public_base) + std::string(path);
}

} // namespace callstream::server
