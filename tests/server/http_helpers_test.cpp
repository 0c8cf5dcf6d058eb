// Form encoding, TwiML building, JSON escaping and configuration parsing.
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "codec/json_string.hpp"
#include "server/app/config.hpp"
#include "server/http/form.hpp"
#include "server/twilio/twiml.hpp"

namespace callstream::server {
namespace {

TEST(form, decodes_plus_and_percent_escapes) {
    const auto f =
        parse_form("To=%2B15551234567&From=sip%3Aa%40b.com%3Bx%3D1&Body=a+b&Empty=&Flag");
    ASSERT_TRUE(f);
    EXPECT_EQ(form_value(*f, "To"), "+15551234567");
    EXPECT_EQ(form_value(*f, "From"), "sip:a@b.com;x=1");
    EXPECT_EQ(form_value(*f, "Body"), "a b");
    EXPECT_EQ(form_value(*f, "Empty"), "");
    EXPECT_EQ(form_value(*f, "Flag"), "");
    EXPECT_FALSE(form_value(*f, "Nope"));
}

TEST(form, refuses_broken_escapes) {
    EXPECT_FALSE(parse_form("a=%"));
    EXPECT_FALSE(parse_form("a=%4"));
    EXPECT_FALSE(parse_form("a=%GG"));
}

TEST(form, encoding_round_trips_sip_uris_and_plus) {
    const form_fields fields{{"To", "sip:alice@example.com?X-Foo=bar&X-Baz=1"},
                             {"From", "+15017122661"},
                             {"StatusCallbackEvent", "initiated"},
                             {"StatusCallbackEvent", "answered"},
                             {"Note", "a b"}};
    const std::string body = form_encode(fields);
    EXPECT_NE(body.find("To=sip%3Aalice%40example.com%3FX-Foo%3Dbar%26X-Baz%3D1"),
              std::string::npos);
    EXPECT_NE(body.find("From=%2B15017122661"), std::string::npos);
    EXPECT_NE(body.find("Note=a+b"), std::string::npos);
    EXPECT_EQ(parse_form(body), fields);
}

TEST(twiml, connect_stream_escapes_everything) {
    const std::string xml =
        connect_stream_twiml("wss://h/media-stream", {{"a\"<", "x&y'>"}, {"app", "echo"}});
    EXPECT_NE(xml.find(R"(<Stream url="wss://h/media-stream">)"), std::string::npos);
    EXPECT_NE(xml.find(R"(<Parameter name="a&quot;&lt;" value="x&amp;y&apos;&gt;"/>)"),
              std::string::npos);
    EXPECT_NE(xml.find("</Stream></Connect></Response>"), std::string::npos);
}

TEST(twiml, media_stream_url_is_always_wss) {
    EXPECT_EQ(media_stream_url("https://abc.ngrok-free.app"),
              "wss://abc.ngrok-free.app/media-stream");
    EXPECT_EQ(media_stream_url("http://host:8080/"), "wss://host:8080/media-stream");
    EXPECT_EQ(media_stream_url("bare.example.com"), "wss://bare.example.com/media-stream");
}

TEST(json_writer, escapes_quotes_backslashes_and_controls) {
    EXPECT_EQ(codec::json_string("a\"b\\c\n\x01"), R"("a\"b\\c\n\u0001")");
    EXPECT_EQ(codec::json_string("caf\xc3\xa9"), "\"caf\xc3\xa9\"");
}

config_result parse(std::vector<const char*> args, std::map<std::string, std::string> env,
                    config& cfg) {
    args.insert(args.begin(), "callstream");
    return parse_config(static_cast<int>(args.size()), args.data(), cfg,
                        [&env](const char* name) -> const char* {
                            const auto it = env.find(name);
                            return it == env.end() ? nullptr : it->second.c_str();
                        });
}

TEST(config, flags_override_environment) {
    config cfg;
    const auto r =
        parse({"--port", "6000", "--threads=3"},
              {{"CALLSTREAM_PORT", "7000"}, {"CALLSTREAM_PUBLIC_URL", "https://x"}}, cfg);
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(cfg.port, 6000);
    EXPECT_EQ(cfg.threads, 3U);
    EXPECT_EQ(cfg.public_url, "https://x");
}

TEST(config, defaults_are_sane) {
    config cfg;
    ASSERT_TRUE(parse({}, {}, cfg).ok);
    EXPECT_EQ(cfg.port, 5050);
    EXPECT_GE(cfg.threads, 1U);
    EXPECT_EQ(cfg.max_message_bytes, 64U * 1024U);
    EXPECT_TRUE(cfg.verify_signatures);
}

TEST(config, bad_values_are_named) {
    config cfg;
    auto r = parse({"--port", "70000"}, {}, cfg);
    EXPECT_FALSE(r.ok);
    EXPECT_NE(r.error.find("--port"), std::string::npos);
    r = parse({"--bogus"}, {}, cfg);
    EXPECT_NE(r.error.find("--bogus"), std::string::npos);
    r = parse({"--tls-cert", "a.pem"}, {}, cfg);
    EXPECT_FALSE(r.ok);
    r = parse({}, {{"CALLSTREAM_THREADS", "many"}}, cfg);
    EXPECT_NE(r.error.find("CALLSTREAM_THREADS"), std::string::npos);
    r = parse({"--log-level", "loud"}, {}, cfg);
    EXPECT_FALSE(r.ok);
}

// The options as a user sees them, written out by hand (not taken from config_options(), which
// --help is generated from): a flag added, renamed or dropped without updating this list, the
// help text or the README's configuration table fails here.
TEST(config, help_lists_every_option) {
    const std::map<std::string, std::string> expected{
        {"--host", "CALLSTREAM_HOST"},
        {"--port", "CALLSTREAM_PORT"},
        {"--threads", "CALLSTREAM_THREADS"},
        {"--public-url", "CALLSTREAM_PUBLIC_URL"},
        {"--tls-cert", "CALLSTREAM_TLS_CERT"},
        {"--tls-key", "CALLSTREAM_TLS_KEY"},
        {"--dsp-threads", "CALLSTREAM_DSP_THREADS"},
        {"--resampler", "CALLSTREAM_RESAMPLER"},
        {"--default-app", "CALLSTREAM_DEFAULT_APP"},
        {"--recordings-dir", "CALLSTREAM_RECORDINGS_DIR"},
        {"--prompts-dir", "CALLSTREAM_PROMPTS_DIR"},
        {"--max-message-bytes", "CALLSTREAM_MAX_MESSAGE_BYTES"},
        {"--outbox-bytes", "CALLSTREAM_OUTBOX_BYTES"},
        {"--max-streams", "CALLSTREAM_MAX_STREAMS"},
        {"--max-connections", "CALLSTREAM_MAX_CONNECTIONS"},
        {"--http-header-bytes", "CALLSTREAM_HTTP_HEADER_BYTES"},
        {"--http-body-bytes", "CALLSTREAM_HTTP_BODY_BYTES"},
        {"--handshake-timeout", "CALLSTREAM_HANDSHAKE_TIMEOUT"},
        {"--idle-timeout", "CALLSTREAM_IDLE_TIMEOUT"},
        {"--shutdown-timeout", "CALLSTREAM_SHUTDOWN_TIMEOUT"},
        {"--twilio-api-base", "TWILIO_API_BASE"},
        {"--twilio-ca-file", "TWILIO_CA_FILE"},
        {"--twilio-timeout-ms", "TWILIO_TIMEOUT_MS"},
        {"--twilio-from", "TWILIO_FROM"},
        {"--twilio-account-sid", "TWILIO_ACCOUNT_SID"},
        {"--twilio-auth-token", "TWILIO_AUTH_TOKEN"},
        {"--twilio-api-key", "TWILIO_API_KEY"},
        {"--twilio-api-secret", "TWILIO_API_SECRET"},
        {"--api-token", "CALLSTREAM_API_TOKEN"},
        {"--no-verify-signatures", ""},
        {"--log-level", "CALLSTREAM_LOG_LEVEL"},
        {"--log-format", "CALLSTREAM_LOG_FORMAT"},
        {"--bridge", "CALLSTREAM_BRIDGES"},
        {"--bridge-protocol", ""},
        {"--bridge-header", ""},
        {"--bridge-on-failure", ""},
        {"--bridge-option", ""},
        {"--default-bridge", "CALLSTREAM_DEFAULT_BRIDGE"},
        {"--bridge-lead-ms", "CALLSTREAM_BRIDGE_LEAD_MS"},
        {"--bridge-connect-timeout-ms", "CALLSTREAM_BRIDGE_CONNECT_TIMEOUT_MS"},
        {"--bridge-prewarm-timeout", "CALLSTREAM_BRIDGE_PREWARM_TIMEOUT"},
        {"--bridge-max-buffered-ms", "CALLSTREAM_BRIDGE_MAX_BUFFERED_MS"},
        {"--bridge-max-message-bytes", "CALLSTREAM_BRIDGE_MAX_MESSAGE_BYTES"},
        {"--bridge-ca-file", "CALLSTREAM_BRIDGE_CA_FILE"},
        {"--redis-url", "CALLSTREAM_REDIS_URL"},
        {"--redis-password", "CALLSTREAM_REDIS_PASSWORD"},
        {"--instance-id", "CALLSTREAM_INSTANCE_ID"},
        {"--advertise-url", "CALLSTREAM_ADVERTISE_URL"},
        {"--agent-port", "CALLSTREAM_AGENT_PORT"},
        {"--drain-timeout", "CALLSTREAM_DRAIN_TIMEOUT"},
        {"--cluster-ttl", "CALLSTREAM_CLUSTER_TTL"},
        {"--monitor", "CALLSTREAM_MONITOR"},
        {"--monitor-assets", "CALLSTREAM_MONITOR_ASSETS"},
        {"--monitor-token-ttl", "CALLSTREAM_MONITOR_TOKEN_TTL"},
        {"--help", ""},
    };
    const std::string help = config_help();
    // Each expected flag has a help line naming its environment variable.
    std::map<std::string, std::string> listed; // flag -> its help text (continuation lines too)
    std::istringstream lines(help);
    std::string current;
    for (std::string line; std::getline(lines, line);) {
        const auto start = line.find_first_not_of(' ');
        if (start == std::string::npos) {
            current.clear();
            continue;
        }
        if (line.compare(start, 2, "--") != 0) {
            if (!current.empty()) {
                listed[current] += " " + line.substr(start); // a long entry wraps
            }
            continue;
        }
        const auto end = line.find(' ', start);
        current = line.substr(start, end - start);
        listed[current] = line;
    }
    for (const auto& [flag, env] : expected) {
        const auto it = listed.find(flag);
        ASSERT_NE(it, listed.end()) << flag << " missing from --help:\n" << help;
        if (!env.empty()) {
            EXPECT_NE(it->second.find("[" + env + "]"), std::string::npos) << it->second;
        }
    }
    for (const auto& [flag, line] : listed) {
        EXPECT_TRUE(expected.count(flag)) << "--help lists " << flag << ", not in this test's list";
    }
    // The README's configuration table names only real flags.
    std::ifstream readme(std::string(CALLSTREAM_SOURCE_DIR) + "/README.md");
    ASSERT_TRUE(readme) << "README.md not found";
    int table_flags = 0;
    for (std::string line; std::getline(readme, line);) {
        if (line.rfind("| `--", 0) != 0) {
            continue;
        }
        for (auto pos = line.find("`--"); pos != std::string::npos;
             pos = line.find("`--", pos + 1)) {
            const auto end = line.find('`', pos + 1);
            const std::string flag = line.substr(pos + 1, end - pos - 1);
            if (flag.back() == '*') {
                continue; // "--twilio-*": the family, detailed in docs/calls.md
            }
            ++table_flags;
            EXPECT_TRUE(expected.count(flag)) << "README lists " << flag;
        }
    }
    EXPECT_GE(table_flags, 20) << "README's configuration table not found";
}

} // namespace
} // namespace callstream::server
