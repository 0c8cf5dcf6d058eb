#pragma once
// One call's bridge to its upstream: the upstream socket, the wire protocol, the playout pacer,
// the caller audio kept while the protocol is not ready, and the failure policy.
//
// Threads: a call_bridge lives on the network thread it was created on (for a pre-warmed
// bridge, the thread that answered /twiml), which runs its socket, protocol and timers. The
// media session calls the caller_* methods from its own thread; when that is another thread
// they hop over with a post (audio copied), otherwise they run inline. The bridge reaches the
// session through call_link, posted to the session's executor the same way.
//
// Audio path: caller μ-law -> protocol -> upstream. Upstream -> protocol -> bridge_actions
// (play_*) -> bridge_playout (20 ms frames, real time + lead) -> bridge_port -> the bridge
// processor in the call's pipeline -> Twilio. Mark echoes for callstream's own marks
// (names starting with mark_prefix) come back through caller_mark_echo(), not the pipeline.
//
// Lifetime: shared_ptr owned by the media session (and, before adoption, by the pre-warm
// registry); pending timers and socket events hold weak references.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>

#include "pipeline/processors/bridge.hpp"
#include "pipeline/processors/bridge_playout.hpp"
#include "pipeline/resampler.hpp"
#include "server/bridge/upstream_protocol.hpp"
#include "server/bridge/upstream_socket.hpp"

namespace callstream::server::bridge {

class bridge_service;

// What the bridge asks of the call's media session. Called on the bridge's thread, which may
// differ from the session's: the implementation (stream_link) hops over when it does.
class call_link {
  public:
    virtual ~call_link() = default;
    // The bridge_port has events: push_wake() the pipeline and flush its output.
    virtual void bridge_output_ready() = 0;
    // The failure policy ends the call and there is no REST hangup: close the media stream.
    virtual void bridge_end_stream(std::string reason) = 0;
};

inline constexpr std::string_view mark_prefix = "callstream-bridge:";

class call_bridge final : public upstream_socket_events,
                          public bridge_actions,
                          public pipeline::bridge_playout::sink,
                          public std::enable_shared_from_this<call_bridge> {
  public:
    enum class state : std::uint8_t { connecting, open, reconnecting, failed, ended };

    // Connects at once. Call on the thread that runs `executor`.
    static std::shared_ptr<call_bridge> create(std::shared_ptr<bridge_service> service,
                                               const upstream_config& upstream,
                                               boost::asio::any_io_executor executor,
                                               std::string call_sid);
    call_bridge(std::shared_ptr<bridge_service> service, const upstream_config& upstream,
                boost::asio::any_io_executor executor, std::string call_sid);
    ~call_bridge() override;

    // ---- from the media session (its own thread) -----------------------------------------
    void caller_start(call_metadata call, std::shared_ptr<pipeline::bridge_port> port,
                      std::weak_ptr<call_link> link);
    void caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms);
    // A fork stream's outbound-track frame (μ-law 8 kHz), kept in order with caller_audio.
    void outbound_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms);
    void caller_dtmf(char digit);
    // A mark echo whose name starts with mark_prefix.
    void caller_mark_echo(std::string_view name);
    // The stream stopped or its socket went away: tell the upstream, then close it.
    void caller_stop();

    // Closes an unadopted pre-warmed bridge (timeout).
    void abandon();

    const upstream_config& upstream() const noexcept { return upstream_; }
    boost::asio::any_io_executor executor() const { return executor_; }
    std::chrono::steady_clock::time_point created() const noexcept { return created_; }
    // {"upstream":…,"protocol":…,"state":…,…} for GET /calls/{sid}; any thread.
    std::string describe_json() const;
    bool failed_before_start() const;

    // ---- upstream_socket_events ------------------------------------------------------------
    void on_upstream_open() override;
    void on_upstream_message(bool text, std::string_view data) override;
    void on_upstream_closed(std::string_view label, std::string detail) override;

    // ---- bridge_actions ------------------------------------------------------------------
    void send_text(std::string message) override;
    std::string take_buffer() override;
    void send_binary(std::vector<std::uint8_t> bytes) override;
    void play_ulaw(std::span<const std::uint8_t> ulaw) override;
    void play_pcm16(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) override;
    void play_mark(std::string name) override;
    void clear_playback() override;
    std::int64_t heard_ms() const override;
    std::int64_t sent_ms() const override;
    std::int64_t queued_end_ms() const override;
    void count_barge_in() override;
    void count_truncation() override;
    void count_upstream_error(std::string_view type, std::string_view code) override;
    void hangup(std::string reason) override;
    void fail(std::string_view label, std::string detail) override;

    // ---- bridge_playout::sink ------------------------------------------------------------
    void on_frame(std::span<const std::uint8_t, pipeline::telephony_frame_samples> ulaw) override;
    void on_mark(std::uint32_t id) override;

  private:
    struct pending_audio {
        std::vector<std::uint8_t> ulaw;
        std::int64_t timestamp_ms;
        bool outbound; // the fork's outbound track, not the caller
    };
    struct pending_mark {
        std::uint32_t id;
        std::string name;
        bool internal; // the fallback prompt's end, not the protocol's
    };

    bool on_own_thread() const { return std::this_thread::get_id() == thread_; }
    void connect();
    void start_protocol();
    void after_protocol();
    void track_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms, bool outbound);
    void deliver_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                       bool outbound);
    void flush_pending_audio();
    void pump();
    void notify_link();
    void apply_policy(std::string label, std::string detail);
    void end_call(std::string reason);
    void play_fallback_prompt();
    void set_state(state s);
    // What an upstream message reaches here, for the socket's prefetch
    // (upstream_socket::receiver_lines; same thread only).
    void add_hot_lines();

    std::shared_ptr<bridge_service> service_;
    const upstream_config& upstream_;
    boost::asio::any_io_executor executor_;
    std::thread::id thread_;
    std::string call_sid_;
    std::chrono::steady_clock::time_point created_;
    std::chrono::steady_clock::time_point connect_started_;

    std::shared_ptr<upstream_socket> socket_;
    std::unique_ptr<upstream_protocol> protocol_;
    bool opened_ = false;   // on_open delivered to protocol_
    bool started_ = false;  // on_start delivered to protocol_
    bool attached_ = false; // the stream started (caller_start)
    bool stopped_ = false;  // caller_stop
    bool failing_ = false;  // a failure is being handled; protocol actions are ignored
    bool ending_ = false;
    unsigned attempts_ = 0;

    call_metadata call_;
    std::shared_ptr<pipeline::bridge_port> port_;
    std::weak_ptr<call_link> link_;

    pipeline::bridge_playout playout_;
    boost::asio::steady_timer pace_timer_;
    std::chrono::steady_clock::time_point pace_due_ = std::chrono::steady_clock::time_point::max();
    boost::asio::steady_timer retry_timer_;
    std::vector<pending_mark> marks_;          // in the pacer or released, not yet echoed
    std::vector<std::uint32_t> ignore_echoes_; // released marks a clear already reported
    std::deque<pending_audio> pending_audio_;
    std::map<std::uint32_t, std::unique_ptr<pipeline::resampler>> down_; // play_pcm16 rates
    std::vector<std::int16_t> pcm_scratch_;
    std::vector<std::uint8_t> ulaw_scratch_;
    bool released_any_ = false;

    mutable std::mutex describe_mutex_; // state_ and last_error_, read by /calls
    state state_ = state::connecting;
    std::string last_error_;
    std::uint64_t frames_to_upstream_ = 0;
    std::uint64_t frames_from_upstream_ = 0;
};

std::string_view to_string(call_bridge::state s) noexcept;

} // namespace callstream::server::bridge
