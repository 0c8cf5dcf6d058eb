#include "server/calls/call_parameter_store.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <stdexcept>

#include <openssl/rand.h>

#include "server/twilio/twiml.hpp"

namespace callstream::server {

memory_call_parameter_store::memory_call_parameter_store(std::size_t capacity)
    : capacity_(capacity == 0 ? 1 : capacity) {}

void memory_call_parameter_store::expire_locked(std::chrono::steady_clock::time_point now) {
    // Entries share one ttl per caller in practice, so the oldest expire first; an entry with a
    // longer ttl behind a shorter one waits for capacity eviction or its take.
    while (!entries_.empty() && entries_.front().expires <= now) {
        by_id_.erase(entries_.front().id);
        entries_.pop_front();
    }
}

std::string memory_call_parameter_store::put(stream_parameters params, std::chrono::seconds ttl) {
    std::string id = random_parameter_id();
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    expire_locked(now);
    if (entries_.size() >= capacity_) {
        by_id_.erase(entries_.front().id);
        entries_.pop_front();
    }
    entries_.push_back({id, std::move(params), now + ttl});
    by_id_.emplace(id, std::prev(entries_.end()));
    return id;
}

std::optional<stream_parameters> memory_call_parameter_store::take(std::string_view id) {
    const auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mutex_);
    expire_locked(now);
    const auto it = by_id_.find(std::string(id));
    if (it == by_id_.end()) {
        return std::nullopt;
    }
    const bool expired = it->second->expires <= now; // behind a longer-lived entry
    stream_parameters params = std::move(it->second->params);
    entries_.erase(it->second);
    by_id_.erase(it);
    if (expired) {
        return std::nullopt;
    }
    return params;
}

void memory_call_parameter_store::discard(std::string_view id) {
    std::lock_guard lock(mutex_);
    if (const auto it = by_id_.find(std::string(id)); it != by_id_.end()) {
        entries_.erase(it->second);
        by_id_.erase(it);
    }
}

void memory_call_parameter_store::put(stream_parameters params, std::chrono::seconds ttl,
                                      put_handler done) {
    done(put(std::move(params), ttl));
}

void memory_call_parameter_store::take(std::string id, take_handler done) {
    done(take(std::string_view(id)));
}

std::size_t memory_call_parameter_store::size() const {
    std::lock_guard lock(mutex_);
    return entries_.size();
}

std::string random_parameter_id() {
    std::array<unsigned char, 16> bytes{};
    if (RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) != 1) {
        throw std::runtime_error("RAND_bytes failed: no randomness for a parameter id");
    }
    static constexpr char digits[] = "0123456789abcdef";
    std::string id;
    id.reserve(bytes.size() * 2);
    for (const unsigned char b : bytes) {
        id.push_back(digits[b >> 4]);
        id.push_back(digits[b & 0xF]);
    }
    return id;
}

bool parameters_too_long_for_twiml(const stream_parameters& params) {
    return std::any_of(params.begin(), params.end(),
                       [](const auto& p) { return p.first.size() + p.second.size() >= 500; });
}

bool parameters_lookup::ready() const {
    std::lock_guard lock(mutex_);
    return answered_;
}

parameters_resolution parameters_lookup::apply(stream_parameters& custom) {
    std::optional<stream_parameters> stored;
    {
        std::lock_guard lock(mutex_);
        stored = std::move(stored_);
    }
    const auto it = std::find_if(custom.begin(), custom.end(),
                                 [](const auto& p) { return p.first == parameters_id_name; });
    if (!stored || it == custom.end()) {
        return parameters_resolution::unknown_id;
    }
    // The stored parameters take the id's place; anything else Twilio carried stays.
    const auto pos = custom.erase(it);
    custom.insert(pos, std::make_move_iterator(stored->begin()),
                  std::make_move_iterator(stored->end()));
    return parameters_resolution::resolved;
}

std::shared_ptr<parameters_lookup> start_parameters_lookup(call_parameter_store& store,
                                                           const stream_parameters& custom,
                                                           std::function<void()> wake) {
    const auto it = std::find_if(custom.begin(), custom.end(),
                                 [](const auto& p) { return p.first == parameters_id_name; });
    if (it == custom.end()) {
        return nullptr;
    }
    auto lookup = std::make_shared<parameters_lookup>();
    auto returned = std::make_shared<std::atomic<bool>>(false);
    store.take(it->second,
               [lookup, returned, wake = std::move(wake)](std::optional<stream_parameters> stored) {
                   {
                       std::lock_guard lock(lookup->mutex_);
                       lookup->stored_ = std::move(stored);
                       lookup->answered_ = true;
                   }
                   // An answer given inline is seen by the caller's ready(); only a later one wakes
                   // it.
                   if (returned->load(std::memory_order_acquire) && wake) {
                       wake();
                   }
               });
    returned->store(true, std::memory_order_release);
    return lookup;
}

} // namespace callstream::server
