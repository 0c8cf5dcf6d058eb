// The cluster's pure parts: the --redis-url form, the bus message framing, the agent's line,
// instance ids, the parameter store's encoding.
#include <gtest/gtest.h>

#include "server/cluster/agent_check.hpp"
#include "server/cluster/bus_message.hpp"
#include "server/cluster/cluster_node.hpp"
#include "server/cluster/redis_parameter_store.hpp"
#include "server/cluster/redis_url.hpp"
#include "server/twilio/twiml.hpp"

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

TEST(RedisParameterStore, EncodingRoundTripsAnyBytesInOrder) {
    const stream_parameters params{{"app", "bridge"},
                                   {"note", std::string("a:b\0c\n9:é\"<&", 14)},
                                   {"", ""},
                                   {"10:x", std::string(600, ':')},
                                   {"app", "second"}};
    const auto encoded = encode_stream_parameters(params);
    const auto decoded = decode_stream_parameters(encoded);
    ASSERT_TRUE(decoded);
    EXPECT_EQ(*decoded, params);
    EXPECT_EQ(decode_stream_parameters(""), stream_parameters{});
    EXPECT_EQ(parameters_key("0123456789abcdef0123456789abcdef"),
              "cs:params:0123456789abcdef0123456789abcdef");
}

TEST(RedisParameterStore, DecodingRefusesWhatEncodingCannotWrite) {
    for (const char* bad : {"3:app", "3:app7:bridge", "x:ab0:", ":0:", "3:app-1:x", "4:app",
                            "99999999999:a0:", "3:app6:bridg", "03a:app0:"}) {
        EXPECT_FALSE(decode_stream_parameters(bad)) << bad;
    }
    // Every proper prefix of a valid encoding is refused (a truncated value is never half read).
    const auto encoded = encode_stream_parameters({{"app", "echo"}, {"k", "v"}});
    for (std::size_t n = 1; n < encoded.size(); ++n) {
        const auto d = decode_stream_parameters(encoded.substr(0, n));
        EXPECT_TRUE(!d || d->size() < 2 || n == encoded.size()) << n;
        if (d) {
            EXPECT_EQ(decode_stream_parameters(encode_stream_parameters(*d)), d);
        }
    }
}

TEST(ParametersLookup, MemoryStoreAnswersInlineAndReplacesTheIdInPlace) {
    memory_call_parameter_store store;
    const std::string id = store.put({{"a", "1"}, {"b", "2"}}, std::chrono::seconds(60));
    stream_parameters custom{
        {"before", "x"}, {std::string(parameters_id_name), id}, {"after", "y"}};
    int woken = 0;
    auto lookup = start_parameters_lookup(store, custom, [&] { ++woken; });
    ASSERT_TRUE(lookup);
    EXPECT_TRUE(lookup->ready());
    EXPECT_EQ(lookup->apply(custom), parameters_resolution::resolved);
    EXPECT_EQ(custom, (stream_parameters{{"before", "x"}, {"a", "1"}, {"b", "2"}, {"after", "y"}}));
    EXPECT_EQ(woken, 0); // answered inline: the stream carries on without a wakeup
    EXPECT_FALSE(start_parameters_lookup(store, custom, [] {}));

    stream_parameters again{{std::string(parameters_id_name), id}}; // taken already
    lookup = start_parameters_lookup(store, again, [] {});
    ASSERT_TRUE(lookup);
    EXPECT_EQ(lookup->apply(again), parameters_resolution::unknown_id);
}

TEST(ParametersLookup, TooLongForTwimlAtFiveHundredCharacters) {
    EXPECT_FALSE(parameters_too_long_for_twiml({{"name", std::string(495, 'v')}}));
    EXPECT_TRUE(parameters_too_long_for_twiml({{"a", "b"}, {"name", std::string(496, 'v')}}));
}

} // namespace
