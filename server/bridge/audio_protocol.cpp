#include "server/bridge/audio_protocol.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include <simdjson.h>

#include "codec/g711.hpp"
#include "pipeline/audio_frame.hpp"
#include "server/app/log.hpp"

namespace callstream::server::bridge {
namespace {

simdjson::ondemand::parser& thread_parser() {
    thread_local simdjson::ondemand::parser parser;
    return parser;
}

constexpr std::string_view default_format = "l16-16000";

bool parse_ms(std::string_view text, std::int64_t& out) {
    const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc{} && ptr == text.data() + text.size() && out > 0;
}

audio_flow_options flow_from(const upstream_config& upstream) {
    audio_flow_options flow;
    if (parse_ms(upstream.option("xoff_ms"), flow.xoff_ms)) {
        flow.xon_ms = flow.xoff_ms * 4 / 5;
    }
    parse_ms(upstream.option("xon_ms"), flow.xon_ms);
    return flow;
}

} // namespace

audio_protocol::audio_protocol(audio_format format, audio_flow_options flow)
    : format_(format), flow_(flow) {
    if (format_.encoding == audio_encoding::l16 && format_.rate_hz != pipeline::telephony_rate_hz) {
        auto spec = pipeline::parse_resampler_spec(pipeline::default_resampler_spec);
        for (auto* track : {&inbound_, &outbound_}) {
            track->upsampler =
                pipeline::make_resampler(spec.spec, pipeline::telephony_rate_hz, format_.rate_hz);
        }
    }
}

audio_protocol::~audio_protocol() = default;

void audio_protocol::send_control(bridge_actions& bridge) {
    bridge.send_text(out_);
    out_.clear();
}

// The start frame needs the call's metadata, which a pre-warmed connection does not have yet.
void audio_protocol::on_open(bridge_actions& /*bridge*/) {}

void audio_protocol::on_start(const call_metadata& call, bridge_actions& bridge) {
    started_ = true;
    call_sid_ = call.call_sid;
    two_channels_ = std::ranges::find(call.tracks, "outbound") != call.tracks.end();
    out_.clear();
    append_audio_start(out_, call, format_, channels());
    send_control(bridge);
}

void audio_protocol::on_caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                                     bridge_actions& bridge) {
    take_track(ulaw, timestamp_ms, inbound_, bridge);
    // Caller frames arrive every 20 ms: the clock on which a drained queue turns xon.
    update_flow(bridge);
}

void audio_protocol::on_outbound_audio(std::span<const std::uint8_t> ulaw,
                                       std::int64_t timestamp_ms, bridge_actions& bridge) {
    if (two_channels_) {
        take_track(ulaw, timestamp_ms, outbound_, bridge);
    }
}

void audio_protocol::take_track(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                                track_state& track, bridge_actions& bridge) {
    if (two_channels_ && track.partial_len == 0) {
        // Time this track did not cover (a late start, a lost message) is silence on its
        // channel, so both channels stay on one clock.
        ulaw_frame silence;
        silence.fill(0xFF);
        const std::int64_t gap = (timestamp_ms - track.next_ms) / audio_frame_ms;
        for (std::int64_t i = 0; i < std::min<std::int64_t>(gap, max_track_skew_frames); ++i) {
            track.queued.push_back(silence);
        }
        track.next_ms = std::max(track.next_ms, timestamp_ms);
    }
    track.next_ms += static_cast<std::int64_t>(ulaw.size() / 8);
    // Twilio sends 160 bytes; anything else is re-framed so the app always gets 20 ms.
    while (!ulaw.empty()) {
        const std::size_t take = std::min(ulaw.size(), track.partial.size() - track.partial_len);
        std::memcpy(track.partial.data() + track.partial_len, ulaw.data(), take);
        track.partial_len += take;
        ulaw = ulaw.subspan(take);
        if (track.partial_len == track.partial.size()) {
            track.partial_len = 0;
            if (!two_channels_) {
                send_frame(track.partial, bridge);
                continue;
            }
            track.queued.push_back(track.partial);
            send_pairs(bridge);
        }
    }
}

void audio_protocol::send_pairs(bridge_actions& bridge) {
    ulaw_frame silence;
    silence.fill(0xFF);
    auto& in = inbound_.queued;
    auto& out = outbound_.queued;
    while ((!in.empty() && !out.empty()) || in.size() > max_track_skew_frames ||
           out.size() > max_track_skew_frames) {
        const ulaw_frame left = in.empty() ? silence : in.front();
        const ulaw_frame right = out.empty() ? silence : out.front();
        if (!in.empty()) {
            in.pop_front();
        }
        if (!out.empty()) {
            out.pop_front();
        }
        std::vector<std::uint8_t> bytes;
        if (format_.encoding == audio_encoding::pcmu) {
            bytes.resize(left.size() * 2);
            for (std::size_t i = 0; i < left.size(); ++i) {
                bytes[2 * i] = left[i];
                bytes[2 * i + 1] = right[i];
            }
        } else {
            const auto l = to_pcm(left, inbound_);
            const auto r = to_pcm(right, outbound_);
            pcm8_.resize(l.size() * 2);
            for (std::size_t i = 0; i < l.size(); ++i) {
                pcm8_[2 * i] = l[i];
                pcm8_[2 * i + 1] = i < r.size() ? r[i] : 0;
            }
            bytes.reserve(pcm8_.size() * 2);
            append_pcm16le(bytes, pcm8_);
        }
        bridge.send_binary(std::move(bytes));
    }
}

std::span<const std::int16_t> audio_protocol::to_pcm(std::span<const std::uint8_t, 160> ulaw,
                                                     track_state& track) {
    track.pcm.resize(ulaw.size());
    codec::ulaw_decode(ulaw, track.pcm);
    if (!track.upsampler) {
        return track.pcm;
    }
    pcm_.resize(track.pcm.size() * format_.rate_hz / pipeline::telephony_rate_hz);
    const std::size_t n = track.upsampler->process(track.pcm, pcm_);
    track.pcm.assign(pcm_.begin(), pcm_.begin() + static_cast<std::ptrdiff_t>(n));
    return track.pcm;
}

void audio_protocol::send_frame(std::span<const std::uint8_t, 160> ulaw, bridge_actions& bridge) {
    if (format_.encoding == audio_encoding::pcmu) {
        bridge.send_binary({ulaw.begin(), ulaw.end()});
        return;
    }
    const auto pcm = to_pcm(ulaw, inbound_);
    std::vector<std::uint8_t> bytes;
    bytes.reserve(pcm.size() * 2);
    append_pcm16le(bytes, pcm);
    bridge.send_binary(std::move(bytes));
}

void audio_protocol::on_dtmf(char digit, bridge_actions& bridge) {
    append_audio_dtmf(out_, digit);
    send_control(bridge);
}

void audio_protocol::on_mark_played(std::string_view name, bool cleared, bridge_actions& bridge) {
    append_audio_mark(out_, name, cleared);
    send_control(bridge);
    update_flow(bridge);
}

void audio_protocol::on_stop(bridge_actions& bridge) {
    if (started_) {
        append_audio_stop(out_, "the caller's stream stopped");
        send_control(bridge);
    }
}

void audio_protocol::update_flow(bridge_actions& bridge) {
    // Audio a clear dropped stays on the timeline, unheard: it does not count as queued.
    const std::int64_t queued =
        bridge.queued_end_ms() - std::max(bridge.heard_ms(), cleared_end_ms_);
    if (!xoff_ && queued >= flow_.xoff_ms) {
        xoff_ = true;
        append_audio_flow(out_, true, static_cast<std::uint64_t>(queued));
        send_control(bridge);
    } else if (xoff_ && queued <= flow_.xon_ms) {
        xoff_ = false;
        append_audio_flow(out_, false,
                          static_cast<std::uint64_t>(std::max<std::int64_t>(queued, 0)));
        send_control(bridge);
    }
}

void audio_protocol::on_upstream_text(std::string_view message, bridge_actions& bridge) {
    if (auto ec = parse_audio_control(thread_parser(), message,
                                      message.size() + simdjson::SIMDJSON_PADDING, control_)) {
        bridge.fail(ec == audio_protocol_errc::bad_field ? "bad_event" : "invalid_json",
                    ec.message());
        return;
    }
    switch (control_.type) {
    case audio_control_type::mark:
        bridge.play_mark(std::string(control_.name));
        break;
    case audio_control_type::clear:
        bridge.clear_playback();
        cleared_end_ms_ = bridge.queued_end_ms();
        pcm16le_.reset();
        update_flow(bridge);
        break;
    case audio_control_type::hangup:
        bridge.hangup(control_.reason.empty() ? std::string("the app hung up")
                                              : "the app hung up: " + std::string(control_.reason));
        break;
    case audio_control_type::other:
        log(log_level::debug, "bridge_audio_control_ignored",
            {{"call_sid", call_sid_}, {"type", control_.type_name}});
        break;
    }
}

void audio_protocol::on_upstream_binary(std::span<const std::uint8_t> bytes,
                                        bridge_actions& bridge) {
    if (format_.encoding == audio_encoding::pcmu) {
        bridge.play_ulaw(bytes);
    } else {
        pcm16le_.decode(bytes, pcm_);
        bridge.play_pcm16(pcm_, format_.rate_hz);
    }
    update_flow(bridge);
}

std::unique_ptr<upstream_protocol> make_audio_protocol(const upstream_config& upstream) {
    const auto format = parse_audio_format(upstream.option("format", default_format));
    return std::make_unique<audio_protocol>(format.value_or(audio_format{}), flow_from(upstream));
}

std::string validate_audio_options(const upstream_config& upstream) {
    for (const auto& [key, value] : upstream.options) {
        const std::string flag = "--bridge-option " + upstream.name + "=" + key + "=" + value;
        std::int64_t ms = 0;
        if (key == "format") {
            if (!parse_audio_format(value)) {
                return flag + ": format is pcmu, l16-8000, l16-16000 or l16-24000";
            }
        } else if (key == "xoff_ms" || key == "xon_ms") {
            if (!parse_ms(value, ms)) {
                return flag + ": a positive number of milliseconds";
            }
        } else {
            return flag + ": the audio protocol takes format, xoff_ms and xon_ms";
        }
    }
    const auto flow = flow_from(upstream);
    if (flow.xon_ms >= flow.xoff_ms) {
        return "--bridge-option " + upstream.name + "=xon_ms: must be below xoff_ms";
    }
    return {};
}

} // namespace callstream::server::bridge
