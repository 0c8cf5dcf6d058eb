// record and play through the real server: what a test client sends is what lands in the
// recording; a prompt arrives as μ-law frames that decode to the prompt; speech cuts it.
#include <cmath>
#include <csignal>
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

// `seconds` of speech, looped, with 0x7F (negative zero) normalised so decoded samples compare.
std::vector<std::uint8_t> speech(const temp_dir& dir, std::size_t frames) {
    auto once = make_speech_ulaw(dir, 10.0);
    std::vector<std::uint8_t> out;
    while (out.size() < frames * frame_bytes) {
        out.insert(out.end(), once.begin(), once.end());
    }
    out.resize(frames * frame_bytes);
    return out;
}

std::string file_with_suffix(const std::string& dir, const std::string& suffix) {
    for (const auto& e : std::filesystem::directory_iterator(dir)) {
        if (e.path().string().ends_with(suffix)) {
            return e.path().string();
        }
    }
    return {};
}

// Waits until the stereo WAV in `dir` holds `frames` caller frames (or the timeout passes).
codec::wav_info wait_for_wav(const std::string& dir, std::size_t frames,
                             std::vector<std::uint8_t>& storage) {
    codec::wav_info info;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
        const std::string path = file_with_suffix(dir, ".wav");
        if (!path.empty()) {
            storage = read_file(path);
            if (!codec::wav_parse(storage, info) && info.frames() >= frames * frame_bytes) {
                return info;
            }
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return info;
}

// Playback length in seconds as opusinfo reports it ("Playback length: 0m:10.000s"), or -1.
double opusinfo_seconds(const temp_dir& tmp, const std::string& file) {
    const std::string out = tmp.file("opusinfo.txt");
    run_command("opusinfo '" + file + "' > " + out + " 2>&1");
    const std::string text = read_text_file(out);
    const auto pos = text.find("Playback length: ");
    if (pos == std::string::npos) {
        return -1;
    }
    int minutes = 0;
    double seconds = 0;
    if (std::sscanf(text.c_str() + pos, "Playback length: %dm:%lfs", &minutes, &seconds) != 2) {
        return -1;
    }
    return minutes * 60 + seconds;
}

struct recording_call {
    temp_dir tmp;
    std::string recordings = tmp.file("recordings");
    std::vector<std::uint8_t> audio;
    std::unique_ptr<server_process> server;
    std::unique_ptr<ws_client> client;
    std::string sid = twilio::stream_sid(77);

    explicit recording_call(std::size_t frames) : audio(speech(tmp, frames)) {
        std::filesystem::create_directories(recordings);
        server = std::make_unique<server_process>(
            std::vector<std::string>{"--recordings-dir", recordings});
        client = std::make_unique<ws_client>(server->port());
        client->send_text(twilio::connected());
        client->send_text(twilio::start(sid, "CA" + sid.substr(2), {{"app", "record"}}));
    }
    // Four times faster than Twilio's real-time pace: the recorder's per-call ring holds about
    // 5 s, and a burst beyond that is dropped and counted (dropped_frames in the sidecar).
    void send(std::size_t from, std::size_t to) {
        for (std::size_t i = from; i < to; ++i) {
            std::this_thread::sleep_for(std::chrono::milliseconds(5));
            const std::span<const std::uint8_t> frame(audio.data() + i * frame_bytes, frame_bytes);
            client->send_text(twilio::media(sid, static_cast<int>(i + 2), frame,
                                            static_cast<int>(i + 1), static_cast<int>(i * 20)));
        }
    }
    // The left channel must be the caller's audio, decoded, sample for sample.
    std::size_t check_left_channel(const codec::wav_info& info, std::size_t frames) const {
        EXPECT_EQ(info.channels, 2);
        EXPECT_EQ(info.rate_hz, 8000);
        std::vector<std::int16_t> pcm(info.data.size() / 2);
        codec::wav_read_samples(info.data, pcm);
        const std::size_t samples = std::min(pcm.size() / 2, frames * frame_bytes);
        std::size_t mismatches = 0;
        for (std::size_t i = 0; i < samples; ++i) {
            mismatches += pcm[2 * i] != codec::ulaw_to_linear(audio[i]) ? 1U : 0U;
        }
        EXPECT_EQ(mismatches, 0U);
        return samples / frame_bytes;
    }
};

TEST(record_e2e, ten_seconds_of_speech_land_in_wav_and_ogg_opus) {
    recording_call call(500);
    call.send(0, 500);
    call.client->send_text(twilio::dtmf(call.sid, 502, '7'));
    call.client->send_text(twilio::stop(call.sid, 503));
    EXPECT_EQ(call.client->wait_close().code, 1000);
    std::vector<std::uint8_t> storage;
    const auto info = wait_for_wav(call.recordings, 500, storage);
    EXPECT_EQ(call.check_left_channel(info, 500), 500U);
    EXPECT_EQ(info.frames(), 500 * frame_bytes);
    ASSERT_TRUE(call.server->wait_for_log("stream_closed"));
    // The sidecar is rewritten on stop; wait for its final form.
    std::string sidecar;
    for (int i = 0; i < 100 && sidecar.find("\"7\"") == std::string::npos; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        sidecar = read_text_file(file_with_suffix(call.recordings, ".json"));
    }
    EXPECT_NE(sidecar.find(call.sid), std::string::npos) << sidecar;
    EXPECT_NE(sidecar.find("\"7\""), std::string::npos) << sidecar;
    double seconds = -1;
    for (int i = 0; i < 100 && std::abs(seconds - 10.0) > 0.04; ++i) {
        seconds = opusinfo_seconds(call.tmp, file_with_suffix(call.recordings, ".opus"));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NEAR(seconds, 10.0, 0.04);
    EXPECT_EQ(
        run_command("soxi '" + file_with_suffix(call.recordings, ".wav") + "' >/dev/null 2>&1"), 0);
    // /metrics counts what the recorder wrote: at least the WAV's 320 KB.
    const std::string metrics = http_request(call.server->port(), "GET", "/metrics").body;
    const auto pos = metrics.find("\ncallstream_recording_bytes_total ");
    ASSERT_NE(pos, std::string::npos);
    EXPECT_GT(std::stoull(metrics.substr(pos + 34)), 320000U);
}

TEST(record_e2e, a_vanished_client_leaves_complete_files) {
    recording_call call(250);
    call.send(0, 250);
    call.client->abort(); // no stop, no close frame
    ASSERT_TRUE(call.server->wait_for_log("reason=vanished"));
    std::vector<std::uint8_t> storage;
    const auto info = wait_for_wav(call.recordings, 250, storage);
    EXPECT_EQ(call.check_left_channel(info, 250), 250U);
    double seconds = -1;
    for (int i = 0; i < 100 && seconds < 5.0 - 0.04; ++i) {
        seconds = opusinfo_seconds(call.tmp, file_with_suffix(call.recordings, ".opus"));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    EXPECT_NEAR(seconds, 5.0, 0.04);
}

TEST(record_e2e, a_sigkilled_server_loses_at_most_a_second) {
    recording_call call(250);
    call.send(0, 250);
    // The claim: a server killed at any moment leaves everything up to the last second. Kill it
    // one second after the last frame went out.
    std::this_thread::sleep_for(std::chrono::seconds(1));
    EXPECT_EQ(call.server->stop(SIGKILL), 128 + SIGKILL);
    std::vector<std::uint8_t> storage;
    const std::string wav = file_with_suffix(call.recordings, ".wav");
    storage = read_file(wav);
    codec::wav_info info;
    ASSERT_FALSE(codec::wav_parse(storage, info));
    EXPECT_GE(call.check_left_channel(info, 250), 200U); // loss <= 1 s of 5 s
    EXPECT_EQ(run_command("soxi '" + wav + "' >/dev/null 2>&1"), 0);
    // A killed Ogg stream has no end-of-stream page; opusinfo still reads its length.
    EXPECT_GE(opusinfo_seconds(call.tmp, file_with_suffix(call.recordings, ".opus")), 4.0);
}

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
    EXPECT_GT(best_snr, 20.0);
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
