#include "server/twilio/twiml.hpp"

namespace callstream::server {

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
        default:
            // Control characters other than tab/newline are not allowed in XML 1.0 at all.
            if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n' || c == '\r') {
                out.push_back(c);
            }
        }
    }
    return out;
}

std::string connect_stream_twiml(std::string_view stream_url,
                                 const std::vector<std::pair<std::string, std::string>>& params) {
    std::string out =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Connect><Stream url=\"";
    out += xml_escape(stream_url);
    out += "\">";
    for (const auto& [name, value] : params) {
        out += "<Parameter name=\"" + xml_escape(name) + "\" value=\"" + xml_escape(value) + "\"/>";
    }
    out += "</Stream></Connect></Response>\n";
    return out;
}

std::string media_stream_url(std::string_view public_base) {
    // Twilio only connects streams over wss; whatever scheme the base names, the stream is wss.
    if (const auto pos = public_base.find("://"); pos != std::string_view::npos) {
        public_base.remove_prefix(pos + 3);
    }
    while (!public_base.empty() && public_base.back() == '/') {
        public_base.remove_suffix(1);
    }
    return "wss://" + std::string(public_base) + "/media-stream";
}

} // namespace callstream::server
