// Soak: many streams against one server for CALLSTREAM_SOAK_SECONDS (default 20; run 600 by
// hand), with random client kills, reconnects, protocol violations and HTTP traffic mixed in.
// Afterwards the server's open file descriptors must be back to the baseline exactly and its
// RSS within 8 MiB of it, and every frame sent on a well-behaved stream must have come back.
// Built as its own executable, labelled `soak`.
#include <atomic>
#include <cstdlib>
#include <dirent.h>
#include <fstream>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/server_process.hpp"

#if defined(__SANITIZE_ADDRESS__)
#define CALLSTREAM_SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CALLSTREAM_SOAK_ASAN 1
#endif
#endif

namespace callstream::testing {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

long rss_kib(pid_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::atol(line.c_str() + 6);
        }
    }
    return -1;
}

int open_fds(pid_t pid) {
    const std::string path = "/proc/" + std::to_string(pid) + "/fd";
    DIR* dir = ::opendir(path.c_str());
    if (dir == nullptr) {
        return -1;
    }
    int n = 0;
    while (const dirent* e = ::readdir(dir)) {
        n += e->d_name[0] != '.' ? 1 : 0;
    }
    ::closedir(dir);
    return n;
}

// Waits until the server has no stream and no connection but the scrape itself, then until its
// fd count is stable; returns that count.
int quiet_fds(const server_process& server) {
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_streams_active", 0, 30s));
    EXPECT_TRUE(wait_for_metric_value(server.port(), "callstream_connections_active", 1, 30s));
    int last = -2;
    for (int i = 0; i < 100; ++i) {
        std::this_thread::sleep_for(50ms);
        const int now = open_fds(server.pid());
        if (now == last) {
            return now;
        }
        last = now;
    }
    return last;
}

struct soak_totals {
    std::atomic<std::uint64_t> frames_sent{0};
    std::atomic<std::uint64_t> frames_echoed{0};
    std::atomic<std::uint64_t> frames_lost{0};
    std::atomic<std::uint64_t> reconnects{0};
    std::atomic<std::uint64_t> kills{0};
    std::atomic<std::uint64_t> bad_messages{0};
    std::atomic<std::uint64_t> bad_closes_wrong_code{0};
    std::atomic<std::uint64_t> raw_violations{0};
    std::atomic<std::uint64_t> http_requests{0};
    std::atomic<int> next_sid{1000};
    std::mutex failure_mutex;
    std::string first_failure;
    void fail(const std::string& what) {
        const std::lock_guard lock(failure_mutex);
        if (first_failure.empty()) {
            first_failure = what;
        }
    }
};

// A thread of well-behaved streams: each round sends one frame on every stream, then reads
// every echo and checks it byte for byte. Now and then a stream says stop, waits for the 1000
// close and reconnects with a new SID (as Twilio does for a new call).
void well_behaved(std::uint16_t port, int streams, clock_type::time_point end, soak_totals& t,
                  unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::unique_ptr<good_stream>> s;
    for (int i = 0; i < streams; ++i) {
        s.push_back(std::make_unique<good_stream>(port, t.next_sid++));
    }
    while (clock_type::now() < end) {
        std::vector<std::vector<std::uint8_t>> sent(s.size());
        for (std::size_t i = 0; i < s.size(); ++i) {
            sent[i] = s[i]->next_frame();
            s[i]->send_frame(sent[i]);
            ++t.frames_sent;
        }
        for (std::size_t i = 0; i < s.size(); ++i) {
            const auto reply = s[i]->client.read(20s);
            const auto payload = reply ? media_payload(*reply) : std::nullopt;
            if (payload && *payload == echo_of(sent[i])) {
                ++t.frames_echoed;
            } else {
                ++t.frames_lost;
                t.fail("stream " + s[i]->sid + ": echo missing or wrong; close " +
                       std::to_string(s[i]->client.close_info().code) + " " +
                       s[i]->client.close_info().error);
                s[i] = std::make_unique<good_stream>(port, t.next_sid++);
            }
        }
        if (rng() % 50 == 0) {
            auto& victim = s[rng() % s.size()];
            victim->client.send_text(twilio::stop(victim->sid, victim->sequence++));
            const auto closed = victim->client.wait_close(20s);
            if (closed.code != 1000) {
                t.fail("stop did not close 1000: " + std::to_string(closed.code));
            }
            victim = std::make_unique<good_stream>(port, t.next_sid++);
            ++t.reconnects;
        }
        std::this_thread::sleep_for(20ms); // about real time: one frame per stream per 20 ms
    }
    for (auto& stream : s) {
        stream->client.send_text(twilio::stop(stream->sid, stream->sequence++));
        stream->client.wait_close(20s);
    }
}

// A thread of misbehaving clients: streams killed mid-call without a close, bad JSON, bad
// base64, binary frames, raw RFC 6455 violations, half-sent HTTP requests, plain HTTP.
void chaos(std::uint16_t port, clock_type::time_point end, soak_totals& t, unsigned seed) {
    std::mt19937 rng(seed);
    std::vector<std::unique_ptr<good_stream>> open;
    while (clock_type::now() < end) {
        try {
            switch (rng() % 8) {
            case 0:
            case 1: { // start a stream, send a few frames, keep it open for a later kill
                auto s = std::make_unique<good_stream>(port, t.next_sid++);
                for (auto i = rng() % 5; i > 0; --i) {
                    s->send_frame(s->next_frame());
                }
                open.push_back(std::move(s));
                break;
            }
            case 2: // kill a random open stream without a close frame
                if (!open.empty()) {
                    const auto i = rng() % open.size();
                    open[i]->client.abort();
                    open.erase(open.begin() + static_cast<std::ptrdiff_t>(i));
                    ++t.kills;
                }
                break;
            case 3: { // a bad message on a live stream: must close 1007
                good_stream s(port, t.next_sid++);
                const bool json = rng() % 2 == 0;
                s.client.send_text(json ? std::string("{\"event\":")
                                        : R"({"event":"media","streamSid":")" + s.sid +
                                              R"(","media":{"payload":"!!!!"}})");
                ++t.bad_messages;
                if (s.client.wait_close(20s).code != 1007) {
                    ++t.bad_closes_wrong_code;
                }
                break;
            }
            case 4: { // binary frame: 1003
                good_stream s(port, t.next_sid++);
                const std::uint8_t bytes[3] = {1, 2, 3};
                s.client.send_binary(bytes);
                ++t.bad_messages;
                if (s.client.wait_close(20s).code != 1003) {
                    ++t.bad_closes_wrong_code;
                }
                break;
            }
            case 5: { // a raw RFC 6455 violation (unmasked frame): 1002
                raw_socket raw(port);
                if (raw.upgrade() == 101) {
                    raw.send(make_frame(0x81, "{}", false));
                    const auto close = raw.read_close(20s);
                    if (!close || close->close_code() != 1002) {
                        ++t.bad_closes_wrong_code;
                    }
                }
                ++t.raw_violations;
                break;
            }
            case 6: { // half an HTTP request, then vanish
                raw_socket raw(port);
                raw.send("GET /healthz HTTP/1.1\r\nHost: x\r\n");
                ++t.kills;
                break;
            }
            case 7:
                if (http_request(port, "GET", rng() % 2 ? "/healthz" : "/twiml?app=echo").status !=
                    200) {
                    t.fail("HTTP request failed");
                }
                ++t.http_requests;
                break;
            }
        } catch (const std::exception& e) {
            t.fail(std::string("chaos client error: ") + e.what());
        }
        while (open.size() > 20) { // at most 20 chaos streams open at once
            open.front()->client.abort();
            open.erase(open.begin());
            ++t.kills;
        }
        std::this_thread::sleep_for(5ms);
    }
    for (auto& s : open) {
        s->client.abort();
    }
}

TEST(soak, many_streams_with_chaos_leak_nothing_and_lose_no_frame) {
    const char* env = std::getenv("CALLSTREAM_SOAK_SECONDS");
    const int seconds = env != nullptr ? std::max(1, std::atoi(env)) : 20;
    constexpr int good_threads = 4;
    constexpr int streams_per_thread = 20; // 80 good streams + up to 20 chaos streams

    server_process server; // info level: the port is read from the "listening" line
    const auto port = server.port();

    // Warm up to the peak stream count once so allocator arenas, per-thread parsers and the
    // session registry are at their working size before the baseline is taken.
    {
        std::vector<std::unique_ptr<good_stream>> warm;
        for (int i = 0; i < good_threads * streams_per_thread + 20; ++i) {
            warm.push_back(std::make_unique<good_stream>(port, 100000 + i));
            ASSERT_TRUE(warm.back()->echoes());
        }
        for (auto& s : warm) {
            s->client.send_text(twilio::stop(s->sid, s->sequence++));
            s->client.wait_close(20s);
        }
    }
    const int fds_before = quiet_fds(server);
    const long rss_before = rss_kib(server.pid());

    soak_totals t;
    const auto end = clock_type::now() + std::chrono::seconds(seconds);
    std::vector<std::thread> threads;
    for (int i = 0; i < good_threads; ++i) {
        threads.emplace_back([&, i] {
            try {
                well_behaved(port, streams_per_thread, end, t, 17U + static_cast<unsigned>(i));
            } catch (const std::exception& e) {
                t.fail(std::string("well-behaved client error: ") + e.what());
            }
        });
    }
    threads.emplace_back([&] { chaos(port, end, t, 99U); });
    long rss_peak = rss_before;
    while (clock_type::now() < end) {
        rss_peak = std::max(rss_peak, rss_kib(server.pid()));
        std::this_thread::sleep_for(200ms);
    }
    for (auto& th : threads) {
        th.join();
    }

    const int fds_after = quiet_fds(server);
    const long rss_after = rss_kib(server.pid());
    const std::string summary =
        "soak " + std::to_string(seconds) + " s: frames sent " + std::to_string(t.frames_sent) +
        ", echoed " + std::to_string(t.frames_echoed) + ", lost " + std::to_string(t.frames_lost) +
        "; reconnects " + std::to_string(t.reconnects) + ", kills " + std::to_string(t.kills) +
        ", bad messages " + std::to_string(t.bad_messages) + ", raw violations " +
        std::to_string(t.raw_violations) + ", http " + std::to_string(t.http_requests) + "; fds " +
        std::to_string(fds_before) + " -> " + std::to_string(fds_after) + "; RSS KiB " +
        std::to_string(rss_before) + " -> " + std::to_string(rss_after) + " (peak " +
        std::to_string(rss_peak) + ")";
    std::cout << summary << std::endl;
    RecordProperty("summary", summary);

    EXPECT_TRUE(t.first_failure.empty()) << t.first_failure;
    EXPECT_EQ(t.frames_lost, 0U);
    EXPECT_EQ(t.frames_sent, t.frames_echoed);
    EXPECT_GT(t.frames_sent, 0U);
    EXPECT_EQ(t.bad_closes_wrong_code, 0U);
    EXPECT_EQ(fds_after, fds_before);
#ifndef CALLSTREAM_SOAK_ASAN
    // ASan's quarantine keeps freed memory resident by design, so RSS is only checked without it.
    EXPECT_LE(rss_after, rss_before + 8 * 1024);
#endif
    EXPECT_TRUE(server.running());
    EXPECT_EQ(server.stop(SIGTERM), 0);
}

} // namespace
} // namespace callstream::testing
