#pragma once
// Pre-warm from the voice webhook: when /twiml answers a call whose stream will run app=bridge,
// open that call's upstream at once (keyed by CallSid), so the stream's start adopts a socket
// that is already open instead of waiting for a handshake (BRIDGE.md §1.1.6).
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

// `params` are the <Parameter>s the TwiML will carry (query fields plus CallSid, From, To).
void prewarm_for_twiml(bridge_service& service, std::string_view default_app,
                       const std::vector<std::pair<std::string, std::string>>& params,
                       boost::asio::any_io_executor executor);

} // namespace callstream::server::bridge
