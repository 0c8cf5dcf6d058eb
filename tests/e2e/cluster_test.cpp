// The cluster end to end: redis-server, HAProxy (scripts/deploy/haproxy-config) and three
// callstream instances, each on loopback ports of its own, started and stopped by each test.
// callstream-load drives calls through HAProxy; its per-call report says what each caller got.
#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <netinet/in.h>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <sys/socket.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>
#include <simdjson.h>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/support/server_process.hpp"
#include "tests/support/ws_client.hpp"

namespace callstream::testing {
namespace {

using namespace std::chrono_literals;
const std::string token = "cluster-test-token";
const std::map<std::string, std::string> auth{{"Authorization", "Bearer " + token}};

std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

bool answers(std::uint16_t port) {
    try {
        return http_request(port, "GET", "/healthz").status == 200;
    } catch (const std::exception&) {
        return false; // not listening yet
    }
}

std::string capture(const std::string& command) {
    std::string out;
    if (FILE* p = ::popen(command.c_str(), "r")) {
        char buf[4096];
        std::size_t n = 0;
        while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) {
            out.append(buf, n);
        }
        ::pclose(p);
    }
    return out;
}

// A child process (redis-server, haproxy) with its output in a file; killed on destruction.
class child {
  public:
    child(std::vector<std::string> argv, const std::string& log) {
        pid_ = ::fork();
        if (pid_ == 0) {
            std::freopen(log.c_str(), "a", stdout);
            std::freopen(log.c_str(), "a", stderr);
            std::vector<char*> a;
            for (auto& s : argv) {
                a.push_back(s.data());
            }
            a.push_back(nullptr);
            ::execvp(a[0], a.data());
            std::_Exit(127);
        }
    }
    ~child() { stop(SIGKILL); }
    void stop(int signo) {
        if (pid_ > 0) {
            ::kill(pid_, signo);
            int status = 0;
            ::waitpid(pid_, &status, 0);
            pid_ = -1;
        }
    }

  private:
    pid_t pid_ = -1;
};

struct instance {
    std::string id;
    std::uint16_t port = 0;
    std::uint16_t agent = 0;
    std::unique_ptr<server_process> proc;
};

class loopback_cluster {
  public:
    explicit loopback_cluster(int n = 3) {
        for (const auto* tool : {"redis-server", "redis-cli", "haproxy"}) {
            if (!have_program(tool)) {
                throw std::runtime_error(std::string(tool) + " is missing: apt-get install " +
                                         (std::string(tool) == "redis-cli" ? "redis-tools"
                                          : std::string(tool) == "haproxy" ? "haproxy"
                                                                           : "redis-server"));
            }
        }
        redis_port = free_port();
        start_redis();
        for (int i = 1; i <= n; ++i) {
            instance inst;
            inst.id = "cs" + std::to_string(i);
            inst.agent = free_port();
            instances.push_back(std::move(inst));
            start_instance(instances.back());
        }
        proxy_port = free_port();
        std::string cmd = std::string(CALLSTREAM_SOURCE_DIR) +
                          "/scripts/deploy/haproxy-config --inter 300 --bind 127.0.0.1:" +
                          std::to_string(proxy_port);
        for (const auto& inst : instances) {
            cmd += " " + inst.id + "=127.0.0.1:" + std::to_string(inst.port) + "/" +
                   std::to_string(inst.agent);
        }
        std::ofstream(dir.file("haproxy.cfg")) << capture(cmd);
        haproxy = std::make_unique<child>(
            std::vector<std::string>{"haproxy", "-db", "-f", dir.file("haproxy.cfg")},
            dir.file("haproxy.log"));
        // Let the first health and agent checks (every 300 ms) see every instance.
        for (int i = 0; i < 100 && !answers(proxy_port); ++i) {
            std::this_thread::sleep_for(50ms);
        }
        if (!answers(proxy_port)) {
            throw std::runtime_error("haproxy did not come up:\n" +
                                     read_text_file(dir.file("haproxy.log")));
        }
        std::this_thread::sleep_for(1s);
    }

    void start_redis() {
        redis = std::make_unique<child>(
            std::vector<std::string>{"redis-server", "--port", std::to_string(redis_port), "--bind",
                                     "127.0.0.1", "--save", "", "--appendonly", "no"},
            dir.file("redis.log"));
        for (int i = 0; i < 100 && redis_cli("PING") != "PONG\n"; ++i) {
            std::this_thread::sleep_for(20ms);
        }
    }

    void start_instance(instance& inst) {
        std::vector<std::string> args{
            "--redis-url",     "redis://127.0.0.1:" + std::to_string(redis_port),
            "--instance-id",   inst.id,
            "--agent-port",    std::to_string(inst.agent),
            "--cluster-ttl",   "2",
            "--drain-timeout", "20",
            "--api-token",     token,
            "--threads",       "1"};
        if (inst.port != 0) {
            args.push_back("--port"); // a restart takes its old place in HAProxy's list
            args.push_back(std::to_string(inst.port));
        }
        inst.proc = std::make_unique<server_process>(args);
        inst.port = inst.proc->port();
        if (!inst.proc->wait_for_log("redis_connected")) {
            throw std::runtime_error(inst.id + " never reached Redis:\n" + inst.proc->log());
        }
    }

    std::string redis_cli(const std::string& args) const {
        return capture("redis-cli -p " + std::to_string(redis_port) + " " + args + " 2>&1");
    }

    // Runs callstream-load through HAProxy; returns its per-call lines. The 10 s grace only
    // matters on a machine so loaded that echoes come seconds late: the run ends as soon as
    // every echo is in.
    struct call_report {
        std::string call_sid, stream_sid;
        long sent = 0, echoed = 0;
        bool failed = false, dropped = false;
        int close_code = 0;
        std::string close_reason;
        std::string run; // the load run's own summary, for failure messages
    };
    std::vector<call_report> load(int streams, double seconds, const std::string& tag,
                                  double ramp = 300) const {
        const std::string out = dir.file("load-" + tag + ".tsv");
        const std::string cmd = std::string(CALLSTREAM_LOAD_BIN) +
                                " --url ws://127.0.0.1:" + std::to_string(proxy_port) +
                                "/media-stream --streams " + std::to_string(streams) + " --ramp " +
                                std::to_string(ramp) + " --warmup 1 --duration " +
                                std::to_string(seconds) + " --grace 10 --streams-out " + out +
                                " > " + dir.file("load-" + tag + ".txt") + " 2>&1";
        run_command(cmd);
        std::vector<call_report> calls;
        std::ifstream in(out);
        std::string line;
        while (std::getline(in, line)) {
            std::istringstream f(line);
            call_report r;
            int index = 0, failed = 0, dropped = 0;
            f >> index >> r.call_sid >> r.stream_sid >> r.sent >> r.echoed >> failed >> dropped >>
                r.close_code;
            std::getline(f, r.close_reason);
            r.failed = failed != 0;
            r.dropped = dropped != 0;
            r.run = tag;
            calls.push_back(r);
        }
        return calls;
    }

    // CallSid -> instance for every live call that instance `at` lists; nullopt unless 200.
    std::optional<std::map<std::string, std::string>> live_calls(const instance& at) const {
        const auto res = http_request(at.port, "GET", "/calls", {}, auth);
        if (res.status != 200) {
            return std::nullopt;
        }
        std::map<std::string, std::string> owners;
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        if (parser.parse(res.body).get(doc)) {
            return std::nullopt;
        }
        for (auto call : doc["calls"].get_array()) {
            std::string_view sid, inst;
            if (call["sid"].get(sid) || call["instance"].get(inst)) {
                continue;
            }
            bool live = false;
            for (auto s : call["streams"].get_array()) {
                auto stopped = s["stopped"];
                live = live || stopped.error() == simdjson::NO_SUCH_FIELD || stopped.is_null();
            }
            if (live) {
                owners[std::string(sid)] = std::string(inst);
            }
        }
        return owners;
    }

    temp_dir dir;
    std::uint16_t redis_port = 0;
    std::uint16_t proxy_port = 0;
    std::unique_ptr<child> redis;
    std::vector<instance> instances;
    std::unique_ptr<child> haproxy;
};

std::string agent_line(std::uint16_t port) {
    return capture("bash -c 'exec 3<>/dev/tcp/127.0.0.1/" + std::to_string(port) + " && cat <&3'");
}

// Waits until every instance lists `count` live calls, all with the same owners; returns them.
std::map<std::string, std::string> wait_for_listing(const loopback_cluster& c, std::size_t count,
                                                    std::chrono::seconds limit) {
    const auto t0 = clock_type::now();
    std::map<std::string, std::string> agreed;
    while (clock_type::now() - t0 < limit) {
        std::vector<std::map<std::string, std::string>> views;
        for (const auto& inst : c.instances) {
            if (auto v = c.live_calls(inst)) {
                views.push_back(std::move(*v));
            }
        }
        if (views.size() == c.instances.size() && views[0].size() == count &&
            std::all_of(views.begin(), views.end(), [&](const auto& v) { return v == views[0]; })) {
            return views[0];
        }
        std::this_thread::sleep_for(200ms);
    }
    return agreed;
}

TEST(Cluster, LoadThroughHaproxySpreadsEchoesEveryFrameAndEveryInstanceListsEveryCall) {
    loopback_cluster c;
    auto running = std::async(std::launch::async, [&] { return c.load(300, 6, "spread"); });
    const auto owners = wait_for_listing(c, 300, 12s);
    const auto calls = running.get();
    ASSERT_EQ(calls.size(), 300u);
    ASSERT_EQ(owners.size(), 300u) << "not every instance listed all 300 calls with one owner";
    std::map<std::string, int> per_instance;
    for (const auto& call : calls) {
        EXPECT_FALSE(call.failed || call.dropped) << call.call_sid << " " << call.close_reason;
        EXPECT_GT(call.sent, 0);
        EXPECT_EQ(call.echoed, call.sent) << call.call_sid;
        ASSERT_TRUE(owners.count(call.call_sid)) << call.call_sid;
        ++per_instance[owners.at(call.call_sid)];
    }
    ASSERT_EQ(per_instance.size(), 3u);
    for (const auto& [inst, n] : per_instance) {
        EXPECT_GE(n, 50) << inst << " took only " << n << " of 300 calls";
    }
    // Every call ended: the registry holds none of them.
    std::this_thread::sleep_for(500ms);
    EXPECT_EQ(c.redis_cli("--scan --pattern 'cs:owner:*'"), "");
}

// Sends caller audio (silence) from sequence number `seq` on until a message holding `needle`
// arrives, for 2 s at most.
bool caller_hears(ws_client& client, const std::string& sid, int seq, const std::string& needle) {
    const std::vector<std::uint8_t> frame(e2e_frame_bytes, 0xFF);
    for (int i = 0; i < 100; ++i) {
        client.send_text(twilio::media(sid, seq + i, frame, seq - 1 + i, i * 20));
        for (const auto& m : client.pump(20ms, 1)) {
            if (m.find(needle) != std::string::npos) {
                return true;
            }
        }
    }
    return false;
}

TEST(Cluster, PlayClearAndHangupSentToARandomInstanceReachTheOwner) {
    loopback_cluster c;
    std::mt19937 rng(12345);
    for (int n = 1; n <= 6; ++n) {
        ws_client client(c.proxy_port);
        const std::string sid = twilio::stream_sid(900 + n);
        const std::string call_sid = "CA" + sid.substr(2);
        client.send_text(twilio::connected());
        client.send_text(twilio::start(sid, call_sid, {{"app", "play"}}));
        // Who owns it, as every instance sees it.
        std::string owner;
        for (int i = 0; i < 50 && owner.empty(); ++i) {
            const auto res =
                http_request(c.instances[0].port, "GET", "/calls/" + call_sid, {}, auth);
            if (res.status == 200) {
                const auto at = res.body.find("\"instance\":\"");
                owner = res.body.substr(at + 12, 3);
            } else {
                std::this_thread::sleep_for(20ms);
            }
        }
        ASSERT_FALSE(owner.empty());
        auto random_port = [&] {
            return c.instances[std::uniform_int_distribution<std::size_t>(0, 2)(rng)].port;
        };
        auto res = http_request(random_port(), "POST", "/streams/" + sid + "/play",
                                R"({"prompts":"tone:440:400"})", auth);
        ASSERT_EQ(res.status, 202) << res.body;
        EXPECT_TRUE(caller_hears(client, sid, 2, "\"mark\""))
            << "the prompt's mark never reached the caller";
        res = http_request(random_port(), "POST", "/streams/" + sid + "/clear", {}, auth);
        ASSERT_EQ(res.status, 202) << res.body;
        const bool cleared = caller_hears(client, sid, 200, "\"clear\"");
        EXPECT_TRUE(cleared) << "clear never reached the caller";
        res = http_request(random_port(), "POST", "/calls/" + call_sid + "/hangup", {}, auth);
        ASSERT_EQ(res.status, 200) << res.body;
        EXPECT_NE(res.body.find("\"instance\":\"" + owner + "\""), std::string::npos) << res.body;
        const auto closed = client.wait_close(3s);
        EXPECT_EQ(closed.code, 1000);
        EXPECT_EQ(closed.reason, "call hung up");
    }
    // No instance holds it any more: 404 from every instance.
    for (const auto& inst : c.instances) {
        EXPECT_EQ(http_request(inst.port, "POST", "/streams/MZ0000/clear", {}, auth).status, 404);
    }
}

TEST(Cluster, ASecondSocketForALiveCallIsRefusedNamingTheOwner) {
    loopback_cluster c;
    ws_client first(c.instances[0].port);
    first.send_text(twilio::connected());
    first.send_text(twilio::start(twilio::stream_sid(1), "CA" + twilio::stream_sid(1).substr(2)));
    std::this_thread::sleep_for(300ms);
    // The same call pinned to cs2 (as a pre-warmed TwiML URL would say).
    ws_client second(c.proxy_port, false, "/i/cs2/media-stream");
    second.send_text(twilio::connected());
    second.send_text(twilio::start(twilio::stream_sid(2), "CA" + twilio::stream_sid(1).substr(2)));
    const auto closed = second.wait_close(3s);
    EXPECT_EQ(closed.code, 1008);
    EXPECT_NE(closed.reason.find("is live on instance cs1"), std::string::npos) << closed.reason;
    EXPECT_TRUE(c.instances[1].proc->wait_for_log("stream_refused_duplicate", 1s));
}

TEST(Cluster, KillNineEndsOnlyThatInstancesCallsAndItsEntriesExpire) {
    loopback_cluster c;
    auto running = std::async(std::launch::async, [&] { return c.load(150, 7, "kill"); });
    const auto owners = wait_for_listing(c, 150, 10s);
    ASSERT_EQ(owners.size(), 150u);
    c.instances[1].proc->signal(SIGKILL);
    const auto calls = running.get();
    int killed = 0;
    for (const auto& call : calls) {
        ASSERT_TRUE(owners.count(call.call_sid));
        if (owners.at(call.call_sid) == "cs2") {
            ++killed;
            EXPECT_TRUE(call.dropped) << call.call_sid;
        } else {
            EXPECT_FALSE(call.dropped || call.failed) << call.call_sid;
            EXPECT_EQ(call.echoed, call.sent) << call.call_sid << " lost frames";
        }
    }
    EXPECT_GT(killed, 0);
    // The TTL is 2 s: by now cs2 and everything it held are gone from Redis.
    std::this_thread::sleep_for(2500ms);
    EXPECT_EQ(c.redis_cli("--scan --pattern 'cs:*cs2*'"), "");
    EXPECT_EQ(c.redis_cli("--scan --pattern 'cs:owner:*'"), "");
    EXPECT_EQ(c.redis_cli("ZRANGE cs:insts 0 -1"), "cs1\ncs3\n");
}

TEST(Cluster, RedisRestartedMidRunLosesNoFrameAndTheApisComeBackWithinFiveSeconds) {
    loopback_cluster c;
    auto running = std::async(std::launch::async, [&] { return c.load(150, 8, "redis"); });
    ASSERT_EQ(wait_for_listing(c, 150, 10s).size(), 150u);
    c.redis->stop(SIGKILL);
    std::this_thread::sleep_for(300ms);
    const auto down = http_request(c.instances[0].port, "GET", "/calls", {}, auth);
    EXPECT_EQ(down.status, 503);
    EXPECT_NE(down.body.find("Redis"), std::string::npos) << down.body;
    std::this_thread::sleep_for(700ms);
    const auto restarted = clock_type::now();
    c.start_redis();
    const auto back = wait_for_listing(c, 150, 5s);
    EXPECT_EQ(back.size(), 150u) << "the registry was not rebuilt within 5 s";
    EXPECT_LT(seconds_since(restarted), 5.0);
    for (const auto& call : running.get()) {
        EXPECT_FALSE(call.dropped || call.failed) << call.call_sid;
        EXPECT_EQ(call.echoed, call.sent) << call.call_sid << " lost frames";
    }
}

TEST(Cluster, RollingRestartWithDrainCutsNoCall) {
    loopback_cluster c;
    std::atomic<bool> rolling{true};
    // Waves of short calls (3 s) while every instance in turn drains and restarts.
    auto waves = std::async(std::launch::async, [&] {
        std::vector<loopback_cluster::call_report> all;
        for (int w = 0; rolling || w < 1; ++w) {
            auto calls = c.load(60, 2, "wave" + std::to_string(w), 60);
            all.insert(all.end(), calls.begin(), calls.end());
        }
        return all;
    });
    std::this_thread::sleep_for(1500ms);
    for (auto& inst : c.instances) {
        inst.proc->signal(SIGTERM);
        std::this_thread::sleep_for(300ms);
        EXPECT_EQ(agent_line(inst.agent), "drain\n") << inst.id;
        // Signal 0 only waits: a second SIGTERM would force an immediate exit.
        EXPECT_EQ(inst.proc->stop(0, 25s), 0) << inst.proc->log();
        EXPECT_NE(inst.proc->log().find("drain_finished instance=" + inst.id + " streams_left=0"),
                  std::string::npos)
            << inst.proc->log();
        c.start_instance(inst);
        std::this_thread::sleep_for(1s); // health rise 2 x 300 ms
    }
    rolling = false;
    const auto calls = waves.get();
    EXPECT_GE(calls.size(), 180u);
    std::set<std::string> failed_runs;
    for (const auto& call : calls) {
        if (call.dropped || call.failed) {
            failed_runs.insert(call.run);
        }
    }
    for (const auto& run : failed_runs) {
        ADD_FAILURE() << "load run " << run << ":\n"
                      << read_text_file(c.dir.file("load-" + run + ".txt"));
    }
    for (const auto& call : calls) {
        EXPECT_FALSE(call.dropped || call.failed)
            << call.call_sid << (call.failed ? " never connected" : " dropped") << ", close "
            << call.close_code << call.close_reason;
        EXPECT_EQ(call.echoed, call.sent) << call.call_sid;
    }
}

} // namespace
} // namespace callstream::testing
