#pragma once
// Orders Twilio's status callbacks across instances. Twilio may post a call's callbacks to any
// instance behind the load balancer, and out of order; each instance's call registry orders
// what it receives by SequenceNumber, and a sequencer makes that order hold cluster-wide
// (server/cluster/redis_status_sequencer.hpp keeps the newest status per call in Redis).
//
// Threading: order() may be called from any thread and returns at once; `done` runs on any
// thread (the cluster's), once.

#include <functional>
#include <utility>

#include "server/calls/call_registry.hpp"
#include "server/cluster/async_call.hpp"

namespace callstream::server {

struct ordered_status {
    // The newest status known for the call: the update itself when it is the newest
    // cluster-wide; else the update with call_status, sequence_number, sip_response_code and
    // call_duration replaced by the newer ones another instance recorded.
    status_update update;
    bool newest = true; // false: a newer callback had been recorded already
};

class status_sequencer {
  public:
    virtual ~status_sequencer() = default;
    // When the sequencer cannot tell (its store unreachable, no SequenceNumber), `done` gets
    // the update unchanged with newest = true: each instance then orders on its own.
    virtual void order(status_update update, std::function<void(ordered_status)> done) = 0;
};

// status_sequencer::order for coroutines: resumes them on their own executor.
template <typename Token>
auto async_order_status(status_sequencer& sequencer, status_update update, Token&& token) {
    return async_call<ordered_status>(
        [&sequencer, u = std::move(update)](std::function<void(ordered_status)> done) mutable {
            sequencer.order(std::move(u), std::move(done));
        },
        std::forward<Token>(token));
}

} // namespace callstream::server
