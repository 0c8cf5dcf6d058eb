#pragma once
// Per-call stream parameters kept on our side, for calls whose parameters would not fit in the
// TwiML Twilio accepts (4,000 characters inline). /make-call puts them here under a short
// random id and writes only that id into the TwiML (<Parameter name="callstream_parameters_id">);
// when the stream starts, the media session takes them back and the stream sees them as if they
// had arrived in start.customParameters.
//
// An interface because the data must be reachable from whichever instance Twilio connects the
// stream to: memory_call_parameter_store serves one instance; a shared store (Redis) serves a
// cluster. Implementations are thread-safe: put runs on the /make-call handler's network thread,
// take on the stream's network thread (control plane only, once per call).

#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace callstream::server {

using stream_parameters = std::vector<std::pair<std::string, std::string>>;

class call_parameter_store {
  public:
    virtual ~call_parameter_store() = default;
    // Keeps `params` (in order) for at most `ttl`; returns the id they are kept under: 32
    // lowercase hex characters from a CSPRNG, so a stream cannot guess another call's id.
    // Returns an empty string when the store cannot keep them (a shared store unreachable).
    virtual std::string put(stream_parameters params, std::chrono::seconds ttl) = 0;
    // Returns and forgets the parameters kept under `id`; nullopt when unknown or expired.
    virtual std::optional<stream_parameters> take(std::string_view id) = 0;
    // Forgets `id` without reading it (Twilio refused the call).
    virtual void discard(std::string_view id) = 0;
};

// One instance's store: a map bounded by `capacity` (the oldest entry is evicted first) whose
// entries expire after their ttl (checked on every put and take).
class memory_call_parameter_store final : public call_parameter_store {
  public:
    static constexpr std::size_t default_capacity = 10000;
    explicit memory_call_parameter_store(std::size_t capacity = default_capacity);

    std::string put(stream_parameters params, std::chrono::seconds ttl) override;
    std::optional<stream_parameters> take(std::string_view id) override;
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

// Called when a stream starts: when `custom` carries the parameters id, replaces it with the
// stored parameters (taken from `store`, in their original order).
parameters_resolution resolve_stream_parameters(call_parameter_store& store,
                                                stream_parameters& custom);

} // namespace callstream::server
