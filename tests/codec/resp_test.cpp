#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "codec/resp.hpp"

namespace {

using namespace callstream::codec;

TEST(Resp, ParsesEachReplyType) {
    auto r = parse_resp("+OK\r\n");
    ASSERT_EQ(r.status, resp_status::complete);
    EXPECT_EQ(r.value.type, resp_type::simple_string);
    EXPECT_EQ(r.value.text, "OK");
    EXPECT_EQ(r.consumed, 5u);

    r = parse_resp("-ERR wrong number of arguments\r\n");
    ASSERT_EQ(r.status, resp_status::complete);
    EXPECT_TRUE(r.value.is_error());
    EXPECT_EQ(r.value.text, "ERR wrong number of arguments");

    r = parse_resp(":-17\r\n");
    ASSERT_EQ(r.status, resp_status::complete);
    EXPECT_EQ(r.value.integer, -17);

    r = parse_resp("$-1\r\n");
    ASSERT_EQ(r.status, resp_status::complete);
    EXPECT_TRUE(r.value.is_null());

    r = parse_resp("$6\r\nab\r\ncd\r\n"); // a bulk string may hold CRLF
    ASSERT_EQ(r.status, resp_status::complete);
    EXPECT_EQ(r.value.text, "ab\r\ncd");
}

TEST(Resp, ParsesAPubSubMessageAndLeavesTheNextReply) {
    const std::string bytes = "*3\r\n$7\r\nmessage\r\n$4\r\ncs:a\r\n$5\r\nhello\r\n:1\r\n";
    const auto r = parse_resp(bytes);
    ASSERT_EQ(r.status, resp_status::complete);
    ASSERT_EQ(r.value.elements.size(), 3u);
    EXPECT_EQ(r.value.elements[0].text, "message");
    EXPECT_EQ(r.value.elements[2].text, "hello");
    const auto next = parse_resp(std::string_view(bytes).substr(r.consumed));
    ASSERT_EQ(next.status, resp_status::complete);
    EXPECT_EQ(next.value.integer, 1);
}

TEST(Resp, EveryPrefixIsIncomplete) {
    const std::string bytes = "*2\r\n$3\r\nfoo\r\n*1\r\n:5\r\n";
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        EXPECT_EQ(parse_resp(bytes.substr(0, n)).status, resp_status::incomplete) << n;
    }
    EXPECT_EQ(parse_resp(bytes).status, resp_status::complete);
}

TEST(Resp, RefusesWhatIsNotResp) {
    for (const std::string bad : {"HTTP/1.1 400 Bad Request\r\n", ":12x\r\n", "$-2\r\n",
                                  "$3\r\nabcd\r\n", "*x\r\n", "%1\r\n"}) {
        const auto r = parse_resp(bad);
        EXPECT_EQ(r.status, resp_status::error) << bad;
        EXPECT_FALSE(r.error.empty());
    }
}

TEST(Resp, EnforcesLimits) {
    resp_limits limits;
    limits.max_bulk_bytes = 10;
    limits.max_array_elements = 2;
    limits.max_depth = 2;
    limits.max_line_bytes = 16;
    EXPECT_EQ(parse_resp("$11\r\n", limits).status, resp_status::error);
    EXPECT_EQ(parse_resp("*3\r\n", limits).status, resp_status::error);
    EXPECT_EQ(parse_resp("*1\r\n*1\r\n*1\r\n:1\r\n", limits).status, resp_status::error);
    EXPECT_EQ(parse_resp("+" + std::string(40, 'a'), limits).status, resp_status::error);
    EXPECT_EQ(parse_resp("+" + std::string(40, 'a') + "\r\n", limits).status, resp_status::error);
    // A huge announced array allocates nothing up front and waits for its elements.
    EXPECT_EQ(parse_resp("*1000000\r\n").status, resp_status::incomplete);
}

TEST(Resp, EncodesCommandsAsBulkArrays) {
    std::string out;
    const std::vector<std::string> args{"SET", "k", "a b\r\n"};
    append_resp_command(out, args);
    EXPECT_EQ(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\na b\r\n\r\n");
    const auto back = parse_resp(out);
    ASSERT_EQ(back.status, resp_status::complete);
    EXPECT_EQ(resp_to_string(back.value), "[SET, k, a b\r\n]");
}

} // namespace
