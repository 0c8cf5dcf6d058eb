#pragma once
// The Twilio Media Streams state machine for one stream: takes the parsed inbound messages
// (connected, start, media, dtmf, mark, stop), refuses what breaks the protocol's order, drives
// the stream's pipeline, and turns the pipeline's output (20 ms μ-law frames at 8 kHz, marks,
// clears) into Twilio messages for its transport. It also keeps the session registry, the call
// registry and the stream counters in /metrics up to date.
//
// Threading: the transport's network thread calls everything (see stream_handler); in DSP mode
// the pipeline's output-ready callback hops here through transport.cross_thread_wakeup().
// Ownership: owned by its transport; owns the pipeline (and through it the processors).
// Errors: a message that breaks the protocol closes the stream with 1007 or 1008 and a reason
// naming the problem; other streams are unaffected. Nothing here throws.
// Receive-only streams (start.tracks names "outbound": a <Start> stream, e.g. a forked call):
// the outbound track goes to the processors (on_outbound_track) and nothing is ever sent.
// Parameters: a callstream_parameters_id among the customParameters is replaced by the
// parameters stored under it (server/calls/call_parameter_store.hpp); an unknown id closes 1008.

#include <cstdint>
#include <memory>

#include "pipeline/stream_pipeline.hpp"
#include "server/app/server_context.hpp"
#include "server/media/stream_transport.hpp"
#include "server/twilio/media_messages.hpp"

namespace callstream::server::bridge {
class call_bridge;
class stream_link;
} // namespace callstream::server::bridge

namespace callstream::server::monitor {
class stream_tap;
} // namespace callstream::server::monitor

namespace callstream::server {

class parameters_lookup;

class twilio_stream final : public stream_handler {
  public:
    explicit twilio_stream(std::shared_ptr<server_context> ctx);
    ~twilio_stream() override;

    void on_open(stream_transport& transport, std::weak_ptr<media_session_handle> handle) override;
    void on_text(std::string_view text, std::size_t capacity) override;
    void on_wakeup() override;
    void on_pipeline_request(const std::function<void(pipeline::stream_pipeline&)>& fn) override;
    // The pipeline's backpressure (pipeline/stream_pipeline.hpp: a recorder behind, a DSP
    // worker's inbound ring filling).
    bool reading_paused() override {
        return state_ == state::resolving ||
               (pipeline_ && state_ == state::streaming && pipeline_->reading_paused());
    }
    void add_next_message_lines(pipeline::warm_lines& lines) override;
    void on_closed(close_reason why) override;
    std::string_view log_id() const noexcept override { return info_.stream_sid; }

  private:
    // resolving: start carried a parameters id and the store has not answered yet.
    enum class state { awaiting_start, resolving, streaming, stopped };

    void on_start();
    void continue_start(); // on_start, once the stored parameters are in
    void on_media();
    bool check_streaming();
    void fail(std::uint16_t code, std::string_view text, close_reason why);
    void flush_pipeline();
    void count_pipeline_drops();
    // app=bridge (server/bridge/): opens or adopts the call's upstream; false refused the start.
    bool start_bridge(const std::shared_ptr<pipeline::bridge_port>& port);
    // What a media message reaches here, for the transport's prefetch (after start).
    void add_hot_lines();

    std::shared_ptr<server_context> ctx_;
    stream_transport* transport_ = nullptr; // from on_open to on_closed; outlives this
    std::uint64_t registry_id_ = 0;
    state state_ = state::awaiting_start;

    inbound_message msg_;
    pipeline::stream_info parsed_start_;
    pipeline::stream_info info_;
    std::unique_ptr<pipeline::stream_pipeline> pipeline_;
    outbound_writer writer_;
    std::uint64_t pipeline_dropped_ = 0; // pipeline drops already added to /metrics
    std::shared_ptr<bridge::call_bridge> bridge_;
    std::shared_ptr<bridge::stream_link> bridge_link_;
    std::shared_ptr<parameters_lookup> lookup_; // while resolving
    // --monitor: levels, counters and listen-in for /monitor (server/monitor/stream_tap.hpp).
    std::shared_ptr<monitor::stream_tap> tap_;
};

} // namespace callstream::server
