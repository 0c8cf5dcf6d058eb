#include "server/bridge/openai_realtime_protocol.hpp"

#include <algorithm>

#include <simdjson.h>

#include "codec/base64.hpp"
#include "codec/g711.hpp"
#include "pipeline/audio_frame.hpp"
#include "server/app/log.hpp"
#include "server/bridge/audio_protocol_messages.hpp"

namespace callstream::server::bridge {
namespace {

// One parser per network thread: it keeps buffers as large as the largest event it saw, and a
// thread parses one event at a time.
simdjson::ondemand::parser& thread_parser() {
    thread_local simdjson::ondemand::parser parser;
    return parser;
}

// A mark roughly every half second of assistant audio keeps the core's heard model exact
// against Twilio's playout (bridge_playout.hpp) without flooding the call with marks.
constexpr std::int64_t mark_every_ms = 500;

std::optional<realtime_format> parse_format_option(std::string_view text) {
    if (text.empty() || text == "pcmu") {
        return realtime_format::pcmu;
    }
    if (text == "pcm24k") {
        return realtime_format::pcm24;
    }
    return std::nullopt;
}

} // namespace

openai_realtime_protocol::openai_realtime_protocol(realtime_session_config defaults, bool greet)
    : config_(std::move(defaults)), greet_(greet) {
    if (config_.format == realtime_format::pcm24) {
        auto spec = pipeline::parse_resampler_spec(pipeline::default_resampler_spec);
        upsampler_ = pipeline::make_resampler(spec.spec, pipeline::telephony_rate_hz, 24000);
    }
}

openai_realtime_protocol::~openai_realtime_protocol() = default;

void openai_realtime_protocol::send_session_update(bridge_actions& bridge) {
    out_.clear();
    append_session_update(out_, config_);
    bridge.send_text(out_);
}

void openai_realtime_protocol::on_open(bridge_actions& bridge) {
    // With pre-warm this comes before the call's start: the configured settings go first, the
    // call's own overrides (if any) follow in on_start. The formats are in both.
    send_session_update(bridge);
}

void openai_realtime_protocol::on_start(const call_metadata& call, bridge_actions& bridge) {
    call_sid_ = call.call_sid;
    started_ = true;
    bool changed = false;
    for (auto [key, target] :
         {std::pair{"model", &config_.model}, std::pair{"voice", &config_.voice},
          std::pair{"instructions", &config_.instructions}}) {
        const auto value = call.parameter(key);
        if (!value.empty() && value != *target) {
            *target = value;
            changed = true;
        }
    }
    if (changed) {
        send_session_update(bridge);
    }
    maybe_greet(bridge);
}

void openai_realtime_protocol::maybe_greet(bridge_actions& bridge) {
    if (greet_ && !greeted_ && started_ && ready_) {
        greeted_ = true;
        out_.clear();
        append_response_create(out_);
        bridge.send_text(out_);
    }
}

void openai_realtime_protocol::on_caller_audio(std::span<const std::uint8_t> ulaw,
                                               std::int64_t /*timestamp_ms*/,
                                               bridge_actions& bridge) {
    out_.clear();
    if (config_.format == realtime_format::pcmu) {
        // Twilio's μ-law goes to the model byte for byte.
        append_input_audio(out_, ulaw);
    } else {
        pcm8_.resize(ulaw.size());
        codec::ulaw_decode(ulaw, pcm8_);
        pcm24_.resize(pcm8_.size() * 3 + 3);
        const std::size_t n = upsampler_->process(pcm8_, pcm24_);
        bytes_.clear();
        append_pcm16le(bytes_, {pcm24_.data(), n});
        append_input_audio(out_, bytes_);
    }
    bridge.send_text(out_);
}

// The Realtime API has no DTMF input over WebSocket (it is SIP-only, BRIDGE.md §1.1.1).
void openai_realtime_protocol::on_dtmf(char /*digit*/, bridge_actions& /*bridge*/) {}

// Our marks only resynchronise the core's heard model; nothing to tell the model.
void openai_realtime_protocol::on_mark_played(std::string_view /*name*/, bool /*cleared*/,
                                              bridge_actions& /*bridge*/) {}

void openai_realtime_protocol::on_stop(bridge_actions& /*bridge*/) {}

void openai_realtime_protocol::on_upstream_binary(std::span<const std::uint8_t> bytes,
                                                  bridge_actions& bridge) {
    bridge.fail("binary_frame", "the Realtime API sends only text events; got " +
                                    std::to_string(bytes.size()) + " binary bytes");
}

void openai_realtime_protocol::on_upstream_text(std::string_view message, bridge_actions& bridge) {
    if (auto ec = parse_server_event(thread_parser(), message,
                                     message.size() + simdjson::SIMDJSON_PADDING, event_)) {
        bridge.fail(ec == realtime_errc::bad_field ? "bad_event" : "invalid_json", ec.message());
        return;
    }
    switch (event_.type) {
    case realtime_event_type::session_updated:
        handle_session(bridge);
        break;
    case realtime_event_type::response_created:
        response_active_ = true;
        response_id_ = event_.response_id;
        cancel_sent_ = false;
        break;
    case realtime_event_type::response_done:
        response_active_ = false;
        break;
    case realtime_event_type::audio_delta:
        handle_delta(bridge);
        break;
    case realtime_event_type::audio_done:
        // The item is complete: a mark behind its end keeps the heard model exact.
        if (event_.item_id == item_id_) {
            place_mark(bridge);
        }
        break;
    case realtime_event_type::speech_started:
        handle_speech_started(bridge);
        break;
    case realtime_event_type::error:
        handle_error(bridge);
        break;
    case realtime_event_type::session_created:
    case realtime_event_type::speech_stopped:
    case realtime_event_type::item_truncated:
    case realtime_event_type::other:
        break;
    }
}

void openai_realtime_protocol::handle_session(bridge_actions& bridge) {
    const auto want = config_.format;
    if (event_.input_format != want || event_.output_format != want) {
        auto name = [](realtime_format f, std::string_view raw) {
            return std::string(f != realtime_format::unknown ? to_string(f)
                               : raw.empty()                 ? std::string_view("none")
                                                             : raw);
        };
        bridge.fail("format_mismatch",
                    "session.updated has input " +
                        name(event_.input_format, event_.input_format_name) + " and output " +
                        name(event_.output_format, event_.output_format_name) + ", asked " +
                        std::string(to_string(want)) + " both ways");
        return;
    }
    ready_ = true;
    maybe_greet(bridge);
}

std::int64_t openai_realtime_protocol::item_sent_ms() const noexcept {
    return item_bytes_ / static_cast<std::int64_t>(bytes_per_ms(config_.format));
}

void openai_realtime_protocol::handle_delta(bridge_actions& bridge) {
    if (!muted_item_id_.empty() && event_.item_id == muted_item_id_) {
        ++stats_.late_deltas_dropped; // the caller interrupted this item: never play the rest
        return;
    }
    bytes_.resize(codec::base64_decoded_max_size(event_.delta.size()));
    std::size_t n = 0;
    if (auto ec = codec::base64_decode(event_.delta, bytes_, n)) {
        bridge.fail("bad_base64", std::string(event_.type_name) + ".delta: " + ec.message());
        return;
    }
    if (n == 0) {
        return;
    }
    if (event_.item_id != item_id_) {
        // A new assistant item starts where the audio queued so far ends.
        item_id_ = event_.item_id;
        item_response_id_ = event_.response_id;
        item_start_ms_ = bridge.queued_end_ms();
        item_bytes_ = 0;
        last_mark_ms_ = 0;
    }
    item_bytes_ += static_cast<std::int64_t>(n);
    play({bytes_.data(), n}, bridge);
}

void openai_realtime_protocol::play(std::span<const std::uint8_t> audio, bridge_actions& bridge) {
    if (config_.format == realtime_format::pcmu) {
        bridge.play_ulaw(audio);
    } else {
        pcm16le_.decode(audio, pcm24_); // a sample split across deltas is rejoined
        bridge.play_pcm16(pcm24_, 24000);
    }
    if (item_sent_ms() - last_mark_ms_ >= mark_every_ms) {
        place_mark(bridge);
    }
}

void openai_realtime_protocol::place_mark(bridge_actions& bridge) {
    bridge.play_mark("oai-" + std::to_string(++marks_));
    last_mark_ms_ = item_sent_ms();
}

void openai_realtime_protocol::handle_speech_started(bridge_actions& bridge) {
    const std::int64_t heard = bridge.heard_ms();
    const std::int64_t sent = item_sent_ms();
    const bool unheard = !item_id_.empty() && heard - item_start_ms_ < sent;
    if (!unheard && !response_active_) {
        return; // the caller spoke over silence: nothing to interrupt
    }
    ++stats_.barge_ins;
    bridge.count_barge_in();
    bridge.clear_playback();
    if (response_active_ && !cancel_sent_) {
        cancel_sent_ = true;
        ++stats_.cancels;
        out_.clear();
        append_response_cancel(out_);
        bridge.send_text(out_);
    }
    // While the response is active the server may hold more of the item than reached us: the
    // truncate tells it where the caller really stopped. A finished item heard to its end needs
    // none.
    const bool generating = response_active_ && item_response_id_ == response_id_;
    if (!item_id_.empty() && (unheard || generating)) {
        const std::int64_t audio_end_ms = std::clamp<std::int64_t>(heard - item_start_ms_, 0, sent);
        out_.clear();
        append_item_truncate(out_, item_id_, static_cast<std::uint64_t>(audio_end_ms));
        bridge.send_text(out_);
        bridge.count_truncation();
        ++stats_.truncations;
        stats_.last_truncate_ms = audio_end_ms;
        log(log_level::info, "bridge_truncate",
            {{"call_sid", call_sid_},
             {"item_id", item_id_},
             {"audio_end_ms", audio_end_ms},
             {"sent_ms", sent}});
        muted_item_id_ = std::move(item_id_);
        item_id_.clear();
        item_bytes_ = 0;
    }
    // What was queued behind the cut is gone, half samples included.
    pcm16le_.reset();
}

void openai_realtime_protocol::handle_error(bridge_actions& bridge) {
    ++stats_.error_events;
    bridge.count_upstream_error(event_.error_type, event_.error_code);
    if (event_.error_code == "response_cancel_not_active") {
        ++stats_.benign_errors; // our cancel crossed the response's end: expected
        return;
    }
    if (event_.error_code == "session_expired") {
        bridge.fail("session_expired", std::string(event_.error_message));
        return;
    }
    log(log_level::warn, "bridge_upstream_error",
        {{"call_sid", call_sid_},
         {"type", event_.error_type},
         {"code", event_.error_code},
         {"message", event_.error_message},
         {"errors", stats_.error_events}});
}

std::unique_ptr<upstream_protocol> make_openai_realtime_protocol(const upstream_config& upstream) {
    realtime_session_config config;
    config.model = upstream.option("model");
    config.voice = upstream.option("voice");
    config.instructions = upstream.option("instructions");
    config.format = parse_format_option(upstream.option("format")).value_or(realtime_format::pcmu);
    return std::make_unique<openai_realtime_protocol>(std::move(config),
                                                      upstream.option("greet") == "true");
}

std::string validate_openai_realtime_options(const upstream_config& upstream) {
    for (const auto& [key, value] : upstream.options) {
        const std::string flag = "--bridge-option " + upstream.name + "=" + key + "=" + value;
        if (key == "format") {
            if (!parse_format_option(value)) {
                return flag + ": format is pcmu or pcm24k";
            }
        } else if (key == "greet") {
            if (value != "true" && value != "false") {
                return flag + ": greet is true or false";
            }
        } else if (key != "model" && key != "voice" && key != "instructions") {
            return flag + ": openai-realtime takes model, voice, instructions, format and greet";
        }
    }
    return {};
}

} // namespace callstream::server::bridge
