// The monitor's cluster parts: reading other instances' calls from the registry's JSON (as the
// call registry writes it), and monitor tokens crossing instances that share the API token.
#include <chrono>

#include <gtest/gtest.h>

#include "server/calls/call_registry.hpp"
#include "server/cluster/cluster_node.hpp"
#include "server/monitor/cluster_view.hpp"
#include "server/monitor/monitor_token.hpp"

namespace {

using namespace callstream::server;
using namespace std::chrono_literals;

// What cs:calls:{inst} holds for a call: the registry's JSON, tagged with its instance.
std::string registry_entry(std::string_view inst, std::string_view call_sid,
                           std::string_view stream_sid, stream_parameters params) {
    call_registry calls;
    calls.on_stream_started(call_sid, stream_sid, "echo,record", params);
    return with_instance(call_record_json(*calls.find(call_sid)), inst);
}

TEST(MonitorClusterView, ReadsOtherInstancesCallsFromRegistryJson) {
    const auto before = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    const std::vector<std::string> entries{
        registry_entry("cs2", "CA01", "MZ01", {{"From", "+1555"}, {"To", "+1666"}}),
        registry_entry("cs1", "CA02", "MZ02", {}), // ours: the hub lists it from its taps
        "not json",
        R"({"instance":"cs3"})", // no sid
        registry_entry("cs3", "CA03", "MZ03", {}),
    };
    const auto calls = monitor::parse_remote_calls(entries, "cs1");
    ASSERT_EQ(calls.size(), 2u);
    EXPECT_EQ(calls[0].instance, "cs2");
    EXPECT_EQ(calls[0].call_sid, "CA01");
    EXPECT_EQ(calls[0].stream_sid, "MZ01");
    EXPECT_EQ(calls[0].from, "+1555");
    EXPECT_EQ(calls[0].to, "+1666");
    EXPECT_EQ(calls[0].app, "echo,record");
    // The registry keeps seconds.
    EXPECT_GE(calls[0].started_ms, before - 1000);
    EXPECT_LE(calls[0].started_ms, before + 2000);
    EXPECT_EQ(calls[1].instance, "cs3");
    EXPECT_EQ(calls[1].stream_sid, "MZ03");
    EXPECT_EQ(calls[1].from, "");
}

TEST(MonitorToken, IsValidOnEveryInstanceSharingTheApiToken) {
    const monitor::token_signer cs1("shared-api-token", 60s);
    const monitor::token_signer cs2("shared-api-token", 60s);
    const monitor::token_signer other("another-api-token", 60s);
    const auto now = std::chrono::system_clock::now();
    const auto token = cs1.issue(now);
    EXPECT_EQ(cs2.check(token, now), monitor::token_verdict::ok);
    EXPECT_EQ(other.check(token, now), monitor::token_verdict::bad_signature);
    EXPECT_EQ(cs2.check(token, now + 61s), monitor::token_verdict::expired);
}

} // namespace
