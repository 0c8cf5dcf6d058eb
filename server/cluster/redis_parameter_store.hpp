#pragma once
// The call parameter store of a cluster (server/calls/call_parameter_store.hpp) in Redis: the
// webhook instance (/twiml, /make-call) writes a call's stream parameters once, and whichever
// instance gets the call's socket takes them back once (Vocode's pattern, CLUSTER.md §2.4).
//
//   cs:params:{id}   STRING the parameters, encoded by encode_stream_parameters   EX ttl
//
// Redis traffic: one SET per stored call, one GETDEL when its stream starts (one DEL instead
// when Twilio refused the call); nothing per media frame.
//
// Threading: put/take/discard may be called from any thread and return at once; their
// handlers run on the cluster's thread. While Redis is unreachable put answers "" and take
// nullopt at once (the webhook answers 503, the stream closes 1008 naming the store).

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "server/calls/call_parameter_store.hpp"

namespace callstream::server {

class redis_client;

// "cs:params:" + id.
std::string parameters_key(std::string_view id);

// Length-prefixed pairs, "<n>:<name><n>:<value>…", so any byte may appear in a name or value.
// Pure; decode answers nullopt for anything encode could not have written.
std::string encode_stream_parameters(const stream_parameters& params);
std::optional<stream_parameters> decode_stream_parameters(std::string_view encoded);

class redis_parameter_store final : public call_parameter_store {
  public:
    explicit redis_parameter_store(std::shared_ptr<redis_client> redis);

    void put(stream_parameters params, std::chrono::seconds ttl, put_handler done) override;
    void take(std::string id, take_handler done) override;
    void discard(std::string_view id) override;

  private:
    std::shared_ptr<redis_client> redis_;
};

} // namespace callstream::server
