// Our X-Twilio-Signature signer and validator against the official twilio npm package
// (getExpectedTwilioSignature, validateRequest, validateRequestWithBody), both directions.
#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "codec/json_string.hpp"
#include "server/twilio/signature.hpp"

using namespace callstream::server;
namespace codec = callstream::codec;

namespace {

const std::string token = "interop-token-42";

struct sig_case {
    std::string url;
    form_fields params;
    std::string body; // non-empty: the bodySHA256 form
};

// JSON object for twilio-node: a repeated name becomes an array of its values.
std::string params_json(const form_fields& params) {
    std::map<std::string, std::vector<std::string>> grouped;
    for (const auto& p : params) {
        grouped[p.first].push_back(p.second);
    }
    std::string out = "{";
    for (const auto& [name, values] : grouped) {
        out += out.size() > 1 ? "," : "";
        codec::append_json_string(out, name);
        out += ":";
        if (values.size() == 1) {
            codec::append_json_string(out, values[0]);
        } else {
            out += "[";
            for (std::size_t i = 0; i < values.size(); ++i) {
                out += i ? "," : "";
                codec::append_json_string(out, values[i]);
            }
            out += "]";
        }
    }
    return out + "}";
}

// Runs node over `cases`; for each case prints twilio's signature, then whether twilio
// validates `ours`, then whether it validates a tampered copy.
std::vector<std::string> run_node(const std::vector<sig_case>& cases,
                                  const std::vector<std::string>& ours) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("callstream-sig-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string json = "[";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        json += i ? "," : "";
        json += "{\"url\":" + codec::json_string(cases[i].url) +
                ",\"params\":" + params_json(cases[i].params) +
                ",\"body\":" + codec::json_string(cases[i].body) +
                ",\"ours\":" + codec::json_string(ours[i]) + "}";
    }
    json += "]";
    std::ofstream(dir / "cases.json") << json;
    std::ofstream(dir / "check.js") << R"(
const twilio = require('twilio');
const cases = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const token = process.argv[3];
for (const c of cases) {
  if (c.body) {
    console.log(twilio.getExpectedTwilioSignature(token, c.url, null));
    console.log(twilio.validateRequestWithBody(token, c.ours, c.url, c.body));
    console.log(twilio.validateRequestWithBody(token, c.ours, c.url, c.body + ' '));
  } else {
    console.log(twilio.getExpectedTwilioSignature(token, c.url, c.params));
    console.log(twilio.validateRequest(token, c.ours, c.url, c.params));
    console.log(twilio.validateRequest(token, c.ours, c.url, { ...c.params, Tampered: '1' }));
  }
}
)";
    const std::string node_path = CALLSTREAM_SOURCE_DIR "/build/npm/node_modules";
    const std::string cmd = "NODE_PATH='" + node_path + "' node '" + (dir / "check.js").string() +
                            "' '" + (dir / "cases.json").string() + "' '" + token + "'";
    std::vector<std::string> lines;
    if (FILE* p = ::popen(cmd.c_str(), "r"); p != nullptr) {
        std::array<char, 512> buf{};
        while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) {
            std::string line(buf.data());
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) {
                line.pop_back();
            }
            lines.push_back(line);
        }
        EXPECT_EQ(::pclose(p), 0) << cmd;
    }
    std::filesystem::remove_all(dir);
    return lines;
}

} // namespace

TEST(twilio_signature_interop, agrees_with_twilio_node_both_ways) {
    const std::string body = R"({"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"})";
    std::vector<sig_case> cases = {
        {"https://mycompany.com/myapp.php?foo=1&bar=2",
         {{"CallSid", "CA1234567890ABCDE"},
          {"Caller", "+12349013030"},
          {"Digits", "1234"},
          {"From", "+12349013030"},
          {"To", "+18005551212"}},
         ""},
        {"https://abc.ngrok-free.app/status",
         {{"CallStatus", "in-progress"},
          {"StatusCallbackEvent", "ringing"},
          {"StatusCallbackEvent", "answered"},
          {"StatusCallbackEvent", "ringing"},
          {"CallerName", "Zoë Ünal & co = 100% +1"},
          {"Empty", ""}},
         ""},
        {"https://abc.ngrok-free.app:8443/twiml?app=record%2Cplay&x=a+b", {}, ""},
        {"wss://abc.ngrok-free.app/media-stream", {}, ""},
        {"https://example.com/myapp?bodySHA256=" + sha256_hex(body), {}, body},
    };
    std::vector<std::string> ours;
    for (const auto& c : cases) {
        ours.push_back(twilio_signature(token, c.url, c.params));
    }
    const auto lines = run_node(cases, ours);
    ASSERT_EQ(lines.size(), cases.size() * 3) << "node output missing (is scripts/setup done?)";
    for (std::size_t i = 0; i < cases.size(); ++i) {
        const std::string& theirs = lines[i * 3];
        EXPECT_EQ(theirs, ours[i]) << cases[i].url;
        EXPECT_EQ(lines[i * 3 + 1], "true")
            << "twilio-node rejects our signature: " << cases[i].url;
        EXPECT_EQ(lines[i * 3 + 2], "false") << "twilio-node accepts a tampered request";
        if (cases[i].body.empty()) {
            EXPECT_TRUE(twilio_validate(token, theirs, cases[i].url, cases[i].params));
        } else {
            EXPECT_TRUE(twilio_validate_with_body(token, theirs, cases[i].url, cases[i].body));
            EXPECT_FALSE(
                twilio_validate_with_body(token, theirs, cases[i].url, cases[i].body + " "));
        }
    }
}
