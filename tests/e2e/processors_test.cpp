// play through the real server: a prompt arrives as μ-law frames that decode to the prompt;
// speech cuts it. (record: tests/e2e/recording_claims_test.cpp.)
#include <cmath>
#include <filesystem>
#include <thread>

#include <gtest/gtest.h>

#include "codec/g711.hpp"
#include "codec/wav.hpp"
#include "tests/e2e/e2e_helpers.hpp"
#include "tests/support/server_process.hpp"
#include "tests/support/ws_client.hpp"

namespace callstream::testing {
namespace {

constexpr std::size_t frame_bytes = 160;

double rms(std::span<const std::int16_t> x) {
    double sum = 0;
    for (const auto v : x) {
        sum += static_cast<double>(v) * v;
    }
    return x.empty() ? 0 : std::sqrt(sum / static_cast<double>(x.size()));
}

TEST(play_e2e, a_prompt_arrives_as_frames_that_decode_to_it_then_its_mark) {
    temp_dir tmp;
    const std::string prompts = tmp.file("prompts");
    std::filesystem::create_directories(prompts);
    // A 16 kHz prompt, so the server must resample it; sox makes the 8 kHz reference.
    ASSERT_EQ(run_command("sox -n -r 16000 -c 1 -b 16 " + prompts +
                          "/hello.wav synth 1 sine 300-3000 gain -6 >/dev/null 2>&1"),
              0);
    ASSERT_EQ(run_command("sox " + prompts + "/hello.wav -r 8000 -t s16 " + tmp.file("ref.raw") +
                          " >/dev/null 2>&1"),
              0);
    const auto ref_bytes = read_file(tmp.file("ref.raw"));
    std::vector<std::int16_t> ref(ref_bytes.size() / 2);
    std::memcpy(ref.data(), ref_bytes.data(), ref.size() * 2);

    server_process server({"--prompts-dir", prompts});
    ws_client client(server.port());
    const std::string sid = twilio::stream_sid(88);
    client.send_text(twilio::connected());
    client.send_text(twilio::start(sid, "CA88", {{"app", "play"}, {"play", "hello.wav"}}));
    const std::vector<std::uint8_t> silence(frame_bytes, 0xFF);
    std::vector<std::int16_t> received;
    std::string mark;
    for (int i = 0; i < 100 && mark.empty(); ++i) {
        client.send_text(twilio::media(sid, i + 2, silence, i + 1, i * 20));
        for (const auto& msg : client.pump(std::chrono::milliseconds(20), 1000)) {
            if (auto payload = media_payload(msg)) {
                EXPECT_EQ(payload->size(), frame_bytes); // whole 20 ms frames only
                for (const auto b : *payload) {
                    received.push_back(codec::ulaw_to_linear(b));
                }
            } else if (msg.find(R"("event":"mark")") != std::string::npos) {
                mark = msg;
            }
        }
    }
    ASSERT_FALSE(mark.empty()) << "no mark after the prompt";
    EXPECT_NE(mark.find("play:"), std::string::npos) << mark;
    ASSERT_GE(received.size(), ref.size());
    // Align by cross-correlation over a few ms (the two resamplers' delays differ slightly).
    double best_snr = -100;
    for (int lag = -40; lag <= 40; ++lag) {
        double signal = 0, noise = 0;
        for (std::size_t i = 100; i + 100 < ref.size(); ++i) {
            const auto j = static_cast<std::ptrdiff_t>(i) + lag;
            const double d = received[static_cast<std::size_t>(j)] - ref[i];
            signal += static_cast<double>(ref[i]) * ref[i];
            noise += d * d;
        }
        best_snr = std::max(best_snr, 10 * std::log10(signal / std::max(noise, 1.0)));
    }
    std::printf("prompt vs sox's 8 kHz resampling: %.1f dB SNR\n", best_snr);
    EXPECT_GE(best_snr, 35.0); // README: measured 36.7 dB
    EXPECT_GT(rms(received), 1000.0);
}

// Measured in frames of audio, not by when messages arrive: play keeps 1 s (50 frames) ahead of
// the caller's clock, so caller frame 0 is answered by 50 prompt frames and every later caller
// frame by one more, until the frame whose speech onset sends the clear (answered by the clear
// alone). The number of prompt frames sent before the clear (those received plus those the
// clear dropped from the outbox, counted in /metrics) therefore names the caller frame that
// triggered it, however late the server's writes reach us on a loaded machine.
TEST(play_e2e, speech_onset_clears_the_prompt_one_frame_after_the_first_loud_frame) {
    temp_dir tmp;
    server_process server({"--prompts-dir", tmp.path()});
    auto talk = make_speech_ulaw(tmp, 3.0);
    // Start the caller's speech at its first loud frame, so frame 30 is the onset.
    std::size_t first = 0;
    while (first + frame_bytes <= talk.size()) {
        std::vector<std::int16_t> pcm(frame_bytes);
        codec::ulaw_decode({talk.data() + first, frame_bytes}, pcm);
        if (rms(pcm) > 1000) {
            break;
        }
        first += frame_bytes;
    }
    talk.erase(talk.begin(), talk.begin() + static_cast<std::ptrdiff_t>(first));
    ws_client client(server.port());
    const std::string sid = twilio::stream_sid(99);
    client.send_text(twilio::connected());
    client.send_text(twilio::start(sid, "CA99", {{"app", "play"}, {"play", "tone:440:5000"}}));
    const std::vector<std::uint8_t> silence(frame_bytes, 0xFF);
    constexpr int onset = 30;
    constexpr int lead_frames = 50; // play's default lead_ms (1000) in 20 ms frames
    int media_before_clear = 0;
    bool cleared = false;
    for (int i = 0; i < onset + 25 && !cleared; ++i) {
        const std::span<const std::uint8_t> frame =
            i < onset
                ? std::span<const std::uint8_t>(silence)
                : std::span<const std::uint8_t>(
                      talk.data() + static_cast<std::size_t>(i - onset) * frame_bytes, frame_bytes);
        client.send_text(twilio::media(sid, i + 2, frame, i + 1, i * 20));
        // Wait for this frame's whole answer (50 frames for the first, then one), so no
        // backlog builds up; a clear ends the answer early.
        const int expected = i == 0 ? lead_frames : 1;
        for (int got = 0; got < expected && !cleared;) {
            const auto msgs = client.pump(std::chrono::milliseconds(5000), 1);
            ASSERT_FALSE(msgs.empty()) << "no answer to caller frame " << i;
            for (const auto& msg : msgs) {
                ++got;
                if (msg.find(R"("event":"clear")") != std::string::npos) {
                    cleared = true;
                } else if (!cleared && media_payload(msg)) {
                    ++media_before_clear;
                }
            }
        }
    }
    ASSERT_TRUE(cleared) << "no clear within 25 frames of speech";
    const auto dropped = metric_value(metrics_text(server.port()),
                                      R"(callstream_frames_dropped_total{cause="cleared"})");
    ASSERT_TRUE(dropped.has_value());
    const int sent_before_clear = media_before_clear + static_cast<int>(*dropped);
    // Caller frame c < the clear's frame added one prompt frame each: sent = lead + c_clear - 1.
    const int clear_frame = sent_before_clear - lead_frames + 1;
    ASSERT_GE(clear_frame, onset) << "clear before the caller spoke";
    std::printf("clear sent in answer to caller frame %d: %d frame(s) (%d ms of audio) after the "
                "first loud frame\n",
                clear_frame, clear_frame - onset, (clear_frame - onset) * 20);
    // The energy detector needs two voiced 10 ms frames; the first loud 20 ms frame of this
    // speech holds one, so the onset lands in the next frame: 1 frame, as README says.
    EXPECT_LE(clear_frame - onset, 1);
    // After the clear the prompt is gone: caller frames get no more prompt audio.
    const std::vector<std::uint8_t> more(frame_bytes, 0xFF);
    client.send_text(twilio::media(sid, 200, more, 199, 4000));
    for (const auto& msg : client.pump(std::chrono::milliseconds(300), 1000)) {
        EXPECT_FALSE(media_payload(msg)) << "media after clear";
    }
}

TEST(play_e2e, http_routes_queue_prompts_and_clear_a_running_stream) {
    temp_dir tmp;
    server_process server({"--prompts-dir", tmp.path(), "--api-token", "s3cret"});
    const std::map<std::string, std::string> auth{{"Authorization", "Bearer s3cret"}};
    ws_client client(server.port());
    const std::string sid = twilio::stream_sid(55);
    client.send_text(twilio::connected());
    client.send_text(twilio::start(sid, "CA55", {{"app", "play"}}));
    ws_client echo(server.port());
    const std::string echo_sid = twilio::stream_sid(56);
    echo.send_text(twilio::connected());
    echo.send_text(twilio::start(echo_sid, "CA56"));
    const std::vector<std::uint8_t> silence(frame_bytes, 0xFF);
    client.send_text(twilio::media(sid, 2, silence, 1, 0));
    EXPECT_TRUE(client.pump(std::chrono::milliseconds(200), 1000).empty()); // nothing to play yet

    const std::string path = "/streams/" + sid;
    EXPECT_EQ(
        http_request(server.port(), "POST", path + "/play", R"({"prompts":"tone:440:100"})").status,
        401);
    EXPECT_EQ(http_request(server.port(), "POST", "/streams/MZnope/play",
                           R"({"prompts":"tone:440:100"})", auth)
                  .status,
              404);
    EXPECT_EQ(http_request(server.port(), "POST", "/streams/" + echo_sid + "/play",
                           R"({"prompts":"tone:440:100"})", auth)
                  .status,
              409);
    EXPECT_EQ(http_request(server.port(), "POST", path + "/play",
                           R"({"prompts":"../../etc/passwd"})", auth)
                  .status,
              400);
    EXPECT_EQ(http_request(server.port(), "POST", path + "/play", "not json", auth).status, 400);
    EXPECT_EQ(http_request(server.port(), "POST", path + "/play",
                           R"({"prompts":"tone:440:100,tone:880:2000"})", auth)
                  .status,
              202);
    std::size_t media = 0;
    std::size_t marks = 0;
    for (int i = 3; i < 20 && marks == 0; ++i) {
        client.send_text(twilio::media(sid, i, silence, i - 1, (i - 2) * 20));
        for (const auto& msg : client.pump(std::chrono::milliseconds(50), 1000)) {
            media += media_payload(msg) ? 1U : 0U;
            marks += msg.find(R"("event":"mark")") != std::string::npos ? 1U : 0U;
        }
    }
    EXPECT_EQ(marks, 1U); // the 100 ms tone's mark, the 2 s tone still playing
    EXPECT_GE(media, 5U);
    EXPECT_EQ(http_request(server.port(), "POST", path + "/clear", "", auth).status, 202);
    bool cleared = false;
    for (int i = 20; i < 30 && !cleared; ++i) {
        client.send_text(twilio::media(sid, i, silence, i - 1, (i - 2) * 20));
        for (const auto& msg : client.pump(std::chrono::milliseconds(50), 1000)) {
            cleared = cleared || msg.find(R"("event":"clear")") != std::string::npos;
        }
    }
    EXPECT_TRUE(cleared);
}

} // namespace
} // namespace callstream::testing
