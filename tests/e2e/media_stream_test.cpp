// Twilio Media Streams against the real binary: echo correctness, bad input, concurrency, TLS.
#include <fstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"
#include "tests/support/ws_client.hpp"

namespace callstream::testing {
namespace {

constexpr std::size_t frame_bytes = 160;

std::vector<std::uint8_t> frame_of(const std::vector<std::uint8_t>& audio, std::size_t index) {
    const auto begin = audio.begin() + static_cast<std::ptrdiff_t>(index * frame_bytes);
    return {begin, begin + frame_bytes};
}

// μ-law 0x7F is negative zero; it decodes to 0, which encodes as 0xFF (positive zero).
std::vector<std::uint8_t> expected_echo(std::vector<std::uint8_t> frame) {
    for (auto& b : frame) {
        if (b == 0x7F) {
            b = 0xFF;
        }
    }
    return frame;
}

// A started stream: connected + start sent.
struct started_stream {
    ws_client client;
    std::string sid;
    int sequence = 2;
    started_stream(std::uint16_t port, int n, bool tls = false,
                   const std::map<std::string, std::string>& params = {})
        : client(port, tls), sid(twilio::stream_sid(n)) {
        client.send_text(twilio::connected());
        client.send_text(twilio::start(sid, "CA" + sid.substr(2), params));
    }
    void send_frame(std::span<const std::uint8_t> ulaw) {
        client.send_text(twilio::media(sid, sequence, ulaw, sequence - 1, (sequence - 2) * 20));
        ++sequence;
    }
    // Sends one frame and checks it comes back.
    void expect_echo() {
        std::vector<std::uint8_t> frame(frame_bytes);
        for (std::size_t i = 0; i < frame.size(); ++i) {
            frame[i] = static_cast<std::uint8_t>(i * 7 + static_cast<std::size_t>(sequence));
        }
        send_frame(frame);
        const auto reply = client.read();
        ASSERT_TRUE(reply) << "no echo; close code " << client.close_info().code;
        const auto payload = media_payload(*reply);
        ASSERT_TRUE(payload);
        EXPECT_EQ(*payload, expected_echo(frame));
    }
};

std::string metric_line(std::uint16_t port, const std::string& name) {
    const auto body = http_request(port, "GET", "/metrics").body;
    const auto pos = body.find("\n" + name + " ");
    if (pos == std::string::npos) {
        return {};
    }
    return body.substr(pos + 1, body.find('\n', pos + 1) - pos - 1);
}

bool wait_for_metric(std::uint16_t port, const std::string& line,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (http_request(port, "GET", "/metrics").body.find(line) != std::string::npos) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

void expect_speech_echo(const std::vector<std::string>& server_args) {
    temp_dir dir;
    const auto speech = make_speech_ulaw(dir, 3.0);
    ASSERT_GE(speech.size(), frame_bytes * 100);
    server_process server(server_args);
    started_stream stream(server.port(), 1);
    const std::size_t frames = speech.size() / frame_bytes;
    for (std::size_t i = 0; i < frames; ++i) {
        stream.send_frame(frame_of(speech, i));
    }
    std::size_t negative_zeros = 0;
    for (std::size_t i = 0; i < frames; ++i) {
        const auto reply = stream.client.read();
        ASSERT_TRUE(reply) << "frame " << i;
        EXPECT_NE(reply->find(R"("streamSid":")" + stream.sid + "\""), std::string::npos);
        const auto payload = media_payload(*reply);
        ASSERT_TRUE(payload) << *reply;
        const auto sent = frame_of(speech, i);
        negative_zeros += static_cast<std::size_t>(std::count(sent.begin(), sent.end(), 0x7F));
        ASSERT_EQ(*payload, expected_echo(sent)) << "frame " << i;
    }
    stream.client.send_text(twilio::stop(stream.sid, stream.sequence));
    const auto closed = stream.client.wait_close();
    EXPECT_TRUE(closed.closed);
    EXPECT_EQ(closed.code, 1000);
    std::printf("echoed %zu frames byte-identical (%zu negative-zero bytes came back as 0xFF)\n",
                frames, negative_zeros);
}

TEST(media_echo, speech_comes_back_byte_identical) {
    expect_speech_echo({});
}

TEST(media_echo, speech_comes_back_byte_identical_through_dsp_workers) {
    expect_speech_echo({"--dsp-threads", "2"});
}

// A caller whose receive window is tiny sends all its audio before it reads a single echo: more
// echoes than the server's socket can hold (a loopback socket's send buffer grows up to
// tcp_wmem's maximum), so the server's writes find it full, go out in parts and finish through
// the reactor (server/app/write_now.hpp; counted in callstream_stream_writes_waited_total).
// Then it reads: every echo must arrive once, whole and in order.
TEST(media_echo, echoes_written_in_parts_through_a_small_window_arrive_whole_and_in_order) {
    temp_dir dir;
    const auto speech = make_speech_ulaw(dir, 5.0);
    const std::size_t spoken = speech.size() / frame_bytes;
    ASSERT_GE(spoken, 200U);
    // The speech, looped: twice the largest send buffer in echoes (about 285 bytes each), and
    // never less than 600 s of audio.
    std::size_t send_buffer_max = 4 << 20;
    {
        std::ifstream wmem("/proc/sys/net/ipv4/tcp_wmem");
        std::size_t low = 0, initial = 0;
        wmem >> low >> initial >> send_buffer_max;
    }
    const std::size_t frames = std::max<std::size_t>(30000, 2 * send_buffer_max / 285);
    const auto frame = [&](std::size_t i) { return frame_of(speech, i % spoken); };
    server_process server({"--outbox-bytes", std::to_string(4 * frames * 285)});
    raw_socket caller(server.port(), 4096);
    ASSERT_EQ(caller.upgrade(), 101);
    const std::string sid = twilio::stream_sid(3);
    ASSERT_TRUE(caller.send(make_frame(0x81, twilio::connected())));
    ASSERT_TRUE(caller.send(make_frame(0x81, twilio::start(sid, "CA" + sid.substr(2), {}))));
    std::vector<std::string> replies;
    const auto read_one = [&] {
        auto f = caller.read_frame();
        ASSERT_TRUE(f) << "echo " << replies.size() << " missing";
        ASSERT_EQ(f->opcode, 0x1) << f->payload;
        replies.push_back(std::move(f->payload));
    };
    const auto writes_waited = [&] {
        const auto line = metric_line(server.port(), "callstream_stream_writes_waited_total");
        return line.empty() ? 0UL : std::stoul(line.substr(line.find(' ') + 1));
    };
    for (std::size_t i = 0; i < frames; ++i) {
        const int seq = static_cast<int>(i) + 3;
        ASSERT_TRUE(caller.send(make_frame(
            0x81, twilio::media(sid, seq, frame(i), seq - 2, static_cast<int>(i) * 20))));
    }
    // The server reads on while its writes wait; by now its socket is full.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (writes_waited() == 0 && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_GT(writes_waited(), 0U)
        << "no write found the socket full: the test did not reach the path it is for";
    while (replies.size() < frames) {
        read_one();
        ASSERT_FALSE(::testing::Test::HasFatalFailure());
    }
    for (std::size_t i = 0; i < frames; ++i) {
        const auto payload = media_payload(replies[i]);
        ASSERT_TRUE(payload) << replies[i];
        ASSERT_EQ(*payload, expected_echo(frame(i))) << "echo " << i;
    }
    ASSERT_TRUE(caller.send(make_frame(0x81, twilio::stop(sid, static_cast<int>(frames) + 3))));
    const auto closed = caller.read_close();
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->close_code(), 1000);
}

TEST(media_echo, dtmf_mark_and_unknown_events_do_not_disturb_the_stream) {
    server_process server;
    started_stream stream(server.port(), 2);
    stream.client.send_text(twilio::dtmf(stream.sid, 3, '5'));
    stream.client.send_text(twilio::mark(stream.sid, 4, "turn1:160"));
    stream.client.send_text(R"({"event":"someday-new","streamSid":")" + stream.sid + "\"}");
    stream.sequence = 5;
    stream.expect_echo();
    EXPECT_EQ(metric_line(server.port(), "callstream_messages_unknown_total"),
              "callstream_messages_unknown_total 1");
    EXPECT_EQ(metric_line(server.port(), "callstream_dtmf_in_total"), "callstream_dtmf_in_total 1");
}

// Each bad input closes only its own stream, with the right code, while a bystander stream
// opened before it keeps echoing.
class bad_input : public ::testing::Test {
  protected:
    void SetUp() override {
        server_ =
            std::make_unique<server_process>(std::vector<std::string>{"--handshake-timeout", "2"});
        bystander_ = std::make_unique<started_stream>(server_->port(), 1000);
        bystander_->expect_echo();
    }
    void TearDown() override {
        bystander_->expect_echo();
        bystander_->client.send_text(twilio::stop(bystander_->sid, bystander_->sequence));
        EXPECT_EQ(bystander_->client.wait_close().code, 1000);
    }
    close_result send_and_wait(ws_client& client, const std::string& message) {
        client.send_text(message);
        return client.wait_close();
    }
    std::unique_ptr<server_process> server_;
    std::unique_ptr<started_stream> bystander_;
};

TEST_F(bad_input, invalid_json_closes_1007) {
    ws_client client(server_->port());
    const auto closed = send_and_wait(client, R"({"event":"connected",)");
    EXPECT_EQ(closed.code, 1007) << closed.reason;
    EXPECT_FALSE(closed.reason.empty());
}

TEST_F(bad_input, not_an_object_closes_1007) {
    ws_client client(server_->port());
    EXPECT_EQ(send_and_wait(client, R"(["event","media"])").code, 1007);
}

TEST_F(bad_input, missing_event_closes_1007) {
    ws_client client(server_->port());
    EXPECT_EQ(send_and_wait(client, R"({"streamSid":"MZ1"})").code, 1007);
}

TEST_F(bad_input, binary_frame_closes_1003) {
    ws_client client(server_->port());
    const std::vector<std::uint8_t> bytes(160, 0xFF);
    client.send_binary(bytes);
    const auto closed = client.wait_close();
    EXPECT_EQ(closed.code, 1003) << closed.reason;
}

TEST_F(bad_input, media_before_start_closes_1008) {
    ws_client client(server_->port());
    client.send_text(twilio::connected());
    const std::vector<std::uint8_t> frame(160, 0xFF);
    const auto closed = send_and_wait(client, twilio::media(twilio::stream_sid(5), 2, frame, 1, 0));
    EXPECT_EQ(closed.code, 1008);
    EXPECT_NE(closed.reason.find("before start"), std::string::npos) << closed.reason;
}

TEST_F(bad_input, media_with_another_stream_sid_closes_1008) {
    started_stream stream(server_->port(), 6);
    const std::vector<std::uint8_t> frame(160, 0xFF);
    const auto closed =
        send_and_wait(stream.client, twilio::media(twilio::stream_sid(7), 2, frame, 1, 0));
    EXPECT_EQ(closed.code, 1008);
    EXPECT_NE(closed.reason.find("streamSid"), std::string::npos) << closed.reason;
}

TEST_F(bad_input, second_start_closes_1008) {
    started_stream stream(server_->port(), 8);
    const auto closed = send_and_wait(stream.client, twilio::start(stream.sid, "CA1"));
    EXPECT_EQ(closed.code, 1008);
}

TEST_F(bad_input, stop_before_start_closes_1008) {
    ws_client client(server_->port());
    EXPECT_EQ(send_and_wait(client, twilio::stop(twilio::stream_sid(9), 2)).code, 1008);
}

TEST_F(bad_input, bad_base64_closes_1007) {
    started_stream stream(server_->port(), 10);
    const std::string bad =
        R"({"event":"media","sequenceNumber":"2","media":{"track":"inbound","chunk":"1","timestamp":"0","payload":"not*base64!"},"streamSid":")" +
        stream.sid + "\"}";
    const auto closed = send_and_wait(stream.client, bad);
    EXPECT_EQ(closed.code, 1007);
    EXPECT_NE(closed.reason.find("base64"), std::string::npos) << closed.reason;
}

TEST_F(bad_input, payload_of_the_wrong_type_closes_1007) {
    started_stream stream(server_->port(), 11);
    const auto closed =
        send_and_wait(stream.client, R"({"event":"media","media":{"payload":12},"streamSid":")" +
                                         stream.sid + "\"}");
    EXPECT_EQ(closed.code, 1007);
}

// The whole 70 KiB media message in one frame, from a raw socket: Beast refuses it at the
// frame header, sends close 1009, drains one read of what follows and closes the socket, so the
// rest of our message meets a reset. A WebSocket library's client reports that broken pipe and
// forgets the close frame; the raw socket still reads the frame, which arrived first.
TEST_F(bad_input, message_over_64_kib_closes_1009) {
    raw_socket raw(server_->port());
    ASSERT_EQ(raw.upgrade(), 101) << raw.response_head();
    const auto sid = twilio::stream_sid(12);
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, twilio::connected())));
    ASSERT_TRUE(raw.send(make_frame(fin | op_text, twilio::start(sid, "CA" + sid.substr(2)))));
    const std::string huge = R"({"event":"media","media":{"payload":")" +
                             std::string(70 * 1024, 'A') + R"("},"streamSid":")" + sid + "\"}";
    (void)raw.send(make_frame(fin | op_text, huge)); // may meet the reset part way
    const auto close = raw.read_close();
    ASSERT_TRUE(close) << "no close frame";
    EXPECT_EQ(close->close_code(), 1009) << close->close_reason();
    EXPECT_TRUE(
        wait_for_metric(server_->port(), R"(callstream_streams_closed_total{reason="too_big"} 1)"));
}

TEST_F(bad_input, unknown_app_closes_1008) {
    ws_client client(server_->port());
    client.send_text(twilio::connected());
    const auto closed =
        send_and_wait(client, twilio::start(twilio::stream_sid(13), "CA13", {{"app", "nope"}}));
    EXPECT_EQ(closed.code, 1008);
    EXPECT_NE(closed.reason.find("nope"), std::string::npos) << closed.reason;
}

TEST_F(bad_input, vanished_client_frees_its_stream) {
    {
        started_stream stream(server_->port(), 14);
        stream.expect_echo();
        EXPECT_EQ(metric_line(server_->port(), "callstream_streams_active"),
                  "callstream_streams_active 2");
        stream.client.abort();
    }
    EXPECT_TRUE(wait_for_metric(server_->port(), "callstream_streams_active 1\n"));
    EXPECT_TRUE(wait_for_metric(server_->port(),
                                R"(callstream_streams_closed_total{reason="vanished"} 1)"));
}

TEST_F(bad_input, client_that_never_reads_is_cut_off) {
    // A tiny outbox so the limit is reached once the socket buffers are full.
    server_ = std::make_unique<server_process>(
        std::vector<std::string>{"--outbox-bytes", "4096", "--handshake-timeout", "10"});
    bystander_ = std::make_unique<started_stream>(server_->port(), 1001);
    started_stream stream(server_->port(), 15);
    const std::vector<std::uint8_t> frame(160, 0x55);
    // Send without reading until the server gives up on us. Once it has, it reads no more, so a
    // send into a full socket buffer would block until the close deadline cut us off: each
    // frame goes out only once the kernel has room for it (a slow sanitizer build can leave the
    // buffer full of frames it has not read yet at the moment it refuses).
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    bool refused = false;
    for (int i = 0; !refused && std::chrono::steady_clock::now() < give_up; ++i) {
        if (stream.client.writable(std::chrono::milliseconds(100))) {
            stream.send_frame(frame);
        }
        refused = i % 10 == 0 && server_->log().find("reason=slow_consumer") != std::string::npos;
    }
    // Sanitizer builds fill the outbox several times slower; the deadline is not a figure.
    EXPECT_TRUE(server_->wait_for_log("reason=slow_consumer", std::chrono::seconds(30)))
        << server_->log();
    // Reading again within the close deadline (10 s) drains the echoes already in the socket
    // buffers and then finds the close frame the server queued behind them.
    const auto closed = stream.client.wait_close(std::chrono::seconds(10));
    ASSERT_TRUE(closed.closed) << "no close frame: " << closed.error << server_->log();
    EXPECT_EQ(closed.code, 1008);
    EXPECT_TRUE(wait_for_metric(server_->port(),
                                R"(callstream_streams_closed_total{reason="slow_consumer"} 1)"));
}

void echo_many_streams(bool tls, const std::vector<std::string>& extra_args) {
    server_process server(extra_args);
    constexpr int streams = 50;
    constexpr int frames = 25;
    std::vector<std::unique_ptr<started_stream>> clients;
    for (int i = 0; i < streams; ++i) {
        clients.push_back(std::make_unique<started_stream>(server.port(), 100 + i, tls));
    }
    EXPECT_TRUE(wait_for_metric(server.port(), "callstream_streams_active 50\n"));
    for (int f = 0; f < frames; ++f) {
        std::vector<std::uint8_t> frame(frame_bytes);
        for (int i = 0; i < streams; ++i) {
            for (std::size_t b = 0; b < frame_bytes; ++b) {
                frame[b] =
                    static_cast<std::uint8_t>((b + static_cast<std::size_t>(i * 31 + f)) | 0x80);
            }
            clients[static_cast<std::size_t>(i)]->send_frame(frame);
        }
        for (int i = 0; i < streams; ++i) {
            for (std::size_t b = 0; b < frame_bytes; ++b) {
                frame[b] =
                    static_cast<std::uint8_t>((b + static_cast<std::size_t>(i * 31 + f)) | 0x80);
            }
            const auto reply = clients[static_cast<std::size_t>(i)]->client.read();
            ASSERT_TRUE(reply) << "stream " << i << " frame " << f;
            ASSERT_NE(reply->find(clients[static_cast<std::size_t>(i)]->sid), std::string::npos);
            ASSERT_EQ(media_payload(*reply), expected_echo(frame));
        }
    }
    for (auto& c : clients) {
        c->client.send_text(twilio::stop(c->sid, c->sequence));
    }
    for (auto& c : clients) {
        EXPECT_EQ(c->client.wait_close().code, 1000);
    }
    EXPECT_TRUE(wait_for_metric(server.port(), "callstream_streams_active 0\n"));
}

TEST(media_concurrency, fifty_streams_over_ws) {
    echo_many_streams(false, {});
}

class tls_server : public ::testing::Test {
  protected:
    void SetUp() override { ASSERT_TRUE(make_self_signed_cert(dir_)); }
    std::vector<std::string> tls_args() const {
        return {"--tls-cert", dir_.file("cert.pem"), "--tls-key", dir_.file("key.pem")};
    }
    temp_dir dir_;
};

TEST_F(tls_server, fifty_streams_over_wss) {
    echo_many_streams(true, tls_args());
}

TEST_F(tls_server, one_port_serves_https_and_plain_http) {
    server_process server(tls_args());
    EXPECT_EQ(http_request(server.port(), "GET", "/healthz", "", {}, true).body, "ok");
    EXPECT_EQ(http_request(server.port(), "GET", "/healthz", "", {}, false).body, "ok");
}

TEST_F(tls_server, speech_echo_over_wss) {
    const auto speech = make_speech_ulaw(dir_, 1.0);
    server_process server(tls_args());
    started_stream stream(server.port(), 1, true);
    for (std::size_t i = 0; i < speech.size() / frame_bytes; ++i) {
        stream.send_frame(frame_of(speech, i));
        const auto reply = stream.client.read();
        ASSERT_TRUE(reply);
        ASSERT_EQ(media_payload(*reply), expected_echo(frame_of(speech, i)));
    }
}

TEST_F(tls_server, mismatched_key_is_a_clear_startup_error) {
    temp_dir other;
    ASSERT_EQ(run_command("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 "
                          "-nodes -days 1 -subj /CN=x -keyout " +
                          other.file("key.pem") + " -out " + other.file("cert.pem") +
                          " >/dev/null 2>&1"),
              0);
    try {
        server_process server(
            {"--tls-cert", dir_.file("cert.pem"), "--tls-key", other.file("key.pem")});
        FAIL() << "server started with a key that does not match its certificate";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("does not match"), std::string::npos) << e.what();
    }
}

} // namespace
} // namespace callstream::testing
