#pragma once
// TwiML that sends a call's audio to our media stream. Pure functions, any thread; they
// allocate and never fail (every value is escaped).
//
// Two shapes:
//   connect  <Response><Connect><Stream url="…"><Parameter …/></Stream></Connect></Response>
//            bidirectional: the call talks to callstream (echo, play, a bridge).
//   fork     <Response><Start><Stream url="…" track="both_tracks"><Parameter …/></Stream></Start>
//            <Dial>…</Dial></Response>
//            receive-only: the call goes on to `dial` while both tracks are copied to us
//            (recording, live transcription). Twilio refuses anything sent back (error 31924).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callstream::server {

using twiml_parameters = std::vector<std::pair<std::string, std::string>>;

// The one <Parameter> a call carries when its parameters are kept on our side
// (server/calls/call_parameter_store.hpp): its value is the id they are stored under. Reserved:
// /make-call and /twiml refuse it from callers.
inline constexpr std::string_view parameters_id_name = "callstream_parameters_id";

// Escapes & < > " ' for XML text and attribute values, and writes TAB, LF and CR as character
// references (&#9; &#10; &#13;) so attribute-value normalisation cannot turn them into spaces.
// Other C0 controls cannot appear in XML 1.0 at all and are dropped.
std::string xml_escape(std::string_view s);

// <Response><Connect><Stream url="…"><Parameter name= value=/>…</Stream></Connect></Response>
std::string connect_stream_twiml(std::string_view stream_url, const twiml_parameters& params);

// <Response><Start><Stream url="…" track="both_tracks">…</Stream></Start><Dial>…</Dial></Response>.
// `dial` is an E.164 number (<Number>), a sip: URI (<Sip>) or client:identity (<Client>); the
// caller validates it (parse_call_target in create_call.hpp).
std::string fork_stream_twiml(std::string_view stream_url, const twiml_parameters& params,
                              std::string_view dial);

// The wss:// media-stream URL for a public base ("https://abc.ngrok-free.app" or a bare host).
// `path` is "/media-stream", or in a cluster "/i/{instance}/media-stream" to pin the stream to
// the instance that pre-warmed its bridge.
std::string media_stream_url(std::string_view public_base, std::string_view path = "/media-stream");

} // namespace callstream::server
