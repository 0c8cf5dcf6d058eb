#include "server/cluster/redis_status_sequencer.hpp"

#include <algorithm>

#include "server/app/log.hpp"
#include "server/cluster/redis_client.hpp"

namespace callstream::server {
namespace {

constexpr int status_ttl_s = 86400; // a day: longer than any call, short enough to clean up

bool is_sequence(std::string_view s) {
    return !s.empty() && s.size() <= 15 &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

} // namespace

redis_status_sequencer::redis_status_sequencer(std::shared_ptr<redis_client> redis)
    : redis_(std::move(redis)) {}

void redis_status_sequencer::order(status_update update, std::function<void(ordered_status)> done) {
    if (!is_sequence(update.sequence_number) || update.call_status.empty()) {
        done({std::move(update), true}); // an AMD result: nothing to order
        return;
    }
    std::vector<std::string> cmd{"EVAL",
                                 std::string(status_order_script),
                                 "1",
                                 "cs:status:" + update.call_sid,
                                 update.sequence_number,
                                 update.call_status,
                                 update.sip_response_code,
                                 update.call_duration,
                                 std::to_string(status_ttl_s)};
    redis_->command(
        std::move(cmd), [u = std::move(update), done = std::move(done)](redis_reply r) mutable {
            if (!r.ok || r.value.type != codec::resp_type::array || r.value.elements.empty()) {
                log(log_level::warn, "call_status_unordered",
                    {{"call_sid", u.call_sid}, {"error", r.ok ? "unexpected reply" : r.error}});
                done({std::move(u), true});
                return;
            }
            const auto& e = r.value.elements;
            if (e[0].integer == 1 || e.size() < 5) {
                done({std::move(u), true});
                return;
            }
            // A newer callback reached another instance first: carry its status instead.
            u.sequence_number = e[1].text;
            u.call_status = e[2].text;
            u.sip_response_code = e[3].text;
            u.call_duration = e[4].text;
            done({std::move(u), false});
        });
}

} // namespace callstream::server
