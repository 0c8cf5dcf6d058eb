// The cluster's pure parts: the --redis-url form, the bus message framing, the agent's line,
// instance ids.
#include <gtest/gtest.h>

#include "server/cluster/agent_check.hpp"
#include "server/cluster/bus_message.hpp"
#include "server/cluster/cluster_node.hpp"
#include "server/cluster/redis_url.hpp"

namespace {

using namespace callstream::server;

TEST(RedisUrl, ReadsHostPortPasswordAndDatabase) {
    auto r = parse_redis_url("redis://:s3cret@10.0.0.5:6380/2");
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->host, "10.0.0.5");
    EXPECT_EQ(r.endpoint->port, 6380);
    EXPECT_EQ(r.endpoint->password, "s3cret");
    EXPECT_EQ(r.endpoint->user, "");
    EXPECT_EQ(r.endpoint->db, 2u);
    EXPECT_EQ(r.endpoint->describe(), "10.0.0.5:6380/2"); // never the password

    r = parse_redis_url("redis://redis.internal", "from-env");
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->port, 6379);
    EXPECT_EQ(r.endpoint->db, 0u);
    EXPECT_EQ(r.endpoint->password, "from-env");

    r = parse_redis_url("redis://app:pw@[::1]:7000");
    ASSERT_TRUE(r.endpoint) << r.error;
    EXPECT_EQ(r.endpoint->host, "::1");
    EXPECT_EQ(r.endpoint->user, "app");
}

TEST(RedisUrl, RefusesWhatIsNotARedisUrl) {
    for (const char* bad : {"rediss://h:1", "http://h:1", "redis://", "redis://h:0",
                            "redis://h:99999", "redis://h/x", "redis://h?db=1", "h:6379"}) {
        const auto r = parse_redis_url(bad);
        EXPECT_FALSE(r.endpoint) << bad;
        EXPECT_NE(r.error.find("--redis-url"), std::string::npos) << bad << ": " << r.error;
    }
}

TEST(BusMessage, RequestsAndResponsesRoundTripWithMultiLineBodies) {
    const bus_request req{42, "cs2", "POST", "/streams/MZ1/play", "Bearer t", "{\"a\":\n1}"};
    const auto back = decode_bus_request(encode_bus_request(req));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->id, 42u);
    EXPECT_EQ(back->from, "cs2");
    EXPECT_EQ(back->method, "POST");
    EXPECT_EQ(back->target, "/streams/MZ1/play");
    EXPECT_EQ(back->authorization, "Bearer t");
    EXPECT_EQ(back->body, "{\"a\":\n1}");

    const bus_response res{42, 409, "application/json", "{\"error\":\"no play\"}\n"};
    const auto res_back = decode_bus_response(encode_bus_response(res));
    ASSERT_TRUE(res_back);
    EXPECT_EQ(res_back->status, 409u);
    EXPECT_EQ(res_back->body, res.body);

    EXPECT_FALSE(decode_bus_request("res\n1\n200\n\n"));
    EXPECT_FALSE(decode_bus_request("req\nx\ncs1\nGET\n/calls\n\n"));
    EXPECT_FALSE(decode_bus_request("req\n1\ncs1\nGET\ncalls\n\n"));
    EXPECT_FALSE(decode_bus_response("res\n1\n99\n\n"));
    EXPECT_FALSE(decode_bus_response("res\n1\n200"));
}

TEST(AgentCheck, SaysDrainOrTheFreeShareAndCapacity) {
    EXPECT_EQ(agent_reply_line(true, 5, 100), "drain\n");
    EXPECT_EQ(agent_reply_line(false, 0, 100), "up ready 100% maxconn:100\n");
    EXPECT_EQ(agent_reply_line(false, 25, 100), "up ready 75% maxconn:100\n");
    EXPECT_EQ(agent_reply_line(false, 100, 100), "up ready 1% maxconn:100\n"); // full, still up
    EXPECT_EQ(agent_reply_line(false, 150, 100), "up ready 1% maxconn:100\n");
}

TEST(InstanceId, AllowsPathAndServerNameSafeCharactersOnly) {
    EXPECT_EQ(instance_id_problem("cs1"), "");
    EXPECT_EQ(instance_id_problem("web-1.eu_west"), "");
    EXPECT_NE(instance_id_problem(""), "");
    EXPECT_NE(instance_id_problem("a/b"), "");
    EXPECT_NE(instance_id_problem("a b"), "");
    EXPECT_NE(instance_id_problem(std::string(65, 'a')), "");
}

TEST(WithInstance, PutsTheInstanceFirst) {
    EXPECT_EQ(with_instance("{\"sid\":\"CA1\"}", "cs1"), "{\"instance\":\"cs1\",\"sid\":\"CA1\"}");
    EXPECT_EQ(with_instance("{}", "cs1"), "{\"instance\":\"cs1\"}");
}

} // namespace
