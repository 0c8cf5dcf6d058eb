// The play processor against sox: what goes out must be the prompt resampled to 8 kHz, in whole
// 20 ms frames, followed by its mark; barge-in must clear within two frames of speech onset, and
// marks echoed because of a clear must not count as played.

#include <thread>

#include <gtest/gtest.h>

#include "pipeline/processors/play.hpp"
#include "tests/pipeline/audio_test_util.hpp"

namespace {

using namespace callstream;
using namespace callstream::test;
using kind = pipeline::outbound_event::kind;

struct play_rig {
    pipeline::play_processor* play = nullptr;
    std::unique_ptr<pipeline::stream_pipeline> pipeline;
    captured_output cap;
    std::size_t frames = 0;

    play_rig(const fs::path& prompts_dir, const std::string& play_param, const std::string& vad,
             int lead_ms = 1000) {
        pipeline::play_options options;
        options.prompts_dir = prompts_dir;
        options.vad = vad;
        options.lead_ms = lead_ms;
        auto p = std::make_unique<pipeline::play_processor>(options, nullptr);
        play = p.get();
        pipeline::stream_pipeline::processor_chain chain;
        chain.push_back(std::move(p));
        pipeline = std::make_unique<pipeline::stream_pipeline>(std::move(chain));
        pipeline::stream_info info;
        info.call_sid = "CA1";
        info.stream_sid = "MZ1";
        if (!play_param.empty()) {
            info.custom_parameters = {{"play", play_param}};
        }
        pipeline->start(info);
    }
    void push(const std::vector<std::int16_t>& pcm) {
        frames = push_all(*pipeline, pcm, cap, frames);
    }
    void push_silence(std::size_t n_frames) { push(std::vector<std::int16_t>(n_frames * 160)); }
    std::vector<std::int16_t> decoded_media() const {
        const auto bytes = cap.media_bytes();
        std::vector<std::int16_t> pcm(bytes.size());
        codec::ulaw_decode(bytes, pcm);
        return pcm;
    }
    std::size_t count(kind k) const {
        return static_cast<std::size_t>(std::count_if(cap.events.begin(), cap.events.end(),
                                                      [&](const auto& e) { return e.type == k; }));
    }
};

// The best SNR of `test` against `ref` over small alignment offsets (resamplers' delays differ
// by a sample or so).
double best_snr_db(const std::vector<std::int16_t>& ref, const std::vector<std::int16_t>& test) {
    double best = -100;
    for (std::size_t off = 0; off <= 4; ++off) {
        best = std::max(best, snr_db(ref, test, off));
        std::vector<std::int16_t> shifted(ref.begin() + static_cast<std::ptrdiff_t>(off),
                                          ref.end());
        best = std::max(best, snr_db(shifted, test));
    }
    return best;
}

void expect_prompt_then_mark(const play_rig& rig, std::size_t prompt_samples) {
    const std::size_t frames = (prompt_samples + 159) / 160;
    ASSERT_EQ(rig.count(kind::media), frames);
    ASSERT_EQ(rig.count(kind::mark), 1u);
    ASSERT_EQ(rig.cap.events.back().type, kind::mark);
    EXPECT_EQ(rig.cap.events.back().mark, "play:0:0");
    for (const auto& e : rig.cap.events) {
        if (e.type == kind::media) {
            EXPECT_EQ(e.media.size(), 160u); // whole frames only
        }
    }
    // The last frame is padded with silence (μ-law 0xFF decodes to 0).
    const auto pcm = rig.decoded_media();
    for (std::size_t i = prompt_samples; i < pcm.size(); ++i) {
        ASSERT_EQ(pcm[i], 0) << "padding sample " << i;
    }
}

TEST(play, wav_prompt_at_16k_stereo_matches_sox_resampling) {
    temp_dir dir;
    fs::create_directory(dir / "prompts");
    make_speech(dir, "speech", "Welcome to the test line. Press one for sales.");
    run("sox " + quote(dir / "speech.raw.wav") + " -r 16000 -c 2 -b 16 " +
        quote(dir / "prompts" / "welcome.wav"));
    run("sox -D " + quote(dir / "prompts" / "welcome.wav") + " -r 8000 -c 1 -b 16 " +
        quote(dir / "ref.wav"));
    const auto ref = read_mono_pcm16(dir / "ref.wav");

    play_rig rig(dir / "prompts", "welcome", "none");
    ASSERT_EQ(rig.play->start_error(), "");
    rig.push_silence(ref.size() / 160 + 60);
    const auto sent = rig.decoded_media();
    ASSERT_GE(sent.size(), ref.size());
    ASSERT_LE(sent.size() - ref.size(), 160u);
    const double snr = best_snr_db(ref, sent);
    std::printf("WAV 16 kHz stereo prompt vs sox: SNR %.1f dB\n", snr);
    EXPECT_GT(snr, 25.0); // μ-law alone limits this to about 35-38 dB
    // Our resampler's length is within a couple of samples of sox's.
    pipeline::prompt loaded;
    ASSERT_EQ(pipeline::load_prompt("welcome", dir / "prompts", loaded), "");
    EXPECT_NEAR(static_cast<double>(loaded.pcm.size()), static_cast<double>(ref.size()), 2.0);
    expect_prompt_then_mark(rig, loaded.pcm.size());
}

TEST(play, opus_prompt_matches_sox_resampling_of_the_decoded_file) {
    temp_dir dir;
    fs::create_directory(dir / "prompts");
    make_speech(dir, "speech", "Your balance is twelve dollars.");
    run("sox " + quote(dir / "speech.raw.wav") + " -r 16000 -c 1 -b 16 " + quote(dir / "s16.wav"));
    run("opusenc --quiet " + quote(dir / "s16.wav") + " " +
        quote(dir / "prompts" / "balance.opus"));
    run("opusdec --quiet " + quote(dir / "prompts" / "balance.opus") + " " +
        quote(dir / "dec.wav"));
    run("sox -D " + quote(dir / "dec.wav") + " -r 8000 -c 1 -b 16 " + quote(dir / "ref.wav"));
    const auto ref = read_mono_pcm16(dir / "ref.wav");

    play_rig rig(dir / "prompts", "balance", "none"); // no extension: .wav, then .opus
    ASSERT_EQ(rig.play->start_error(), "");
    rig.push_silence(ref.size() / 160 + 60);
    const double snr = best_snr_db(ref, rig.decoded_media());
    std::printf("Ogg Opus prompt vs opusdec+sox: SNR %.1f dB\n", snr);
    EXPECT_GT(snr, 25.0);
    pipeline::prompt loaded;
    ASSERT_EQ(pipeline::load_prompt("balance.opus", dir / "prompts", loaded), "");
    EXPECT_NEAR(static_cast<double>(loaded.pcm.size()), static_cast<double>(ref.size()), 2.0);
    expect_prompt_then_mark(rig, loaded.pcm.size());
}

TEST(play, tone_is_whole_frames_at_the_right_pitch_and_runs_ahead_of_the_caller) {
    temp_dir dir;
    play_rig rig(dir.path(), "tone:440:1000", "none", 400);
    rig.push_silence(1);
    // 400 ms lead: after one caller frame, 20 frames (400 ms) wait at Twilio beyond its clock.
    EXPECT_EQ(rig.count(kind::media), 20u);
    rig.push_silence(60);
    expect_prompt_then_mark(rig, 8000);
    const auto pcm = rig.decoded_media();
    std::size_t crossings = 0;
    for (std::size_t i = 1; i < pcm.size(); ++i) {
        crossings += (pcm[i - 1] < 0) != (pcm[i] < 0) ? 1u : 0u;
    }
    EXPECT_NEAR(static_cast<double>(crossings), 880.0, 4.0); // 440 Hz for 1 s
}

TEST(play, prompt_paths_outside_the_prompts_folder_are_refused) {
    temp_dir dir;
    fs::create_directory(dir / "prompts");
    run("sox -n -r 8000 -b 16 " + quote(dir / "secret.wav") + " synth 0.2 sine 300");
    fs::copy_file(dir / "secret.wav", dir / "prompts" / "ok.wav");
    fs::create_symlink(dir / "secret.wav", dir / "prompts" / "link.wav");
    for (const std::string& bad :
         std::vector<std::string>{"../secret", "../secret.wav", (dir / "secret.wav").string(),
                                  "link", "sub/../../secret", "missing", "tone:99999:10"}) {
        play_rig rig(dir / "prompts", bad, "none");
        EXPECT_NE(rig.play->start_error(), "") << bad;
        rig.push_silence(5);
        EXPECT_EQ(rig.count(kind::media), 0u) << bad;
        EXPECT_NE(rig.play->control()->play(bad), "") << bad;
    }
    play_rig rig(dir / "prompts", "ok", "none");
    EXPECT_EQ(rig.play->start_error(), "");
    rig.push_silence(5);
    EXPECT_EQ(rig.count(kind::media), 10u);
}

// Speech onset in the caller's audio while a prompt plays: clear within 2 frames, prompt stops.
void barge_in_on_speech(const std::string& vad) {
    temp_dir dir;
    const auto speech =
        read_mono_pcm16(make_speech(dir, "speech", "Hello, I want to talk to a person."));
    std::vector<std::int16_t> caller(8000, 0); // 1 s of silence first
    caller.insert(caller.end(), speech.begin(), speech.end());
    const std::size_t onset_frame = energy_onset_sample(caller) / 160;
    ASSERT_GT(onset_frame, 45u);

    play_rig rig(dir.path(), "tone:440:8000", vad);
    ASSERT_EQ(rig.play->start_error(), "");
    rig.push(caller);
    ASSERT_EQ(rig.count(kind::clear), 1u) << vad;
    const auto clear = std::find_if(rig.cap.events.begin(), rig.cap.events.end(),
                                    [](const auto& e) { return e.type == kind::clear; });
    const std::size_t clear_frame = clear->after_frame - 1; // sent while processing this frame
    std::printf("%s barge-in: speech onset at frame %zu, clear at frame %zu (%zu ms)\n",
                vad.c_str(), onset_frame, clear_frame, (clear_frame - onset_frame) * 20);
    EXPECT_GE(clear_frame, onset_frame) << vad;
    EXPECT_LE(clear_frame, onset_frame + 2) << vad;
    // Nothing of the prompt follows the clear.
    EXPECT_TRUE(std::none_of(clear, rig.cap.events.end(),
                             [](const auto& e) { return e.type == kind::media; }));
    EXPECT_FALSE(rig.play->playing());
    EXPECT_EQ(rig.play->stats().barge_ins, 1u);
}

TEST(play, barge_in_on_speech_with_webrtc_vad) {
    barge_in_on_speech("webrtc");
}
TEST(play, barge_in_on_speech_with_energy_vad) {
    barge_in_on_speech("energy");
}

TEST(play, dtmf_hash_or_star_cuts_the_prompt_other_digits_do_not) {
    temp_dir dir;
    play_rig rig(dir.path(), "tone:440:5000", "none");
    rig.push_silence(5);
    rig.pipeline->push_dtmf('1');
    rig.cap.drain(*rig.pipeline, rig.frames);
    EXPECT_EQ(rig.count(kind::clear), 0u);
    rig.pipeline->push_dtmf('#');
    rig.cap.drain(*rig.pipeline, rig.frames);
    EXPECT_EQ(rig.count(kind::clear), 1u);
    const std::size_t media = rig.count(kind::media);
    rig.push_silence(20);
    EXPECT_EQ(rig.count(kind::media), media);
    // '*' while nothing plays sends nothing.
    rig.pipeline->push_dtmf('*');
    rig.cap.drain(*rig.pipeline, rig.frames);
    EXPECT_EQ(rig.count(kind::clear), 1u);
}

TEST(play, marks_echoed_because_of_a_clear_are_ignored) {
    temp_dir dir;
    play_rig rig(dir.path(), "tone:440:200,tone:550:200", "none");
    rig.push_silence(2);
    ASSERT_EQ(rig.count(kind::mark), 2u); // both prompts are queued at Twilio, 1 s lead
    EXPECT_TRUE(rig.play->playing());
    ASSERT_TRUE(rig.play->control()->clear()); // POST /streams/{sid}/clear
    rig.push_silence(1);
    ASSERT_EQ(rig.count(kind::clear), 1u);
    EXPECT_FALSE(rig.play->playing());
    // Twilio echoes every pending mark after a clear (TWILIO.md 2.4).
    rig.pipeline->push_mark("play:0:0");
    rig.pipeline->push_mark("play:0:1");
    EXPECT_EQ(rig.play->stats().marks_ignored, 2u);
    EXPECT_EQ(rig.play->stats().marks_played, 0u);

    // A new prompt from the server plays in the next generation and its echo counts.
    ASSERT_EQ(rig.play->control()->play("tone:600:100"), "");
    rig.push_silence(1);
    ASSERT_EQ(rig.cap.events.back().type, kind::mark);
    EXPECT_EQ(rig.cap.events.back().mark, "play:1:0");
    EXPECT_TRUE(rig.play->playing());
    rig.pipeline->push_mark("play:1:0");
    EXPECT_EQ(rig.play->stats().marks_played, 1u);
    EXPECT_FALSE(rig.play->playing());
    rig.pipeline->push_mark("someone-else");
    EXPECT_EQ(rig.play->stats().marks_ignored, 2u);
}

TEST(play, control_commands_from_another_thread_are_all_played) {
    temp_dir dir;
    play_rig rig(dir.path(), "", "none", 200);
    std::atomic<int> posted{0};
    std::atomic<bool> give_up{false};
    std::thread server([&] {
        for (int i = 0; i < 20 && !give_up.load(); ++i) {
            // A full mailbox means the audio side has not polled yet: retry.
            while (rig.play->control()->play("tone:300:40") != "" && !give_up.load()) {
                std::this_thread::yield();
            }
            ++posted;
        }
    });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    // A posted command is only seen at the next frame, so wait for the marks, not the posts.
    while (rig.play->stats().marks_played < 20 && std::chrono::steady_clock::now() < deadline) {
        rig.push_silence(1);
        // Twilio echoes each mark once the audio before it has played.
        for (const auto& e : rig.cap.events) {
            if (e.type == kind::mark && e.after_frame == rig.frames) {
                rig.pipeline->push_mark(e.mark);
            }
        }
    }
    give_up = true;
    server.join();
    EXPECT_EQ(posted.load(), 20);
    EXPECT_EQ(rig.count(kind::mark), 20u);
    EXPECT_EQ(rig.count(kind::media), 40u);
    EXPECT_EQ(rig.play->stats().marks_played, 20u);
}

} // namespace
