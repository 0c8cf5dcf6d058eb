#include "server/media/twilio_stream.hpp"

#include <chrono>
#include <vector>

#include <simdjson.h>

#include "codec/base64.hpp"
#include "pipeline/processor_factory.hpp"
#include "server/app/log.hpp"
#include "server/bridge/bridge_service.hpp"
#include "server/bridge/stream_link.hpp"
#include "server/calls/call_parameter_store.hpp"
#include "server/calls/call_registry.hpp"
#include "server/monitor/monitor_hub.hpp"
#include "server/twilio/twiml.hpp"

namespace callstream::server {
namespace {

// A parser and a decode buffer per network thread rather than per stream: a thread handles one
// message at a time and nothing awaits between parsing a message and finishing with it, and a
// simdjson parser sized for a 64 KiB message would cost every idle stream that much memory.
struct thread_scratch {
    simdjson::ondemand::parser parser;
    std::vector<std::uint8_t> ulaw;
};
thread_scratch& scratch() {
    thread_local thread_scratch s;
    return s;
}

} // namespace

twilio_stream::twilio_stream(std::shared_ptr<server_context> ctx) : ctx_(std::move(ctx)) {}

twilio_stream::~twilio_stream() = default;

void twilio_stream::on_wakeup() {
    if (state_ == state::resolving && lookup_ && lookup_->ready() && !transport_->closing()) {
        continue_start(); // the stored parameters arrived
    }
    if (bridge_link_) {
        bridge_link_->poll(); // what the bridge asked for from another thread
    }
    flush_pipeline();
}

void twilio_stream::on_open(stream_transport& transport,
                            std::weak_ptr<media_session_handle> handle) {
    transport_ = &transport;
    registry_id_ = ctx_->sessions.add(std::move(handle));
    ctx_->stats.streams_active.fetch_add(1, std::memory_order_relaxed);
}

void twilio_stream::fail(std::uint16_t code, std::string_view text, close_reason why) {
    transport_->close(code, text, why);
}

void twilio_stream::on_text(std::string_view text, std::size_t capacity) {
    auto& stats = ctx_->stats;
    if (auto ec = parse_inbound(scratch().parser, text, capacity, msg_, parsed_start_)) {
        const bool order =
            ec == protocol_errc::missing_stream_sid || ec == protocol_errc::bad_start;
        fail(order ? close_code::policy : close_code::bad_payload, ec.message(),
             order ? close_reason::protocol_order : close_reason::invalid_json);
        return;
    }
    switch (msg_.event) {
    case inbound_event::connected:
        if (state_ != state::awaiting_start) {
            fail(close_code::policy, "connected after start", close_reason::protocol_order);
        }
        return;
    case inbound_event::start:
        on_start();
        return;
    case inbound_event::media:
        on_media();
        return;
    case inbound_event::dtmf:
        if (!check_streaming()) {
            return;
        }
        if (msg_.digit.size() != 1) {
            fail(close_code::bad_payload, "dtmf.digit must be one character",
                 close_reason::invalid_json);
            return;
        }
        stats.dtmf_in.fetch_add(1, std::memory_order_relaxed);
        if (tap_) {
            tap_->event("dtmf", msg_.digit);
        }
        if (bridge_) {
            bridge_->caller_dtmf(msg_.digit[0]);
        }
        pipeline_->push_dtmf(msg_.digit[0]);
        flush_pipeline();
        return;
    case inbound_event::mark:
        if (!check_streaming()) {
            return;
        }
        if (bridge_ && msg_.mark_name.starts_with(bridge::mark_prefix)) {
            bridge_->caller_mark_echo(msg_.mark_name); // the bridge's own pacing mark
            return;
        }
        if (tap_) {
            tap_->event("mark", "played " + std::string(msg_.mark_name));
        }
        pipeline_->push_mark(msg_.mark_name);
        flush_pipeline();
        return;
    case inbound_event::stop:
        if (!check_streaming()) {
            return;
        }
        if (bridge_) {
            bridge_->caller_stop();
        }
        pipeline_->stop();
        flush_pipeline();
        state_ = state::stopped;
        transport_->close_when_flushed("stream stopped", close_reason::stop);
        return;
    case inbound_event::unknown:
        // Twilio may add events; an unknown one is not an error, only counted.
        stats.messages_unknown.fetch_add(1, std::memory_order_relaxed);
        log(log_level::debug, "unknown_event", {{"event", msg_.event_name}});
        return;
    }
}

void twilio_stream::on_media() {
    if (!check_streaming()) {
        return;
    }
    auto& s = scratch();
    const std::size_t max_bytes = codec::base64_decoded_max_size(msg_.payload.size());
    if (s.ulaw.size() < max_bytes) {
        s.ulaw.resize(max_bytes);
    }
    std::size_t n = 0;
    if (auto ec = codec::base64_decode(msg_.payload, s.ulaw, n)) {
        fail(close_code::bad_payload, "media.payload: " + ec.message(), close_reason::bad_base64);
        return;
    }
    if (msg_.track == "outbound") {
        // Only a receive-only (<Start>, both_tracks) stream carries it: what the call hears,
        // recorded beside the caller. Never echoed: nothing is sent on such a stream.
        if (info_.receive_only) {
            if (tap_) {
                tap_->outbound_frame({s.ulaw.data(), n});
            }
            if (bridge_) {
                bridge_->outbound_audio({s.ulaw.data(), n}, msg_.timestamp_ms);
            }
            pipeline_->push_outbound_track({s.ulaw.data(), n}, msg_.timestamp_ms);
            flush_pipeline();
        }
        return;
    }
    // The process total for /metrics is the frame_processing histogram's count (one
    // observation per inbound frame); the per-stream count is the pipeline's (frames_in).
    if (tap_) {
        tap_->caller_frame({s.ulaw.data(), n}); // a max scan and relaxed stores, no lock
    }
    const auto t0 = std::chrono::steady_clock::now();
    if (bridge_) {
        bridge_->caller_audio({s.ulaw.data(), n}, msg_.timestamp_ms); // upstream first: latency
    }
    pipeline_->push_audio({s.ulaw.data(), n}, msg_.timestamp_ms);
    flush_pipeline();
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(
        std::chrono::steady_clock::now() - t0);
    ctx_->stats.frames().frame_processing.observe(static_cast<std::uint64_t>(us.count()));
}

void twilio_stream::on_start() {
    if (state_ != state::awaiting_start) {
        fail(close_code::policy,
             state_ == state::streaming ? "start received twice" : "start after stop",
             close_reason::protocol_order);
        return;
    }
    info_ = std::move(parsed_start_);
    // A call placed with more parameters than its TwiML could carry brings only their id:
    // the stream gets them back before anything reads them. A shared store (Redis) answers
    // later: reading waits meanwhile (reading_paused) and on_wakeup carries on.
    if (ctx_->calls) {
        lookup_ = start_parameters_lookup(ctx_->calls->parameters(), info_.custom_parameters,
                                          transport_->cross_thread_wakeup());
        if (lookup_ && !lookup_->ready()) {
            state_ = state::resolving;
            return;
        }
    }
    continue_start();
}

void twilio_stream::continue_start() {
    if (lookup_) {
        const auto resolution = lookup_->apply(info_.custom_parameters);
        lookup_.reset();
        if (resolution == parameters_resolution::unknown_id) {
            fail(close_code::policy,
                 "unknown " + std::string(parameters_id_name) +
                     ": expired, already used, or its store is unreachable",
                 close_reason::bad_app);
            return;
        }
    }
    const std::string app(info_.parameter("app"));
    auto chain = pipeline::make_processor_chain(app, ctx_->processors);
    if (!chain.error.empty()) {
        fail(close_code::policy, chain.error, close_reason::bad_app);
        return;
    }
    try {
        pipeline_ =
            std::make_unique<pipeline::stream_pipeline>(std::move(chain.chain), ctx_->pipeline);
    } catch (const std::exception& e) {
        fail(close_code::policy, e.what(), close_reason::bad_app);
        return;
    }
    if (pipeline_->dsp_mode()) {
        // Called on a DSP worker when output appears (once per burst): hop to our thread, where
        // the transport calls on_wakeup() if the session still lives.
        pipeline_->set_output_ready(transport_->cross_thread_wakeup());
    }
    if (chain.bridge_port && !start_bridge(chain.bridge_port)) {
        return;
    }
    writer_.set_stream_sid(info_.stream_sid);
    ctx_->sessions.set_stream_sid(registry_id_, info_.stream_sid, chain.play_control);
    state_ = state::streaming;
    const std::string_view app_name = app.empty() ? ctx_->processors.default_app : app;
    log(log_level::info, "stream_started",
        {{"call_sid", info_.call_sid},
         {"stream_sid", info_.stream_sid},
         {"app", app_name},
         {"receive_only", info_.receive_only ? "yes" : "no"}});
    if (ctx_->calls) {
        ctx_->calls->on_stream_started(info_.call_sid, info_.stream_sid, app_name,
                                       info_.custom_parameters);
    }
    if (ctx_->monitor) {
        tap_ = ctx_->monitor->open_tap({info_.call_sid, info_.stream_sid,
                                        std::string(info_.parameter("From")),
                                        std::string(info_.parameter("To")), std::string(app_name),
                                        info_.receive_only, chain.bridge_port != nullptr});
    }
    pipeline_->start(info_);
    add_hot_lines();
    flush_pipeline();
}

void twilio_stream::add_hot_lines() {
    auto& lines = transport_->hot_lines();
    lines.drop_per_frame();
    lines.add_range(this, &state_ + 1);
    lines.add(&msg_, sizeof msg_);
    lines.add(&info_.stream_sid, sizeof info_.stream_sid);
    lines.add(info_.stream_sid.data(), info_.stream_sid.size());
    lines.add(&info_.receive_only, sizeof info_.receive_only);
    lines.add_range(&pipeline_, &bridge_link_);
    lines.add(&tap_, sizeof tap_);
    lines.add(pipeline_.get(), sizeof *pipeline_);
    writer_.add_hot_lines(lines);
    pipeline_->add_hot_lines(lines);
    lines.keep();
}

void twilio_stream::add_next_message_lines(pipeline::warm_lines& lines) {
    if (pipeline_ && state_ == state::streaming) {
        pipeline_->add_next_frame_lines(lines);
    }
}

bool twilio_stream::check_streaming() {
    if (state_ != state::streaming) {
        fail(close_code::policy,
             std::string(to_string(msg_.event)) +
                 (state_ == state::awaiting_start ? " before start" : " after stop"),
             close_reason::protocol_order);
        return false;
    }
    if (msg_.stream_sid != info_.stream_sid) {
        fail(close_code::policy, "streamSid does not match this stream's",
             close_reason::protocol_order);
        return false;
    }
    return true;
}

void twilio_stream::on_pipeline_request(const std::function<void(pipeline::stream_pipeline&)>& fn) {
    if (pipeline_ && state_ == state::streaming) {
        fn(*pipeline_);
        flush_pipeline();
    }
}

// The pipeline counts its own drops per stream; /metrics wants the process total. Drops only
// happen while the pipeline makes output, so reading after each drain catches them all.
void twilio_stream::count_pipeline_drops() {
    const auto dropped = pipeline_->frames_dropped();
    if (dropped != pipeline_dropped_) {
        ctx_->stats.frames_dropped_pipeline.fetch_add(dropped - pipeline_dropped_,
                                                      std::memory_order_relaxed);
        pipeline_dropped_ = dropped;
        if (tap_) {
            tap_->set_frames_dropped(dropped);
        }
    }
}

void twilio_stream::flush_pipeline() {
    if (!pipeline_ || transport_ == nullptr || transport_->closing()) {
        return;
    }
    auto& stats = ctx_->stats;
    if (info_.receive_only) {
        // Twilio refuses anything sent on a unidirectional stream (error 31924): whatever the
        // processors produce (echo, play) is drained and dropped.
        pipeline_->drain([](const pipeline::outbound_event&) {});
        count_pipeline_drops();
        return;
    }
    pipeline_->drain([&](const pipeline::outbound_event& ev) {
        std::string text = transport_->take_buffer();
        switch (ev.type) {
        case pipeline::outbound_event::kind::media:
            writer_.media(ev.media(), text);
            if (tap_) {
                tap_->outbound_frame(ev.media());
            }
            stats.frames().frames_out.fetch_add(1, std::memory_order_relaxed);
            transport_->send(std::move(text), message_kind::media);
            return;
        case pipeline::outbound_event::kind::mark:
            writer_.mark(ev.mark_name(), text);
            if (tap_) {
                tap_->event("mark", "sent " + std::string(ev.mark_name()));
            }
            stats.marks_out.fetch_add(1, std::memory_order_relaxed);
            transport_->send(std::move(text), message_kind::control);
            return;
        case pipeline::outbound_event::kind::clear: {
            // Media still queued here would only be discarded by Twilio after the clear.
            const std::size_t cleared = transport_->drop_queued_media();
            stats.frames_dropped_cleared.fetch_add(cleared, std::memory_order_relaxed);
            if (tap_) {
                // Labelled barge-in when the caller was loud as it happened (inferred).
                tap_->event(tap_->caller_loud() ? "barge-in" : "clear",
                            std::to_string(cleared) + " queued frames dropped");
            }
            writer_.clear(text);
            stats.clears_out.fetch_add(1, std::memory_order_relaxed);
            transport_->send(std::move(text), message_kind::control);
            return;
        }
        }
    });
    count_pipeline_drops();
}

bool twilio_stream::start_bridge(const std::shared_ptr<pipeline::bridge_port>& port) {
    std::string error;
    const auto* upstream = ctx_->bridge->choose(info_.parameter("bridge"), error);
    if (upstream == nullptr) {
        fail(close_code::policy, error, close_reason::bad_app);
        return false;
    }
    bridge_ = ctx_->bridge->adopt(info_.call_sid, *upstream);
    if (!bridge_) {
        bridge_ = bridge::call_bridge::create(ctx_->bridge, *upstream, transport_->executor(),
                                              info_.call_sid);
    }
    ctx_->bridge->track(info_.call_sid, bridge_);
    bridge_link_ = std::make_shared<bridge::stream_link>(
        [this] {
            if (pipeline_) {
                pipeline_->push_wake(); // the bridge processor emits what the port holds
                flush_pipeline();
            }
        },
        [this](std::string reason) {
            if (transport_ != nullptr) {
                transport_->close_when_flushed(reason, close_reason::upstream_failed);
            }
        },
        transport_->cross_thread_wakeup());
    bridge::call_metadata call;
    call.account_sid = info_.account_sid;
    call.call_sid = info_.call_sid;
    call.stream_sid = info_.stream_sid;
    call.custom_parameters = info_.custom_parameters;
    call.from = std::string(info_.parameter("From"));
    call.to = std::string(info_.parameter("To"));
    // A fork (receive-only) stream carries what the call hears too: protocols that can take it
    // (audio: a second channel) get it through on_outbound_audio.
    call.tracks = info_.receive_only ? std::vector<std::string>{"inbound", "outbound"}
                                     : std::vector<std::string>{"inbound"};
    // The pipeline starts after this; the bridge's first audio waits in the port until then.
    bridge_->caller_start(std::move(call), port, bridge_link_);
    return true;
}

void twilio_stream::on_closed(close_reason why) {
    if (bridge_) {
        bridge_->caller_stop(); // a no-op after Twilio's stop
        bridge_link_->detach();
    }
    pipeline::pipeline_counters counters{};
    if (pipeline_) {
        if (state_ == state::streaming) {
            pipeline_->stop(); // the peer vanished without stop: let processors close their files
        }
        count_pipeline_drops();
        counters = pipeline_->counters();
    }
    state_ = state::stopped;
    if (tap_) {
        ctx_->monitor->close_tap(tap_);
    }
    ctx_->sessions.remove(registry_id_);
    if (ctx_->calls && !info_.stream_sid.empty()) {
        ctx_->calls->on_stream_stopped(info_.call_sid, info_.stream_sid);
    }
    ctx_->stats.streams_active.fetch_sub(1, std::memory_order_relaxed);
    ctx_->stats.count_close(why);
    log(log_level::info, "stream_closed",
        {{"call_sid", info_.call_sid},
         {"stream_sid", info_.stream_sid},
         {"reason", std::string(to_string(why))},
         {"frames_in", counters.frames_in},
         {"frames_out", counters.frames_out}});
    transport_ = nullptr; // a late DSP wake-up finds nothing more to send
}

} // namespace callstream::server
