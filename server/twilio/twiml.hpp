#pragma once
// TwiML that connects a call to our media stream. Pure functions, any thread; they allocate
// and never fail (every value is escaped).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callstream::server {

// Escapes & < > " ' for use in XML text and attribute values.
std::string xml_escape(std::string_view s);

// <Response><Connect><Stream url="…"><Parameter name= value=/>…</Stream></Connect></Response>
std::string connect_stream_twiml(std::string_view stream_url,
                                 const std::vector<std::pair<std::string, std::string>>& params);

// The wss:// media-stream URL for a public base ("https://abc.ngrok-free.app" or a bare host).
std::string media_stream_url(std::string_view public_base);

} // namespace callstream::server
