#pragma once
// Pre-warm from the webhooks: when /twiml answers a call, or /make-call has Twilio's answer for
// one, whose stream will run app=bridge, open that call's upstream at once (keyed by CallSid),
// so the stream's start adopts a socket that is already open instead of waiting for a
// handshake (BRIDGE.md §1.1.6). In cluster mode the TwiML of such a call names this instance
// in its Stream URL (/i/{instance}/media-stream), so HAProxy brings the stream here.
//
// Calling thread: the HTTP connection's network thread; `executor` must be the one running it.
// Never fails the webhook: an unknown bridge name or a missing CallSid just skips the pre-warm
// (the stream's start then reports the problem).

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <boost/asio/any_io_executor.hpp>

namespace callstream::server::bridge {

class bridge_service;

using call_parameters = std::vector<std::pair<std::string, std::string>>;

// True when a stream carrying `params` (its <Parameter>s) runs app=bridge (or the default app
// does) towards an upstream `service` knows: the call is worth pre-warming and pinning.
bool wants_prewarm(const bridge_service& service, std::string_view default_app,
                   const call_parameters& params);

// Opens `call_sid`'s upstream when wants_prewarm; returns whether it did (or one was already
// open for the call).
bool prewarm_call(bridge_service& service, std::string_view default_app, std::string_view call_sid,
                  const call_parameters& params, boost::asio::any_io_executor executor);

// /twiml: `params` are the <Parameter>s the TwiML will carry (query fields plus CallSid, From,
// To); the CallSid is taken from them.
bool prewarm_for_twiml(bridge_service& service, std::string_view default_app,
                       const call_parameters& params, boost::asio::any_io_executor executor);

} // namespace callstream::server::bridge
