// /metrics as Prometheus text (every line well-formed, HELP/TYPE before samples, counters never
// go down, values match a known workload), logs that never contain secrets, and JSON logs that
// are JSON, line by line.
#include <csignal>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

namespace callstream::testing {
namespace {

struct scrape {
    std::map<std::string, double> samples;    // "name{labels}" -> value
    std::map<std::string, std::string> types; // family -> counter|gauge|histogram|...
    std::vector<std::string> errors;
};

// The family a sample belongs to: histogram samples carry _bucket/_sum/_count suffixes.
std::string family_of(const std::string& name, const std::map<std::string, std::string>& types) {
    for (const char* suffix : {"_bucket", "_sum", "_count"}) {
        const std::string s(suffix);
        if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) {
            const auto base = name.substr(0, name.size() - s.size());
            const auto it = types.find(base);
            if (it != types.end() && (it->second == "histogram" || it->second == "summary")) {
                return base;
            }
        }
    }
    return name;
}

// A strict reader of the Prometheus text exposition format 0.0.4.
scrape parse_prometheus(const std::string& text) {
    static const std::regex help_re(R"(^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) .+$)");
    static const std::regex type_re(
        R"(^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$)");
    static const std::regex sample_re(
        R"re(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? ([-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|Inf|NaN))$)re");
    scrape out;
    std::set<std::string> helped;
    std::set<std::string> finished; // families whose samples are over (must not reappear)
    std::string current;
    if (text.empty() || text.back() != '\n') {
        out.errors.push_back("output does not end with a newline");
    }
    std::istringstream in(text);
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
        ++n;
        std::smatch m;
        const auto where = "line " + std::to_string(n) + ": '" + line + "'";
        if (std::regex_match(line, m, help_re)) {
            if (!helped.insert(m[1]).second) {
                out.errors.push_back("second HELP for a family, " + where);
            }
        } else if (std::regex_match(line, m, type_re)) {
            if (out.types.count(m[1]) != 0) {
                out.errors.push_back("second TYPE for a family, " + where);
            }
            if (!current.empty()) {
                finished.insert(current);
            }
            current = m[1];
            out.types[m[1]] = m[2];
        } else if (std::regex_match(line, m, sample_re)) {
            const std::string family = family_of(m[1], out.types);
            if (out.types.count(family) == 0) {
                out.errors.push_back("sample before its TYPE, " + where);
            }
            if (helped.count(family) == 0) {
                out.errors.push_back("sample before its HELP, " + where);
            }
            if (family != current || finished.count(family) != 0) {
                out.errors.push_back("sample outside its family's block, " + where);
            }
            const std::string key = std::string(m[1]) + std::string(m[2]);
            if (!out.samples.emplace(key, std::stod(m[3])).second) {
                out.errors.push_back("duplicate series, " + where);
            }
        } else {
            out.errors.push_back("not Prometheus text, " + where);
        }
    }
    return out;
}

bool is_monotonic_type(const std::string& series, const scrape& s) {
    const auto name = series.substr(0, series.find('{'));
    const auto it = s.types.find(family_of(name, s.types));
    return it != s.types.end() && (it->second == "counter" || it->second == "histogram");
}

TEST(observability, metrics_are_valid_prometheus_and_match_a_known_workload) {
    server_process server;
    const auto first = parse_prometheus(metrics_text(server.port()));
    ASSERT_TRUE(first.errors.empty()) << first.errors.front();
    EXPECT_EQ(first.types.at("callstream_streams_active"), "gauge");
    EXPECT_EQ(first.types.at("callstream_frames_in_total"), "counter");

    // The workload: 3 health checks, one stream with 10 frames, a DTMF, a mark and a stop.
    for (int i = 0; i < 3; ++i) {
        ASSERT_EQ(http_request(server.port(), "GET", "/healthz").status, 200);
    }
    {
        good_stream s(server.port(), 1);
        for (int i = 0; i < 10; ++i) {
            ASSERT_TRUE(s.echoes());
        }
        s.client.send_text(twilio::dtmf(s.sid, s.sequence++, '5'));
        s.client.send_text(twilio::mark(s.sid, s.sequence++, "m1"));
        s.client.send_text(twilio::stop(s.sid, s.sequence++));
        EXPECT_EQ(s.client.wait_close(std::chrono::seconds(10)).code, 1000);
    }
    ASSERT_TRUE(wait_for_metric_value(server.port(),
                                      "callstream_streams_closed_total{reason=\"stop\"}", 1));
    const auto second = parse_prometheus(metrics_text(server.port()));
    ASSERT_TRUE(second.errors.empty()) << second.errors.front();

    const auto& v = second.samples;
    EXPECT_EQ(v.at("callstream_frames_in_total"), 10);
    EXPECT_EQ(v.at("callstream_frames_out_total"), 10);
    EXPECT_EQ(v.at("callstream_messages_in_total"), 15); // connected, start, 10 media, 3 more
    EXPECT_EQ(v.at("callstream_dtmf_in_total"), 1);
    EXPECT_EQ(v.at("callstream_streams_active"), 0);
    EXPECT_EQ(v.at("callstream_frame_processing_seconds_count"), 10);
    EXPECT_EQ(v.at("callstream_frame_processing_seconds_bucket{le=\"+Inf\"}"), 10);
    EXPECT_EQ(v.at("callstream_http_requests_total{route=\"/healthz\",status=\"200\"}"), 3);
    EXPECT_EQ(v.at("callstream_http_requests_total{route=\"/media-stream\",status=\"101\"}"), 1);
    EXPECT_GT(v.at("callstream_bytes_in_total"), 10 * 216);
    EXPECT_GT(v.at("callstream_bytes_out_total"), 10 * 216);
    for (const char* cause : {"pipeline_full", "cleared", "closing"}) {
        EXPECT_EQ(v.at("callstream_frames_dropped_total{cause=\"" + std::string(cause) + "\"}"), 0)
            << cause;
    }
    for (const char* name :
         {"callstream_recording_bytes_total", "callstream_recordings_started_total",
          "callstream_connections_active"}) {
        EXPECT_EQ(v.count(name), 1U) << name;
    }

    // Counters never go down between scrapes, and no series disappears.
    for (const auto& [series, value] : first.samples) {
        ASSERT_EQ(second.samples.count(series), 1U) << series << " disappeared";
        if (is_monotonic_type(series, first)) {
            EXPECT_GE(second.samples.at(series), value) << series;
        }
    }
}

// The parser above must reject what Prometheus would; otherwise the test above proves nothing.
TEST(observability, prometheus_reader_rejects_malformed_text) {
    EXPECT_FALSE(parse_prometheus("x 1\n").errors.empty()); // no TYPE/HELP
    EXPECT_FALSE(parse_prometheus("# HELP x h\n# TYPE x counter\nx{a=b} 1\n").errors.empty());
    EXPECT_FALSE(parse_prometheus("# HELP x h\n# TYPE x counter\nx 1 2 3\n").errors.empty());
    EXPECT_FALSE(parse_prometheus("# HELP x h\n# TYPE x counter\nx 1").errors.empty());
    EXPECT_FALSE(parse_prometheus("# HELP x h\n# TYPE x counter\nx 1\nx 2\n").errors.empty());
    EXPECT_TRUE(parse_prometheus("# HELP x h\n# TYPE x counter\nx{a=\"b\"} 1\n").errors.empty());
}

// An upgrade with extra header lines, expected to be refused (403: bad signature).
void raw_upgrade_with(std::uint16_t port, const std::string& headers) {
    raw_socket raw(port);
    raw.send("GET /media-stream HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n" +
             headers + "\r\n\r\n");
    EXPECT_EQ(raw.read_response_status(), 403);
}

const std::vector<std::string> secrets = {"tw-auth-token-5ecret-0001",  "api-bearer-5ecret-0002",
                                          "sip-pa55word-5ecret-0003",   "signature-5ecret-0004",
                                          "upgrade-bearer-5ecret-0005", "api-secret-5ecret-0006"};

// Drives every path that sees a secret: config, Authorization on HTTP and on the upgrade, a SIP
// password and signature in a /twiml form post, a malformed body with the password in it. With
// an auth token set the server checks X-Twilio-Signature, so the signed paths are refused with
// 403 (and that refusal is logged); without one they are served. Both must keep secrets out.
void exercise_with_secrets(std::uint16_t port, bool signatures_checked) {
    const int served = signatures_checked ? 403 : 200;
    const std::map<std::string, std::string> auth = {{"Authorization", "Bearer " + secrets[1]}};
    EXPECT_EQ(http_request(port, "GET", "/healthz", {}, auth).status, 200);
    EXPECT_EQ(http_request(port, "GET", "/nope", {}, auth).status, 404);
    const std::string form =
        "CallSid=CA1&From=sip%3Aalice%40example.com&SipPassword=" + secrets[2] +
        "&To=%2B15550002222";
    EXPECT_EQ(http_request(port, "POST", "/twiml", form,
                           {{"Content-Type", "application/x-www-form-urlencoded"},
                            {"X-Twilio-Signature", secrets[3]},
                            {"Authorization", "Basic " + secrets[1]}})
                  .status,
              served);
    EXPECT_EQ(http_request(port, "POST", "/twiml", "SipPassword=" + secrets[2] + "%zz",
                           {{"Content-Type", "application/x-www-form-urlencoded"}})
                  .status,
              signatures_checked ? 403 : 400);
    if (signatures_checked) {
        raw_upgrade_with(port, "Authorization: Bearer " + secrets[4] +
                                   "\r\nX-Twilio-Signature: " + secrets[3]);
        return;
    }
    good_stream s(port, 1);
    EXPECT_TRUE(s.echoes());
    ws_client with_auth(port, false, "/media-stream", {{"Authorization", "Bearer " + secrets[4]}});
    with_auth.send_text("not json"); // refused with 1007: a logged refusal on this connection
    with_auth.wait_close();
    s.client.send_text(twilio::stop(s.sid, s.sequence++));
    s.client.wait_close();
}

class secret_logs : public ::testing::TestWithParam<std::string> {};

TEST_P(secret_logs, no_secret_reaches_the_log) {
    server_process server({"--log-level", "debug", "--log-format", GetParam(), "--api-token",
                           secrets[1], "--twilio-api-key", "SK0123456789abcdef0123456789abcdef",
                           "--twilio-api-secret", secrets[5]},
                          {"TWILIO_AUTH_TOKEN=" + secrets[0],
                           "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef"});
    exercise_with_secrets(server.port(), true);
    ASSERT_EQ(server.stop(SIGTERM), 0);
    const std::string log = server.log();
    ASSERT_NE(log.find("listening"), std::string::npos) << "the log was not written";
    for (const auto& secret : secrets) {
        EXPECT_EQ(log.find(secret), std::string::npos) << "secret '" << secret << "' in:\n" << log;
    }
}

INSTANTIATE_TEST_SUITE_P(formats, secret_logs, ::testing::Values("text", "json"));

TEST(observability, json_log_lines_each_parse_as_json) {
    server_process server({"--log-level", "debug", "--log-format", "json"});
    exercise_with_secrets(server.port(), false); // a busy log: requests, streams, refusals
    ASSERT_EQ(server.stop(SIGTERM), 0);
    std::istringstream in(server.log());
    std::string line;
    int lines = 0;
    simdjson::dom::parser parser;
    while (std::getline(in, line)) {
        ++lines;
        simdjson::dom::element doc;
        ASSERT_EQ(parser.parse(simdjson::padded_string(line)).get(doc), simdjson::SUCCESS)
            << "line " << lines << " is not JSON: " << line;
        ASSERT_TRUE(doc.is_object()) << line;
        std::string_view event;
        EXPECT_EQ(doc["event"].get_string().get(event), simdjson::SUCCESS) << line;
        EXPECT_FALSE(event.empty());
    }
    EXPECT_GT(lines, 5);
}

} // namespace
} // namespace callstream::testing
