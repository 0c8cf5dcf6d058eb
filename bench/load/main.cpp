// callstream-load: simulates N Twilio Media Streams calls against a ws:// or wss:// URL and
// measures echo round trip, loss, the generator's own send jitter, and the server's CPU and
// memory per frame. See bench/README.md for what every figure means.

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include <boost/url/parse.hpp>

#include "bench/load/audio_source.hpp"
#include "bench/load/load_run.hpp"
#include "bench/load/proc_stats.hpp"

namespace {

using callstream::bench::audio_source;
using callstream::bench::load_config;
using callstream::bench::run_result;

struct options {
    load_config load;
    std::string url = "ws://127.0.0.1:8080/media-stream";
    std::string audio_path;
    bool json = false;
    std::string streams_out; // per-call figures, one line per call
    bool find_max = false;
    int find_start = 100;
    int max_streams = 2000;
    double find_resolution = 0.05; // stop bisecting when hi - lo <= this fraction of lo
    double p99_ms = 20;
    double pause_s = 1.0; // between find-max runs, so the server can close the last run's calls
};

void usage() {
    std::cerr
        << "usage: callstream-load [options]\n"
           "  --url URL            ws:// or wss:// URL (default ws://127.0.0.1:8080/media-stream)\n"
           "  --streams N          simultaneous calls (default 100)\n"
           "  --ramp R             calls opened per second (default 500)\n"
           "  --warmup S           seconds after the ramp before measuring (default 1)\n"
           "  --duration S         measured seconds (default 10)\n"
           "  --grace S            seconds to wait for the last echoes (default 2)\n"
           "  --threads N          generator threads (default 1)\n"
           "  --tls-ca FILE        wss://: trust this CA (PEM; a self-signed server's own\n"
           "                       certificate), not the system's store\n"
           "  --app NAME           customParameters.app in `start` (default echo)\n"
           "  --dtmf-every N       a DTMF event after every N media frames (default 0: none)\n"
           "  --mark-every N       a mark event after every N media frames (default 0: none)\n"
           "  --audio FILE.ul      8 kHz mu-law audio to loop (default: espeak-ng speech)\n"
           "  --server-pid PID     measure this process's CPU and RSS\n"
           "  --find-max           step the call count up, then bisect, for the largest count\n"
           "                       with p99 <= --p99-ms and no loss\n"
           "  --find-start N       first count of --find-max (default 100)\n"
           "  --max-streams N      highest count --find-max tries (default 2000)\n"
           "  --find-resolution F  bisect until the bracket is within F of its low end (0.05)\n"
           "  --p99-ms MS          round-trip p99 limit (default 20)\n"
           "  --max-jitter-ms MS   generator send-jitter p99 above which a run is INVALID (2)\n"
           "  --pause S            seconds between --find-max runs (default 1)\n"
           "  --json               print one JSON document instead of text\n"
           "  --streams-out FILE   one line per call: index call_sid stream_sid sent echoed\n"
           "                       failed dropped close_code close_reason (tab-separated)\n";
}

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                throw std::invalid_argument(a + " needs a value");
            }
            return argv[++i];
        };
        if (a == "--url") {
            o.url = next();
        } else if (a == "--streams") {
            o.load.streams = std::stoi(next());
        } else if (a == "--ramp") {
            o.load.ramp_per_s = std::stod(next());
        } else if (a == "--warmup") {
            o.load.warmup_s = std::stod(next());
        } else if (a == "--duration") {
            o.load.duration_s = std::stod(next());
        } else if (a == "--grace") {
            o.load.grace_s = std::stod(next());
        } else if (a == "--threads") {
            o.load.threads = std::stoi(next());
        } else if (a == "--tls-ca") {
            o.load.tls_ca_file = next();
        } else if (a == "--app") {
            o.load.app = next();
        } else if (a == "--dtmf-every") {
            o.load.dtmf_every = std::stoi(next());
        } else if (a == "--mark-every") {
            o.load.mark_every = std::stoi(next());
        } else if (a == "--audio") {
            o.audio_path = next();
        } else if (a == "--server-pid") {
            o.load.server_pid = static_cast<pid_t>(std::stol(next()));
        } else if (a == "--find-max") {
            o.find_max = true;
        } else if (a == "--find-start") {
            o.find_start = std::stoi(next());
        } else if (a == "--max-streams") {
            o.max_streams = std::stoi(next());
        } else if (a == "--find-resolution") {
            o.find_resolution = std::stod(next());
        } else if (a == "--p99-ms") {
            o.p99_ms = std::stod(next());
        } else if (a == "--max-jitter-ms") {
            o.load.max_jitter_p99_ms = std::stod(next());
        } else if (a == "--pause") {
            o.pause_s = std::stod(next());
        } else if (a == "--streams-out") {
            o.streams_out = next();
        } else if (a == "--json") {
            o.json = true;
        } else if (a == "--help" || a == "-h") {
            usage();
            std::exit(0);
        } else {
            throw std::invalid_argument("unknown option " + a);
        }
    }
    for (char c : o.load.app) {
        if (c == '"' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
            throw std::invalid_argument("--app must not need JSON escaping");
        }
    }
    const auto url = boost::urls::parse_uri(o.url);
    if (!url) {
        throw std::invalid_argument("bad --url " + o.url);
    }
    const auto scheme = url->scheme();
    if (scheme != "ws" && scheme != "wss") {
        throw std::invalid_argument("--url must be ws:// or wss://");
    }
    o.load.tls = scheme == "wss";
    o.load.host = url->host();
    o.load.port = url->has_port() ? std::string(url->port()) : (o.load.tls ? "443" : "80");
    o.load.target = url->encoded_target().empty() ? "/" : std::string(url->encoded_target());
    return true;
}

double per_frame_us(double seconds, std::uint64_t frames) {
    return frames == 0 ? 0.0 : seconds * 1e6 / static_cast<double>(frames);
}

bool passes(const run_result& r, double p99_ms) {
    return r.valid && r.failed == 0 && r.dropped == 0 && r.frames_lost == 0 && r.frames_sent > 0 &&
           static_cast<double>(r.rtt_us.value_at_percentile(99.0)) <= p99_ms * 1000.0;
}

std::string run_json(const run_result& r, double p99_ms) {
    std::ostringstream j;
    auto pct = [&](const callstream::bench::latency_histogram& h) {
        std::ostringstream s;
        s << "{\"count\":" << h.count() << ",\"mean\":" << h.mean()
          << ",\"p50\":" << h.value_at_percentile(50) << ",\"p90\":" << h.value_at_percentile(90)
          << ",\"p99\":" << h.value_at_percentile(99)
          << ",\"p99_9\":" << h.value_at_percentile(99.9) << ",\"max\":" << h.max() << "}";
        return s.str();
    };
    j << "{\"streams\":" << r.streams << ",\"opened\":" << r.opened << ",\"failed\":" << r.failed
      << ",\"dropped\":" << r.dropped << ",\"frames_sent\":" << r.frames_sent
      << ",\"frames_echoed\":" << r.frames_echoed << ",\"frames_lost\":" << r.frames_lost
      << ",\"out_of_order\":" << r.out_of_order << ",\"duplicates\":" << r.duplicates
      << ",\"matched_by_order\":" << r.matched_by_order
      << ",\"late_or_unknown\":" << r.late_or_unknown << ",\"deferred\":" << r.deferred
      << ",\"control_sent\":" << r.control_sent << ",\"other_received\":" << r.other_received
      << ",\"relayouts\":" << r.relayouts << ",\"rtt_us\":" << pct(r.rtt_us)
      << ",\"jitter_us\":" << pct(r.jitter_us) << ",\"window_s\":" << r.window_s
      << ",\"generator_cpu_s\":" << r.generator_cpu_s
      << ",\"generator_cpu_us_per_frame\":" << per_frame_us(r.generator_cpu_s, r.frames_sent);
    if (r.server_cpu_s) {
        j << ",\"server_cpu_s\":" << *r.server_cpu_s
          << ",\"server_cpu_us_per_frame\":" << per_frame_us(*r.server_cpu_s, r.frames_echoed);
    }
    if (r.server_rss_base_kib && r.server_rss_load_kib) {
        j << ",\"server_rss_base_kib\":" << *r.server_rss_base_kib
          << ",\"server_rss_load_kib\":" << *r.server_rss_load_kib
          << ",\"server_rss_kib_per_stream\":"
          << (r.opened > 0
                  ? static_cast<double>(*r.server_rss_load_kib - *r.server_rss_base_kib) / r.opened
                  : 0.0);
    }
    j << ",\"valid\":" << (r.valid ? "true" : "false")
      << ",\"pass\":" << (passes(r, p99_ms) ? "true" : "false") << "}";
    return j.str();
}

void print_run(std::ostream& out, const run_result& r, double p99_ms) {
    char line[512];
    std::snprintf(line, sizeof line,
                  "%5d streams: opened %d failed %d dropped %d | frames sent %llu echoed %llu lost "
                  "%llu ooo %llu | rtt us p50 %llu p90 %llu p99 %llu p99.9 %llu max %llu | "
                  "jitter us p99 %llu max %llu deferred %llu | gen %.1f us/frame",
                  r.streams, r.opened, r.failed, r.dropped,
                  static_cast<unsigned long long>(r.frames_sent),
                  static_cast<unsigned long long>(r.frames_echoed),
                  static_cast<unsigned long long>(r.frames_lost),
                  static_cast<unsigned long long>(r.out_of_order),
                  static_cast<unsigned long long>(r.rtt_us.value_at_percentile(50)),
                  static_cast<unsigned long long>(r.rtt_us.value_at_percentile(90)),
                  static_cast<unsigned long long>(r.rtt_us.value_at_percentile(99)),
                  static_cast<unsigned long long>(r.rtt_us.value_at_percentile(99.9)),
                  static_cast<unsigned long long>(r.rtt_us.max()),
                  static_cast<unsigned long long>(r.jitter_us.value_at_percentile(99)),
                  static_cast<unsigned long long>(r.jitter_us.max()),
                  static_cast<unsigned long long>(r.deferred),
                  per_frame_us(r.generator_cpu_s, r.frames_sent));
    out << line;
    if (r.server_cpu_s) {
        std::snprintf(line, sizeof line, " | server %.1f us/frame",
                      per_frame_us(*r.server_cpu_s, r.frames_echoed));
        out << line;
    }
    if (r.server_rss_base_kib && r.server_rss_load_kib && r.opened > 0) {
        std::snprintf(line, sizeof line, " rss %ld KiB (+%.1f KiB/stream)", *r.server_rss_load_kib,
                      static_cast<double>(*r.server_rss_load_kib - *r.server_rss_base_kib) /
                          r.opened);
        out << line;
    }
    if (r.matched_by_order > 0 || r.late_or_unknown > 0) {
        out << " | by-order " << r.matched_by_order << " unknown " << r.late_or_unknown;
    }
    out << (r.valid ? "" : " | INVALID: generator saturated")
        << (passes(r, p99_ms) ? " | pass" : " | FAIL") << "\n";
}

} // namespace

int main(int argc, char** argv) {
    options o;
    try {
        parse(argc, argv, o);
    } catch (const std::exception& e) {
        std::cerr << "callstream-load: " << e.what() << "\n";
        usage();
        return 2;
    }
    callstream::bench::raise_open_files_limit();

    std::string audio_what;
    std::optional<audio_source> audio;
    try {
        if (!o.audio_path.empty()) {
            audio.emplace(audio_source::from_file(o.audio_path));
            audio_what = o.audio_path;
        } else {
            const auto dir = std::filesystem::temp_directory_path() /
                             ("callstream-load-" + std::to_string(getpid()));
            audio.emplace(audio_source::generate(dir, audio_what));
            std::filesystem::remove_all(dir);
        }
    } catch (const std::exception& e) {
        std::cerr << "callstream-load: " << e.what() << "\n";
        return 2;
    }
    if (!o.json) {
        std::cout << "callstream-load: " << o.url << ", audio " << audio_what << " ("
                  << audio->frame_count() << " frames)\n";
    }

    std::vector<run_result> runs;
    auto run = [&](int streams) -> const run_result& {
        load_config c = o.load;
        c.streams = streams;
        runs.push_back(callstream::bench::run_load(c, *audio));
        print_run(o.json ? std::cerr : std::cout, runs.back(), o.p99_ms);
        return runs.back();
    };

    int max_streams = 0;
    std::string limited_by = "none";
    try {
        if (!o.find_max) {
            run(o.load.streams);
        } else {
            // Step up by doubling until a run fails, then bisect the bracket.
            int lo = 0;
            int hi = 0;
            for (int n = std::min(o.find_start, o.max_streams);;) {
                const auto& r = run(n);
                if (!r.valid) {
                    hi = n;
                    limited_by = "generator";
                    break;
                }
                if (!passes(r, o.p99_ms)) {
                    hi = n;
                    limited_by = "server";
                    break;
                }
                lo = n;
                if (n >= o.max_streams) {
                    limited_by = "cap";
                    break;
                }
                n = std::min(n * 2, o.max_streams);
                std::this_thread::sleep_for(std::chrono::duration<double>(o.pause_s));
            }
            while (hi > 0 && hi - lo > std::max(1.0, o.find_resolution * lo) && hi - lo > 1) {
                std::this_thread::sleep_for(std::chrono::duration<double>(o.pause_s));
                const int mid = lo + (hi - lo) / 2;
                const auto& r = run(mid);
                if (passes(r, o.p99_ms)) {
                    lo = mid;
                } else {
                    hi = mid;
                    if (!r.valid) {
                        limited_by = "generator";
                    }
                }
            }
            max_streams = lo;
        }
    } catch (const std::exception& e) {
        std::cerr << "callstream-load: " << e.what() << "\n";
        return 2;
    }

    if (!o.streams_out.empty() && !runs.empty()) {
        std::ofstream out(o.streams_out);
        for (const auto& p : runs.back().per_stream) {
            out << p.index << '\t' << p.call_sid << '\t' << p.stream_sid << '\t' << p.frames_sent
                << '\t' << p.frames_echoed << '\t' << (p.failed ? 1 : 0) << '\t'
                << (p.dropped ? 1 : 0) << '\t' << p.close_code << '\t' << p.close_reason << '\n';
        }
        if (!out) {
            std::cerr << "callstream-load: cannot write " << o.streams_out << "\n";
            return 2;
        }
    }

    bool any_echo = false;
    for (const auto& r : runs) {
        any_echo = any_echo || r.frames_echoed > 0;
    }
    if (o.json) {
        std::cout << "{\"url\":\"" << o.url << "\",\"audio\":\"" << audio_what
                  << "\",\"threads\":" << o.load.threads << ",\"p99_limit_ms\":" << o.p99_ms
                  << ",\"runs\":[";
        for (std::size_t i = 0; i < runs.size(); ++i) {
            std::cout << (i ? "," : "") << run_json(runs[i], o.p99_ms);
        }
        std::cout << "]";
        if (o.find_max) {
            std::cout << ",\"find_max\":{\"max_streams\":" << max_streams << ",\"limited_by\":\""
                      << limited_by << "\"}";
        }
        std::cout << "}\n";
    } else if (o.find_max) {
        std::cout << "max streams with p99 <= " << o.p99_ms << " ms and no loss: " << max_streams
                  << " (limited by " << limited_by << ")\n";
    }
    // Non-zero when the server never echoed anything: a smoke test must notice a dead server.
    return any_echo ? 0 : 1;
}
