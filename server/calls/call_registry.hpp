#pragma once
// Recent calls: the ones placed through /make-call, the ones Twilio told us about through
// /status, and the media streams the WebSocket sessions ran for them.
//
// Thread-safe: every method takes one mutex (control plane only: call setup, status callbacks,
// stream start/stop, HTTP listing; never per audio frame). Bounded: beyond `capacity` calls the
// oldest-created call is evicted. Returned records are copies.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/calls/call_parameter_store.hpp"

namespace callstream::server {

class status_sequencer; // server/calls/status_sequencer.hpp

struct stream_record {
    std::string stream_sid;
    std::string processors;       // the processor chain, e.g. "echo" or "record,play"
    stream_parameters parameters; // start.customParameters, after resolving a stored id
    std::chrono::system_clock::time_point started;
    std::optional<std::chrono::system_clock::time_point> stopped;
};

struct call_record {
    std::string sid;
    std::string to;
    std::string from;
    std::string direction; // outbound-api (from /make-call), inbound, …
    std::string status;    // Twilio's CallStatus: queued, ringing, in-progress, completed, …
    std::string answered_by;
    std::string sip_response_code;
    std::string duration_s;
    std::int64_t sequence_number = -1; // highest status-callback SequenceNumber applied
    std::chrono::system_clock::time_point created;
    std::chrono::system_clock::time_point updated;
    std::vector<stream_record> streams;
};

// What a status callback carried (form fields; empty = absent).
struct status_update {
    std::string call_sid;
    std::string call_status;
    std::string sequence_number; // decimal; absent on AMD callbacks
    std::string to;
    std::string from;
    std::string direction;
    std::string answered_by;
    std::string sip_response_code;
    std::string call_duration;
};

// Told of every stream start and stop, after the registry recorded it, outside its lock, on
// the stream's network thread; must return at once (cluster mode registers streams in Redis).
class stream_observer {
  public:
    virtual ~stream_observer() = default;
    virtual void stream_started(std::string_view call_sid, std::string_view stream_sid) = 0;
    virtual void stream_stopped(std::string_view call_sid, std::string_view stream_sid) = 0;
};

class call_registry {
  public:
    static constexpr std::size_t default_capacity = 1000;
    // `parameters` keeps the stream parameters of calls too long to carry them in their TwiML;
    // null: a memory_call_parameter_store (one instance; a cluster passes a shared one).
    explicit call_registry(std::size_t capacity = default_capacity,
                           std::shared_ptr<call_parameter_store> parameters = nullptr);

    // Thread-safe itself; lives as long as the registry.
    call_parameter_store& parameters() const { return *parameters_; }

    // A call we placed (Twilio answered 201).
    void on_call_created(std::string_view sid, std::string_view to, std::string_view from,
                         std::string_view status);

    // A status callback. Callbacks arrive out of order: the status is applied only when its
    // SequenceNumber is higher than the highest applied so far; AMD results (no sequence) only set
    // answered_by. Unknown calls are added (inbound calls, or calls from before a restart).
    // Returns true when the status was applied.
    bool on_status(const status_update& update);

    // A voice webhook (/twiml) for a call: records CallSid, To, From, Direction when the SID
    // looks like one. Sets no status (webhooks carry no SequenceNumber).
    void on_webhook(const std::vector<std::pair<std::string, std::string>>& form);

    // Called by the media session when a stream starts and stops (network thread).
    void on_stream_started(std::string_view call_sid, std::string_view stream_sid,
                           std::string_view processors, stream_parameters parameters = {});
    void on_stream_stopped(std::string_view call_sid, std::string_view stream_sid);

    // Startup only, before the network threads run: cluster mode's status ordering (Redis).
    void set_status_sequencer(std::shared_ptr<status_sequencer> sequencer) {
        sequencer_ = std::move(sequencer);
    }
    // Null outside cluster mode.
    status_sequencer* sequencer() const { return sequencer_.get(); }
    // Startup only, before the network threads run: cluster mode's shared store (Redis).
    void set_parameter_store(std::shared_ptr<call_parameter_store> store) {
        parameters_ = std::move(store);
    }
    // Startup only, before the network threads run.
    void set_stream_observer(std::shared_ptr<stream_observer> observer) {
        observer_ = std::move(observer);
    }

    // Newest first, at most `limit`.
    std::vector<call_record> recent(std::size_t limit = default_capacity) const;
    std::optional<call_record> find(std::string_view sid) const;
    std::size_t size() const;

  private:
    call_record& find_or_add_locked(std::string_view sid);

    const std::size_t capacity_;
    std::shared_ptr<call_parameter_store> parameters_;
    std::shared_ptr<stream_observer> observer_;   // set at startup, read-only afterwards
    std::shared_ptr<status_sequencer> sequencer_; // same
    mutable std::mutex mutex_;
    std::list<call_record> calls_; // oldest first; guarded by mutex_
    std::unordered_map<std::string, std::list<call_record>::iterator> by_sid_;
};

// JSON of one call: {"sid","to","from","direction","status","answered_by","created","updated",
// "streams":[{"stream_sid","processors","parameters":{…},"started","stopped"}],"processors":[…]};
// times ISO 8601.
std::string call_record_json(const call_record& call);

} // namespace callstream::server
