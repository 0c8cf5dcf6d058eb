#include <gtest/gtest.h>

#include "server/calls/call_parameter_store.hpp"
#include "server/http/form.hpp"
#include "server/twilio/create_call.hpp"
#include "server/twilio/twiml.hpp"

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

std::vector<std::string> values_of(const form_fields& form, std::string_view name) {
    std::vector<std::string> out;
    for (const auto& [k, v] : form) {
        if (k == name) {
            out.push_back(v);
        }
    }
    return out;
}

make_call_request parse_ok(std::string_view body, std::string_view default_from = "+15005550006") {
    request_error error;
    auto req = parse_make_call_request(body, default_from, error);
    EXPECT_TRUE(req) << body << " -> " << error.field << ": " << error.message;
    return req.value_or(make_call_request{});
}

form_fields form_for(const make_call_request& req) {
    return make_call_form(req, "https://p.example",
                          make_call_twiml(req, "wss://p.example/media-stream", req.parameters));
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

    const auto form =
        make_call_form(*req, "https://pub.example",
                       make_call_twiml(*req, "wss://pub.example/media-stream", req->parameters));
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
    const auto form = form_for(*req);
    const std::string encoded = form_encode(form);
    EXPECT_NE(encoded.find("To=sip%3Aalice%40example.com%3A5061%3Btransport%3Dtls%3Bsecure%3Dtrue"
                           "%3FX-Team%3Dblue%26X-Id%3D42"),
              std::string::npos);
    EXPECT_NE(encoded.find("SipAuthPassword=p%26ss+word%2B"), std::string::npos);
    const auto back = parse_form(encoded);
    ASSERT_TRUE(back);
    EXPECT_EQ(*form_value(*back, "SipAuthPassword"), "p&ss word+");
}

TEST(make_call, every_new_field_is_forwarded_under_its_twilio_name) {
    const auto req = parse_ok(
        R"({"to":"+14155551212","from":"+15017122661","send_digits":"ww1234#*","time_limit":7200,
            "caller_id":"+15017122662","call_reason":"Your delivery is here","record":true,
            "recording_channels":"dual","recording_track":"inbound","trim":"do-not-trim",
            "recording_status_callback":"https://rec.example.com/cb?x=1",
            "recording_status_callback_event":["in-progress","completed","absent"],
            "timeout":20})");
    const auto form = form_for(req);
    EXPECT_EQ(values_of(form, "SendDigits"), std::vector<std::string>{"ww1234#*"});
    EXPECT_EQ(values_of(form, "TimeLimit"), std::vector<std::string>{"7200"});
    EXPECT_EQ(values_of(form, "CallerId"), std::vector<std::string>{"+15017122662"});
    EXPECT_EQ(values_of(form, "CallReason"), std::vector<std::string>{"Your delivery is here"});
    EXPECT_EQ(values_of(form, "RecordingChannels"), std::vector<std::string>{"dual"});
    EXPECT_EQ(values_of(form, "RecordingTrack"), std::vector<std::string>{"inbound"});
    EXPECT_EQ(values_of(form, "Trim"), std::vector<std::string>{"do-not-trim"});
    EXPECT_EQ(values_of(form, "RecordingStatusCallback"),
              std::vector<std::string>{"https://rec.example.com/cb?x=1"});
    EXPECT_EQ(values_of(form, "RecordingStatusCallbackEvent"),
              (std::vector<std::string>{"in-progress", "completed", "absent"}));

    const auto amd = parse_ok(
        R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_timeout":59,
            "machine_detection_speech_threshold":1000,"machine_detection_speech_end_threshold":5000,
            "machine_detection_silence_timeout":2000})");
    const auto amd_form = form_for(amd);
    EXPECT_EQ(values_of(amd_form, "MachineDetectionTimeout"), std::vector<std::string>{"59"});
    EXPECT_EQ(values_of(amd_form, "MachineDetectionSpeechThreshold"),
              std::vector<std::string>{"1000"});
    EXPECT_EQ(values_of(amd_form, "MachineDetectionSpeechEndThreshold"),
              std::vector<std::string>{"5000"});
    EXPECT_EQ(values_of(amd_form, "MachineDetectionSilenceTimeout"),
              std::vector<std::string>{"2000"});
}

TEST(make_call, client_targets_and_sip_region_and_user_to_user) {
    auto req = parse_ok(R"({"to":"client:alice_01","from":"client:callstream",
                            "caller_id":"client:bot"})");
    EXPECT_EQ(req.to_kind, call_target_kind::client);
    EXPECT_EQ(*value_of(form_for(req), "To"), "client:alice_01");
    EXPECT_EQ(parse_ok(R"({"to":"client:alice"})", "callstream").from, "callstream");

    req = parse_ok(
        R"({"to":"sip:alice@example.com;region=ie1?User-to-User=56a390f3%3Bencoding%3Dhex&X-Id=1"})",
        "callstream");
    EXPECT_TRUE(req.to_is_sip);
    std::string why;
    EXPECT_TRUE(is_sip_uri("sip:a@b.example;transport=tls;region=us2", why)) << why;
    EXPECT_TRUE(is_sip_uri("sip:a@b.example?user-to-user=00ff", why)) << why;
    EXPECT_FALSE(is_sip_uri("sip:a@b.example;region=xx1", why));
    EXPECT_FALSE(is_sip_uri("sip:a@b.example;region=us1;region=ie1", why));
    EXPECT_FALSE(is_sip_uri("sip:a@b.example?User-to-User=zz", why));
    EXPECT_FALSE(is_sip_uri("sip:a@b.example?User-to-User=00%3Bencoding%3Dbase64", why));
    EXPECT_FALSE(is_sip_uri("sip:a@b.example?User-to-User=" + std::string(258, 'a'), why));
    EXPECT_FALSE(is_sip_uri("sip:a@b.example?Contact=x", why));
}

TEST(make_call, fork_mode_starts_a_both_tracks_stream_and_dials) {
    auto req = parse_ok(R"({"to":"+14155551212","mode":"fork","dial":"sip:agent@pbx.example.com",
                            "parameters":{"app":"record"}})");
    EXPECT_TRUE(req.fork);
    const auto twiml = std::string(*value_of(form_for(req), "Twiml"));
    EXPECT_EQ(twiml, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Start><Stream "
                     "url=\"wss://p.example/media-stream\" track=\"both_tracks\"><Parameter "
                     "name=\"app\" value=\"record\"/></Stream></Start><Dial><Sip>"
                     "sip:agent@pbx.example.com</Sip></Dial></Response>\n");
    req = parse_ok(R"({"to":"+14155551212","mode":"fork","dial":"+14155550000"})");
    EXPECT_NE(std::string(*value_of(form_for(req), "Twiml"))
                  .find("<Dial><Number>+14155550000</Number></Dial>"),
              std::string::npos);
    req = parse_ok(R"({"to":"+14155551212","mode":"fork","dial":"client:agent"})");
    EXPECT_NE(
        std::string(*value_of(form_for(req), "Twiml")).find("<Dial><Client>agent</Client></Dial>"),
        std::string::npos);
    EXPECT_FALSE(parse_ok(R"({"to":"+14155551212","mode":"connect"})").fork);
}

TEST(make_call, parameter_store_keeps_parameters_under_an_unguessable_id) {
    memory_call_parameter_store store(2);
    const stream_parameters params = {{"app", "record"}, {"note", std::string(400, 'x')}};
    const std::string id = store.put(params, std::chrono::seconds(60));
    EXPECT_EQ(id.size(), 32u);
    EXPECT_NE(store.put(params, std::chrono::seconds(60)), id);
    // What a starting stream does (the memory store answers inline).
    const auto resolve_stream_parameters = [](call_parameter_store& s, stream_parameters& c) {
        auto lookup = start_parameters_lookup(s, c, [] {});
        return lookup ? lookup->apply(c) : parameters_resolution::inline_parameters;
    };
    stream_parameters custom = {{"CallSid", "CA1"}, {std::string(parameters_id_name), id}};
    EXPECT_EQ(resolve_stream_parameters(store, custom), parameters_resolution::resolved);
    EXPECT_EQ(custom, (stream_parameters{{"CallSid", "CA1"}, params[0], params[1]}));
    // Taken once: a second stream with the same id learns nothing.
    custom = {{std::string(parameters_id_name), id}};
    EXPECT_EQ(resolve_stream_parameters(store, custom), parameters_resolution::unknown_id);
    custom = {{"app", "echo"}};
    EXPECT_EQ(resolve_stream_parameters(store, custom), parameters_resolution::inline_parameters);
    // Expired entries and entries beyond capacity are gone.
    const std::string expired = store.put(params, std::chrono::seconds(0));
    EXPECT_FALSE(store.take(expired));
    const std::string a = store.put(params, std::chrono::seconds(60));
    const std::string b = store.put(params, std::chrono::seconds(60));
    const std::string c = store.put(params, std::chrono::seconds(60));
    EXPECT_FALSE(store.take(a));
    EXPECT_TRUE(store.take(b));
    store.discard(c);
    EXPECT_FALSE(store.take(c));
    EXPECT_EQ(store.size(), 0u);
}

TEST(make_call, xml_attributes_keep_tab_newline_and_return) {
    EXPECT_EQ(xml_escape("a\tb\nc\rd\x01"), "a&#9;b&#10;c&#13;d");
    const auto req = parse_ok(R"({"to":"+14155551212","parameters":{"multi":"line 1\nline\t2"}})");
    EXPECT_NE(std::string(*value_of(form_for(req), "Twiml"))
                  .find(R"(<Parameter name="multi" value="line 1&#10;line&#9;2"/>)"),
              std::string::npos);
}

TEST(make_call, host_port_validation) {
    EXPECT_TRUE(is_host_port("abc.ngrok-free.app"));
    EXPECT_TRUE(is_host_port("127.0.0.1:5050"));
    EXPECT_TRUE(is_host_port("[::1]:443"));
    EXPECT_FALSE(is_host_port("a.com/../x?y=1#"));
    EXPECT_FALSE(is_host_port("my_host.example"));
    EXPECT_FALSE(is_host_port("a.com:0"));
    EXPECT_FALSE(is_host_port("a.com:99999"));
    EXPECT_FALSE(is_host_port(""));
    EXPECT_FALSE(is_host_port("a.com:"));
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
        {R"({"to":"+14155551212","status_callback_events":[]})", "status_callback_events"},
        {R"({"to":"+14155551212","parameters":{"callstream_parameters_id":"x"}})", "parameters"},
        {R"({"to":"+14155551212","send_digits":""})", "send_digits"},
        {R"({"to":"+14155551212","send_digits":"12a"})", "send_digits"},
        {R"({"to":"+14155551212","send_digits":"123456789012345678901234567890123"})",
         "send_digits"},
        {R"({"to":"+14155551212","send_digits":"1","machine_detection":"Enable"})", "send_digits"},
        {R"({"to":"+14155551212","time_limit":0})", "time_limit"},
        {R"({"to":"+14155551212","time_limit":86401})", "time_limit"},
        {R"({"to":"+14155551212","time_limit":"60"})", "time_limit"},
        {R"({"to":"+14155551212","caller_id":"bob"})", "caller_id"},
        {R"({"to":"sip:a@example.com","caller_id":"bad id"})", "caller_id"},
        {R"({"to":"client:a","caller_id":"bob"})", "caller_id"},
        {R"({"to":"+14155551212","call_reason":""})", "call_reason"},
        {R"({"to":"+14155551212","call_reason":"a\u0007"})", "call_reason"},
        {R"({"to":"+14155551212","record":true,"recording_channels":"stereo"})",
         "recording_channels"},
        {R"({"to":"+14155551212","recording_channels":"dual"})", "recording_channels"},
        {R"({"to":"+14155551212","record":false,"recording_track":"both"})", "recording_track"},
        {R"({"to":"+14155551212","record":true,"recording_track":"all"})", "recording_track"},
        {R"({"to":"+14155551212","record":true,"trim":"yes"})", "trim"},
        {R"({"to":"+14155551212","record":true,"recording_status_callback":"ftp://x.example"})",
         "recording_status_callback"},
        {R"({"to":"+14155551212","record":true,"recording_status_callback":"https://a_b.example/"})",
         "recording_status_callback"},
        {R"({"to":"+14155551212","record":true,"recording_status_callback":"/relative"})",
         "recording_status_callback"},
        {R"({"to":"+14155551212","record":true,"recording_status_callback_event":[]})",
         "recording_status_callback_event"},
        {R"({"to":"+14155551212","record":true,"recording_status_callback_event":["done"]})",
         "recording_status_callback_event"},
        {R"({"to":"+14155551212","machine_detection_timeout":30})", "machine_detection_timeout"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_timeout":2})",
         "machine_detection_timeout"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_timeout":60})",
         "machine_detection_timeout"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_speech_threshold":999})",
         "machine_detection_speech_threshold"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_speech_threshold":6001})",
         "machine_detection_speech_threshold"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_speech_end_threshold":499})",
         "machine_detection_speech_end_threshold"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_speech_end_threshold":5001})",
         "machine_detection_speech_end_threshold"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_silence_timeout":1999})",
         "machine_detection_silence_timeout"},
        {R"({"to":"+14155551212","machine_detection":"Enable","machine_detection_silence_timeout":10001})",
         "machine_detection_silence_timeout"},
        {R"({"to":"client:"})", "to"},
        {R"({"to":"client:a b"})", "to"},
        {R"({"to":"client:a<b"})", "to"},
        {R"({"to":"client:a","from":"x y"})", "from"},
        {R"({"to":"client:a","byoc":"BY0123456789abcdef0123456789abcdef"})", "byoc"},
        {R"({"to":"sip:a@example.com;region=mars"})", "to"},
        {R"({"to":"sip:a@example.com?User-to-User=xyz"})", "to"},
        {R"({"to":"+14155551212","mode":"both"})", "mode"},
        {R"({"to":"+14155551212","mode":"fork"})", "dial"},
        {R"({"to":"+14155551212","dial":"+14155550000"})", "dial"},
        {R"({"to":"+14155551212","mode":"fork","dial":"4155550000"})", "dial"},
        {R"({"to":"+14155551212","mode":"fork","dial":"sip:nobody"})", "dial"},
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
    // A client identity of 257 characters.
    EXPECT_EQ(error_field(R"({"to":"client:)" + std::string(257, 'a') + "\"}"), "to");
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
