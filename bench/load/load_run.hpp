#pragma once
// One measured load run: N simulated Twilio calls against one server URL for a fixed time.
//
// Timeline (all absolute, fixed before the run): streams open at --ramp streams/s; a warm-up
// follows the ramp; the measured window (--duration) comes after; then sending stops, echoes of
// the window's frames are awaited (--grace at most), every call sends `stop` and closes.
// Only frames scheduled inside the window count, so the ramp never pollutes the figures.
//
// Threads: each of config.threads threads owns its io_context and the streams assigned to it
// round-robin, and runs one 1 ms pacing timer for all of them. Each stream has a phase slot in
// the 20 ms period (global index mod 20) so sends are spread over the period, not bursted.
// run_load() blocks the calling thread, which samples /proc at the window's edges.

#include <cstdint>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

#include "bench/load/audio_source.hpp"
#include "bench/load/latency_histogram.hpp"

namespace callstream::bench {

struct load_config {
    bool tls = false;
    std::string host;
    std::string port;
    std::string target = "/media-stream";
    int streams = 100;
    double ramp_per_s = 500;
    double warmup_s = 1.0;
    double duration_s = 10;
    double grace_s = 2.0;
    int threads = 1;
    std::string tls_ca_file; // wss://: the CA (PEM) the server's certificate must chain to;
                             // empty: the system's store. The host name is always verified.
    std::string app = "echo";
    int dtmf_every = 0; // frames between DTMF events; 0 = none
    int mark_every = 0; // frames between mark events; 0 = none
    pid_t server_pid = 0;
    double max_jitter_p99_ms = 2.0; // above this the generator is saturated: the run is INVALID
};

// One call's own figures (--streams-out): which call it was and what became of its frames.
struct stream_report {
    int index = 0;
    std::string call_sid;
    std::string stream_sid;
    std::uint64_t frames_sent = 0;   // in the window
    std::uint64_t frames_echoed = 0; // of those
    bool failed = false;             // never connected
    bool dropped = false;            // closed by the peer before the end
    int close_code = 0;              // the peer's close frame, when it sent one
    std::string close_reason;
};

struct run_result {
    int streams = 0;
    int opened = 0;
    int failed = 0;                  // could not connect or upgrade
    int dropped = 0;                 // closed by the peer before the end
    std::uint64_t frames_sent = 0;   // media frames scheduled in the window and sent
    std::uint64_t frames_echoed = 0; // ... and echoed
    std::uint64_t frames_lost = 0;   // sent in the window, no echo by the end of the grace
    std::uint64_t out_of_order = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t matched_by_order = 0; // echoes without our frame id, matched by arrival order
    std::uint64_t late_or_unknown = 0;  // echoes that matched no outstanding frame
    std::uint64_t deferred = 0;       // generator lag: frame due while its stream's write was busy
    std::uint64_t control_sent = 0;   // connected/start/dtmf/mark/stop messages
    std::uint64_t other_received = 0; // non-media messages from the server
    std::uint64_t relayouts = 0;      // media messages laid out again (a counter gained a digit)
    latency_histogram rtt_us;         // echo round trip of window frames
    latency_histogram jitter_us;      // actual send time - scheduled time, window frames
    double window_s = 0;
    double generator_cpu_s = 0;
    std::optional<double> server_cpu_s;
    std::optional<long> server_rss_base_kib; // before the run's streams connect
    std::optional<long> server_rss_load_kib; // at the end of the window
    bool valid = true; // false when the generator's send jitter p99 exceeded the limit
    std::vector<stream_report> per_stream; // by index
};

// Throws std::runtime_error on setup errors (resolve failure, bad TLS setup).
run_result run_load(const load_config& config, const audio_source& audio);

} // namespace callstream::bench
