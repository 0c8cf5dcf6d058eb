#pragma once
// Per-call stream parameters kept on our side, for calls whose parameters would not fit in the
// TwiML Twilio accepts (4,000 characters inline). /make-call puts them here under a short
// random id and writes only that id into the TwiML (<Parameter name="callstream_parameters_id">);
// when the stream starts, the media session takes them back and the stream sees them as if they
// had arrived in start.customParameters.
//
// An interface because the data must be reachable from whichever instance Twilio connects the
// stream to: memory_call_parameter_store serves one instance; a shared store (Redis) serves a
// cluster (server/cluster/redis_parameter_store.hpp). Implementations are thread-safe: put runs
// on the webhook's network thread (/make-call, /twiml), take on the stream's network thread
// (control plane only, once per call). The interface is asynchronous so that a shared store
// never blocks a network thread: handlers may run inline (memory) or on another thread (Redis).

#include <chrono>
#include <cstddef>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "server/cluster/async_call.hpp"

namespace callstream::server {

using stream_parameters = std::vector<std::pair<std::string, std::string>>;

class call_parameter_store {
  public:
    using put_handler = std::function<void(std::string id)>;
    using take_handler = std::function<void(std::optional<stream_parameters>)>;
    virtual ~call_parameter_store() = default;
    // Keeps `params` (in order) for at most `ttl`; `done` gets the id they are kept under: 32
    // lowercase hex characters from a CSPRNG, so a stream cannot guess another call's id; or an
    // empty string when the store cannot keep them (a shared store unreachable).
    virtual void put(stream_parameters params, std::chrono::seconds ttl, put_handler done) = 0;
    // `done` gets and the store forgets the parameters kept under `id`; nullopt when unknown,
    // expired or the store is unreachable.
    virtual void take(std::string id, take_handler done) = 0;
    // Forgets `id` without reading it (Twilio refused the call). Best effort.
    virtual void discard(std::string_view id) = 0;
};

// One instance's store: a map bounded by `capacity` (the oldest entry is evicted first) whose
// entries expire after their ttl (checked on every put and take).
class memory_call_parameter_store final : public call_parameter_store {
  public:
    static constexpr std::size_t default_capacity = 10000;
    explicit memory_call_parameter_store(std::size_t capacity = default_capacity);

    // The synchronous forms; the interface's call them and run `done` inline.
    std::string put(stream_parameters params, std::chrono::seconds ttl);
    std::optional<stream_parameters> take(std::string_view id);
    void put(stream_parameters params, std::chrono::seconds ttl, put_handler done) override;
    void take(std::string id, take_handler done) override;
    void discard(std::string_view id) override;
    std::size_t size() const;

  private:
    struct entry {
        std::string id;
        stream_parameters params;
        std::chrono::steady_clock::time_point expires;
    };
    void expire_locked(std::chrono::steady_clock::time_point now);

    const std::size_t capacity_;
    mutable std::mutex mutex_;
    std::list<entry> entries_; // oldest first; guarded by mutex_
    std::unordered_map<std::string, std::list<entry>::iterator> by_id_;
};

// call_parameter_store::put for coroutines: resumes them on their own executor with the id (or
// "" when the store cannot keep the parameters).
template <typename Token>
auto async_put_parameters(call_parameter_store& store, stream_parameters params,
                          std::chrono::seconds ttl, Token&& token) {
    return async_call<std::string>(
        [&store, p = std::move(params), ttl](std::function<void(std::string)> done) mutable {
            store.put(std::move(p), ttl, std::move(done));
        },
        std::forward<Token>(token));
}

// True when `params` cannot travel inline as TwiML <Parameter>s: Twilio wants each name plus
// value under 500 characters.
bool parameters_too_long_for_twiml(const stream_parameters& params);

// How long a placed call's parameters are kept: the ring timeout, queueing at 1 call per second
// and answering machine detection all come before the stream starts.
inline constexpr std::chrono::seconds call_parameters_ttl{3600};

// A 32-character lowercase hex id from OpenSSL's CSPRNG (RAND_bytes).
std::string random_parameter_id();

enum class parameters_resolution {
    inline_parameters, // no id among the parameters: nothing to do
    resolved,          // the id was replaced by the parameters stored under it
    unknown_id,        // an id the store does not know (expired, taken, another store)
};

// One starting stream's look-up of its stored parameters. The store may answer on another
// thread; `wake` (the stream's cross-thread wakeup) is then called, and the stream calls
// apply() on its own thread. Thread-safe.
class parameters_lookup : public std::enable_shared_from_this<parameters_lookup> {
  public:
    // True once the store answered (at once for the memory store).
    bool ready() const;
    // Stream thread, once ready(): replaces the id in `custom` with the stored parameters (in
    // their original order; anything else Twilio carried stays). resolved or unknown_id.
    parameters_resolution apply(stream_parameters& custom);

  private:
    friend std::shared_ptr<parameters_lookup>
    start_parameters_lookup(call_parameter_store&, const stream_parameters&, std::function<void()>);
    mutable std::mutex mutex_;
    bool answered_ = false;
    std::optional<stream_parameters> stored_;
};

// Called when a stream starts: null when `custom` carries no parameters id (nothing to do);
// otherwise the look-up, already sent to `store`. `wake` runs (any thread) when the answer
// comes after this returned.
std::shared_ptr<parameters_lookup> start_parameters_lookup(call_parameter_store& store,
                                                           const stream_parameters& custom,
                                                           std::function<void()> wake);

} // namespace callstream::server
