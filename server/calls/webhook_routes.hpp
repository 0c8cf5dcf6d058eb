#pragma once
// The voice webhook, GET|POST /twiml: Twilio asks what to do with a call and gets TwiML that
// connects it to this server's /media-stream, with CallSid, From, To and every query parameter
// as <Parameter>s. Signature checks run first (server_context::webhook_checks).
//
// Added on the main thread at startup; handlers run on network threads.

#include "server/http/router.hpp"

namespace callstream::server {

void add_webhook_routes(router& r);

} // namespace callstream::server
