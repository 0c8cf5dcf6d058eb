#pragma once
// The cluster's status_sequencer (server/calls/status_sequencer.hpp): the newest status of
// each call, by SequenceNumber, in Redis, changed by one compare-and-set script per callback.
//
//   cs:status:{CallSid}  HASH seq, status, sip, duration      EX 86400, refreshed on each change
//
// Redis traffic: one EVAL per status callback that has a SequenceNumber; nothing per frame.
// Threading: order() from any thread, returns at once; `done` runs on the cluster's thread.
// Redis unreachable: the update passes unchanged (the instance orders it on its own).

#include <memory>
#include <string>
#include <string_view>

#include "server/calls/status_sequencer.hpp"

namespace callstream::server {

class redis_client;

// KEYS status; ARGV seq, status, sip, duration, ttl. {1} when this update is the newest (it is
// recorded), else {0, seq, status, sip, duration} of the newer one.
inline constexpr std::string_view status_order_script = R"lua(
local cur = redis.call('HGET', KEYS[1], 'seq')
if cur and tonumber(cur) >= tonumber(ARGV[1]) then
  local h = redis.call('HMGET', KEYS[1], 'status', 'sip', 'duration')
  return {0, cur, h[1] or '', h[2] or '', h[3] or ''}
end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'status', ARGV[2], 'sip', ARGV[3], 'duration', ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return {1}
)lua";

class redis_status_sequencer final : public status_sequencer {
  public:
    explicit redis_status_sequencer(std::shared_ptr<redis_client> redis);
    void order(status_update update, std::function<void(ordered_status)> done) override;

  private:
    std::shared_ptr<redis_client> redis_;
};

} // namespace callstream::server
