#include <gtest/gtest.h>

#include "server/http/form.hpp"
#include "server/twilio/create_call.hpp"

using namespace callstream::server;

namespace {

struct bad_case {
    const char* body;
    const char* field;
};

std::string error_field(std::string_view body, std::string_view default_from = "+15005550006") {
    request_error error;
    auto req = parse_make_call_request(body, default_from, error);
    EXPECT_FALSE(req) << body;
    EXPECT_FALSE(error.message.empty()) << body;
    return error.field;
}

std::optional<std::string_view> value_of(const form_fields& form, std::string_view name) {
    return form_value(form, name);
}

} // namespace

TEST(make_call, accepts_sip_target_with_defaults) {
    request_error error;
    auto req =
        parse_make_call_request(R"({"to":"sip:jong-un@sip.linphone.org"})", "callstream", error);
    ASSERT_TRUE(req) << error.field << ": " << error.message;
    EXPECT_TRUE(req->to_is_sip);
    EXPECT_EQ(req->from, "callstream");
    EXPECT_EQ(req->status_callback_events,
              (std::vector<std::string>{"initiated", "ringing", "answered", "completed"}));
}

TEST(make_call, accepts_every_field) {
    request_error error;
    auto req = parse_make_call_request(
        R"({"to":"+14155551212","from":"+15017122661","byoc":"BY0123456789abcdef0123456789ABCDEF",
            "timeout":30,"record":true,"machine_detection":"DetectMessageEnd",
            "parameters":{"app":"echo","note":"a&b <c> \"d\""},
            "status_callback_events":["answered","completed"]})",
        "", error);
    ASSERT_TRUE(req) << error.field << ": " << error.message;
    EXPECT_FALSE(req->to_is_sip);
    EXPECT_EQ(req->timeout_s, 30);
    EXPECT_EQ(req->record, true);
    ASSERT_EQ(req->parameters.size(), 2u);
    EXPECT_EQ(req->parameters[1].second, "a&b <c> \"d\"");

    const auto form = make_call_form(*req, "https://pub.example", "wss://pub.example/media-stream");
    EXPECT_EQ(*value_of(form, "To"), "+14155551212");
    EXPECT_EQ(*value_of(form, "From"), "+15017122661");
    EXPECT_EQ(*value_of(form, "Twiml"),
              "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Connect><Stream "
              "url=\"wss://pub.example/media-stream\"><Parameter name=\"app\" value=\"echo\"/>"
              "<Parameter name=\"note\" value=\"a&amp;b &lt;c&gt; &quot;d&quot;\"/></Stream>"
              "</Connect></Response>\n");
    EXPECT_EQ(*value_of(form, "StatusCallback"), "https://pub.example/status");
    EXPECT_EQ(*value_of(form, "Timeout"), "30");
    EXPECT_EQ(*value_of(form, "Record"), "true");
    EXPECT_EQ(*value_of(form, "MachineDetection"), "DetectMessageEnd");
    EXPECT_EQ(*value_of(form, "AsyncAmd"), "true");
    EXPECT_EQ(*value_of(form, "Byoc"), "BY0123456789abcdef0123456789ABCDEF");
    EXPECT_FALSE(value_of(form, "Url"));
    const std::string encoded = form_encode(form);
    EXPECT_NE(encoded.find("&StatusCallbackEvent=answered&StatusCallbackEvent=completed"),
              std::string::npos);
    EXPECT_NE(encoded.find("From=%2B15017122661"), std::string::npos);
}

TEST(make_call, sip_headers_and_credentials_are_encoded) {
    request_error error;
    auto req = parse_make_call_request(
        R"({"to":"sip:alice@example.com:5061;transport=tls;secure=true?X-Team=blue&X-Id=42",
            "from":"bot_1.test","sip_auth_username":"alice","sip_auth_password":"p&ss word+"})",
        "", error);
    ASSERT_TRUE(req) << error.field << ": " << error.message;
    const auto form = make_call_form(*req, "https://p.example", "wss://p.example/media-stream");
    const std::string encoded = form_encode(form);
    EXPECT_NE(encoded.find("To=sip%3Aalice%40example.com%3A5061%3Btransport%3Dtls%3Bsecure%3Dtrue"
                           "%3FX-Team%3Dblue%26X-Id%3D42"),
              std::string::npos);
    EXPECT_NE(encoded.find("SipAuthPassword=p%26ss+word%2B"), std::string::npos);
    const auto back = parse_form(encoded);
    ASSERT_TRUE(back);
    EXPECT_EQ(*form_value(*back, "SipAuthPassword"), "p&ss word+");
}

TEST(make_call, long_twiml_falls_back_to_url) {
    std::string body = R"({"to":"+14155551212","parameters":{)";
    for (int i = 0; i < 12; ++i) {
        body += (i ? "," : "") + std::string("\"p") + std::to_string(i) + "\":\"" +
                std::string(400, 'x') + "&\"";
    }
    body += "}}";
    request_error error;
    auto req = parse_make_call_request(body, "+15005550006", error);
    ASSERT_TRUE(req) << error.field << ": " << error.message;
    const auto form = make_call_form(*req, "https://p.example", "wss://p.example/media-stream");
    EXPECT_FALSE(value_of(form, "Twiml"));
    ASSERT_TRUE(value_of(form, "Url"));
    const std::string url(*value_of(form, "Url"));
    EXPECT_EQ(url.rfind("https://p.example/twiml?p0=", 0), 0u) << url.substr(0, 60);
    const auto query = parse_form(std::string_view(url).substr(url.find('?') + 1));
    ASSERT_TRUE(query);
    ASSERT_EQ(query->size(), 12u);
    EXPECT_EQ((*query)[3].second, std::string(400, 'x') + "&");
}

TEST(make_call, every_bad_input_names_its_field) {
    const bad_case cases[] = {
        {"", ""},
        {"[]", ""},
        {"{", ""},
        {R"({"to":"+14155551212"} x)", ""},
        {"{}", "to"},
        {R"({"to":""})", "to"},
        {R"({"to":14155551212})", "to"},
        {R"({"to":"14155551212"})", "to"},
        {R"({"to":"+04155551212"})", "to"},
        {R"({"to":"+1415555121234567"})", "to"},
        {R"({"to":"+1 415 555 1212"})", "to"},
        {R"({"to":"+1"})", "to"},
        {R"({"to":"sip:example.com"})", "to"},
        {R"({"to":"sip:@example.com"})", "to"},
        {R"({"to":"sips:a@example.com"})", "to"},
        {R"({"to":"sip:a b@example.com"})", "to"},
        {R"({"to":"sip:a@exa_mple.com"})", "to"},
        {R"({"to":"sip:a@example.com:0"})", "to"},
        {R"({"to":"sip:a@example.com:70000"})", "to"},
        {R"({"to":"sip:a@example.com;transport=sctp"})", "to"},
        {R"({"to":"sip:a@example.com;transport=tls;transport=udp"})", "to"},
        {R"({"to":"sip:a@example.com?Via=x"})", "to"},
        {R"({"to":"sip:a@example.com?X-A=b c"})", "to"},
        {R"({"to":"sip:a@example.com?"})", "to"},
        {R"({"to":"+14155551212","to":"+14155551213"})", "to"},
        {R"({"to":"+14155551212","frm":"+1"})", "frm"},
        {R"({"to":"+14155551212","from":"callstream"})", "from"},
        {R"({"to":"sip:a@example.com","from":"bad from"})", "from"},
        {R"({"to":"sip:a@example.com","from":"x@y"})", "from"},
        {R"({"to":"+14155551212","from":15005550006})", "from"},
        {R"({"to":"+14155551212","byoc":"BY123"})", "byoc"},
        {R"({"to":"+14155551212","byoc":"BZ0123456789abcdef0123456789abcdef"})", "byoc"},
        {R"({"to":"sip:a@example.com","byoc":"BY0123456789abcdef0123456789abcdef"})", "byoc"},
        {R"({"to":"+14155551212","sip_auth_username":"u","sip_auth_password":"p"})",
         "sip_auth_username"},
        {R"({"to":"sip:a@example.com","sip_auth_username":"u"})", "sip_auth_password"},
        {R"({"to":"sip:a@example.com","sip_auth_password":"p"})", "sip_auth_username"},
        {R"({"to":"sip:a@example.com","sip_auth_username":"u","sip_auth_password":7})",
         "sip_auth_password"},
        {R"({"to":"+14155551212","timeout":0})", "timeout"},
        {R"({"to":"+14155551212","timeout":601})", "timeout"},
        {R"({"to":"+14155551212","timeout":-5})", "timeout"},
        {R"({"to":"+14155551212","timeout":1.5})", "timeout"},
        {R"({"to":"+14155551212","timeout":1e2})", "timeout"},
        {R"({"to":"+14155551212","timeout":"30"})", "timeout"},
        {R"({"to":"+14155551212","timeout":99999999999999999999999})", "timeout"},
        {R"({"to":"+14155551212","timeout":null})", "timeout"},
        {R"({"to":"+14155551212","record":"true"})", "record"},
        {R"({"to":"+14155551212","record":1})", "record"},
        {R"({"to":"+14155551212","machine_detection":"enable"})", "machine_detection"},
        {R"({"to":"+14155551212","machine_detection":true})", "machine_detection"},
        {R"({"to":"+14155551212","parameters":["app"]})", "parameters"},
        {R"({"to":"+14155551212","parameters":{"app":1}})", "parameters"},
        {R"({"to":"+14155551212","parameters":{"":"x"}})", "parameters"},
        {R"({"to":"+14155551212","parameters":{"a":"x\u0001"}})", "parameters"},
        {R"({"to":"+14155551212","parameters":{"a":"x","a":"y"}})", "parameters"},
        {R"({"to":"+14155551212","status_callback_events":"answered"})", "status_callback_events"},
        {R"({"to":"+14155551212","status_callback_events":["answerd"]})", "status_callback_events"},
        {R"({"to":"+14155551212","status_callback_events":["ringing","ringing"]})",
         "status_callback_events"},
        {R"({"to":"+14155551212","status_callback_events":[1]})", "status_callback_events"},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(error_field(c.body), c.field) << c.body;
    }
    // A parameter whose name + value reach 500 characters.
    const std::string long_param =
        R"({"to":"+14155551212","parameters":{"k":")" + std::string(499, 'v') + "\"}}";
    EXPECT_EQ(error_field(long_param), "parameters");
    const std::string ok_param =
        R"({"to":"+14155551212","parameters":{"k":")" + std::string(498, 'v') + "\"}}";
    request_error error;
    EXPECT_TRUE(parse_make_call_request(ok_param, "+15005550006", error)) << error.message;
    // A SIP URI of 255 characters.
    const std::string long_sip =
        R"({"to":"sip:)" + std::string(255 - 4 - 12, 'a') + R"(@example.com"})";
    EXPECT_EQ(error_field(long_sip), "to");
    // No from anywhere, and a configured default that does not fit the target.
    EXPECT_EQ(error_field(R"({"to":"+14155551212"})", ""), "from");
    EXPECT_EQ(error_field(R"({"to":"+14155551212"})", "callstream"), "from");
}

TEST(make_call, validators) {
    EXPECT_TRUE(is_e164("+14155551212"));
    EXPECT_TRUE(is_e164("+12"));
    EXPECT_TRUE(is_e164("+123456789012345"));
    EXPECT_FALSE(is_e164("+1234567890123456"));
    EXPECT_TRUE(is_call_sid("CA0123456789abcdef0123456789abcdef"));
    EXPECT_FALSE(is_call_sid("CA0123456789abcdef0123456789abcdeg"));
    EXPECT_FALSE(is_call_sid("CA0123"));
    std::string why;
    EXPECT_TRUE(is_sip_uri("sip:alice@10.0.0.1:5060;transport=udp", why)) << why;
    EXPECT_TRUE(is_sip_uri("sip:alice@[2001:db8::1]:5060", why)) << why;
    EXPECT_TRUE(is_sip_uri("sip:+14155551212@trunk.pstn.twilio.com", why)) << why;
    EXPECT_FALSE(is_sip_uri("sip:alice@[2001:db8::1", why));
}
