#include "server/bridge/call_bridge.hpp"

#include <algorithm>
#include <charconv>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>

#include "codec/g711.hpp"
#include "codec/json_string.hpp"
#include "pipeline/playback/prompt_loader.hpp"
#include "server/app/log.hpp"
#include "server/bridge/bridge_service.hpp"
#include "server/twilio/rest_client.hpp"

namespace callstream::server::bridge {
namespace {

namespace net = boost::asio;
using clock = std::chrono::steady_clock;

pipeline::bridge_playout::options playout_options(const bridge_config& cfg) {
    return {cfg.lead, cfg.max_buffered_audio};
}

std::string mark_name_for(std::uint32_t id) {
    return std::string(mark_prefix) + std::to_string(id);
}

} // namespace

std::string_view to_string(call_bridge::state s) noexcept {
    switch (s) {
    case call_bridge::state::connecting:
        return "connecting";
    case call_bridge::state::open:
        return "open";
    case call_bridge::state::reconnecting:
        return "reconnecting";
    case call_bridge::state::failed:
        return "failed";
    case call_bridge::state::ended:
        return "ended";
    }
    return "unknown";
}

std::shared_ptr<call_bridge> call_bridge::create(std::shared_ptr<bridge_service> service,
                                                 const upstream_config& upstream,
                                                 net::any_io_executor executor,
                                                 std::string call_sid) {
    auto b = std::make_shared<call_bridge>(std::move(service), upstream, std::move(executor),
                                           std::move(call_sid));
    b->connect();
    return b;
}

call_bridge::call_bridge(std::shared_ptr<bridge_service> service, const upstream_config& upstream,
                         net::any_io_executor executor, std::string call_sid)
    : service_(std::move(service)), upstream_(upstream), executor_(std::move(executor)),
      thread_(std::this_thread::get_id()), call_sid_(std::move(call_sid)), created_(clock::now()),
      playout_(playout_options(service_->config())), pace_timer_(executor_),
      retry_timer_(executor_) {
    service_->stats().active.fetch_add(1, std::memory_order_relaxed);
}

call_bridge::~call_bridge() {
    service_->stats().active.fetch_sub(1, std::memory_order_relaxed);
    if (socket_) {
        socket_->close();
    }
}

void call_bridge::set_state(state s) {
    const std::lock_guard lock(describe_mutex_);
    state_ = s;
}

void call_bridge::connect() {
    protocol_ = make_upstream_protocol(upstream_);
    opened_ = false;
    started_ = false;
    set_state(attempts_ == 0 ? state::connecting : state::reconnecting);
    if (!protocol_) {
        // Startup refuses such upstreams; this only guards a build without the protocol.
        net::post(executor_, [weak = weak_from_this()] {
            if (auto self = weak.lock()) {
                self->apply_policy("bad_protocol", "protocol not available");
            }
        });
        return;
    }
    const auto& cfg = service_->config();
    upstream_target target;
    target.url = upstream_.url;
    target.headers = upstream_.headers;
    target.subprotocol = std::string(protocol_->websocket_subprotocol());
    target.connect_timeout = cfg.connect_timeout;
    target.max_message_bytes = cfg.max_message_bytes;
    target.max_outbox_bytes = cfg.max_outbox_bytes;
    connect_started_ = clock::now();
    socket_ =
        upstream_socket::create(executor_, std::move(target), service_->tls(), weak_from_this());
}

// The members, protocol and port an upstream message reaches (not the media session's: it may
// run on another thread). The port's next slot moves: on_upstream_message adds it again.
void call_bridge::add_hot_lines() {
    if (!socket_) {
        return;
    }
    auto& lines = socket_->receiver_lines();
    lines.clear();
    lines.add_range(this, &call_);
    lines.add_range(&port_, &pace_timer_);
    lines.add(&pace_due_, sizeof pace_due_);
    lines.add(&pending_audio_, sizeof pending_audio_);
    lines.add(&released_any_, sizeof released_any_);
    lines.add(&frames_to_upstream_, sizeof frames_to_upstream_ + sizeof frames_from_upstream_);
    if (protocol_ && started_) {
        protocol_->add_hot_lines(lines);
    }
    if (port_) {
        port_->add_hot_lines(lines);
    }
    lines.keep();
    if (port_) {
        port_->add_next_push_lines(lines);
    }
}

// ---- from the media session -----------------------------------------------------------------

void call_bridge::caller_start(call_metadata call, std::shared_ptr<pipeline::bridge_port> port,
                               std::weak_ptr<call_link> link) {
    if (!on_own_thread()) {
        net::post(executor_, [self = shared_from_this(), call = std::move(call),
                              port = std::move(port), link = std::move(link)]() mutable {
            self->caller_start(std::move(call), std::move(port), std::move(link));
        });
        return;
    }
    call_ = std::move(call);
    port_ = std::move(port);
    link_ = std::move(link);
    attached_ = true;
    if (ending_) {
        return;
    }
    if (failing_) {
        return; // a failure is being handled (pre-warmed bridges that failed are never adopted)
    }
    if (opened_) {
        start_protocol();
    }
    pump(); // audio the upstream sent before the stream started (a greeting) may go out now
}

void call_bridge::caller_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
    track_audio(ulaw, timestamp_ms, false);
}

void call_bridge::outbound_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms) {
    track_audio(ulaw, timestamp_ms, true);
}

void call_bridge::track_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                              bool outbound) {
    if (!on_own_thread()) {
        net::post(executor_,
                  [self = shared_from_this(),
                   copy = std::vector<std::uint8_t>(ulaw.begin(), ulaw.end()), timestamp_ms,
                   outbound] { self->track_audio(copy, timestamp_ms, outbound); });
        return;
    }
    if (stopped_ || ending_) {
        return;
    }
    if (started_ && !failing_ && pending_audio_.empty() && protocol_->ready()) {
        deliver_audio(ulaw, timestamp_ms, outbound);
        after_protocol();
        return;
    }
    // Not ready (connecting, session not configured, reconnecting): keep it, bounded.
    if (pending_audio_.size() >= service_->config().max_pending_caller_frames) {
        pending_audio_.pop_front();
        service_->stats().caller_frames_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    pending_audio_.push_back(
        {std::vector<std::uint8_t>(ulaw.begin(), ulaw.end()), timestamp_ms, outbound});
}

void call_bridge::deliver_audio(std::span<const std::uint8_t> ulaw, std::int64_t timestamp_ms,
                                bool outbound) {
    if (outbound) {
        protocol_->on_outbound_audio(ulaw, timestamp_ms, *this);
        return;
    }
    ++frames_to_upstream_;
    service_->stats().frames().frames_to_upstream.fetch_add(1, std::memory_order_relaxed);
    protocol_->on_caller_audio(ulaw, timestamp_ms, *this);
}

void call_bridge::caller_dtmf(char digit) {
    if (!on_own_thread()) {
        net::post(executor_, [self = shared_from_this(), digit] { self->caller_dtmf(digit); });
        return;
    }
    if (started_ && !failing_ && !stopped_) {
        protocol_->on_dtmf(digit, *this);
        after_protocol();
    }
}

void call_bridge::caller_mark_echo(std::string_view name) {
    if (!on_own_thread()) {
        net::post(executor_, [self = shared_from_this(), copy = std::string(name)] {
            self->caller_mark_echo(copy);
        });
        return;
    }
    std::uint32_t id = 0;
    const auto digits = name.substr(mark_prefix.size());
    if (std::from_chars(digits.data(), digits.data() + digits.size(), id).ec != std::errc{}) {
        return;
    }
    if (auto it = std::find(ignore_echoes_.begin(), ignore_echoes_.end(), id);
        it != ignore_echoes_.end()) {
        ignore_echoes_.erase(it); // Twilio echoes cleared marks; the clear reported them already
        return;
    }
    auto it = std::find_if(marks_.begin(), marks_.end(),
                           [id](const pending_mark& m) { return m.id == id; });
    if (it == marks_.end()) {
        return;
    }
    playout_.mark_played(id, clock::now());
    const pending_mark mark = std::move(*it);
    marks_.erase(it);
    if (mark.internal) {
        end_call("fallback prompt played");
        return;
    }
    if (started_ && !failing_) {
        protocol_->on_mark_played(mark.name, false, *this);
        after_protocol();
    }
}

void call_bridge::caller_stop() {
    if (!on_own_thread()) {
        net::post(executor_, [self = shared_from_this()] { self->caller_stop(); });
        return;
    }
    if (stopped_) {
        return;
    }
    stopped_ = true;
    if (started_ && !failing_ && socket_ && socket_->open()) {
        protocol_->on_stop(*this);
    }
    pace_timer_.cancel();
    retry_timer_.cancel();
    if (socket_) {
        socket_->close(); // after what on_stop queued
    }
    set_state(state::ended);
    service_->untrack(call_sid_, this);
}

void call_bridge::abandon() {
    if (!on_own_thread()) {
        net::post(executor_, [self = shared_from_this()] { self->abandon(); });
        return;
    }
    stopped_ = true;
    retry_timer_.cancel();
    if (socket_) {
        socket_->close();
    }
    set_state(state::ended);
}

bool call_bridge::failed_before_start() const {
    const std::lock_guard lock(describe_mutex_);
    return state_ == state::failed;
}

std::string call_bridge::describe_json() const {
    const std::lock_guard lock(describe_mutex_);
    std::string out = "{\"upstream\":";
    codec::append_json_string(out, upstream_.name);
    out += ",\"protocol\":";
    codec::append_json_string(out, upstream_.protocol);
    out += ",\"state\":";
    codec::append_json_string(out, to_string(state_));
    if (!last_error_.empty()) {
        out += ",\"last_failure\":";
        codec::append_json_string(out, last_error_);
    }
    out += "}";
    return out;
}

// ---- protocol driving ------------------------------------------------------------------------

void call_bridge::start_protocol() {
    if (started_ || !opened_ || !attached_ || failing_) {
        return;
    }
    started_ = true;
    protocol_->on_start(call_, *this);
    add_hot_lines();
    after_protocol();
}

void call_bridge::after_protocol() {
    if (failing_ || !started_) {
        return;
    }
    if (!pending_audio_.empty() && protocol_->ready()) {
        flush_pending_audio();
    }
}

void call_bridge::flush_pending_audio() {
    // In order, and only while the protocol stays ready (it may turn not-ready again).
    while (!pending_audio_.empty() && !failing_ && protocol_->ready()) {
        auto frame = std::move(pending_audio_.front());
        pending_audio_.pop_front();
        deliver_audio(frame.ulaw, frame.timestamp_ms, frame.outbound);
    }
}

// ---- upstream socket events -------------------------------------------------------------------

void call_bridge::on_upstream_open() {
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - connect_started_);
    auto& stats = service_->stats();
    stats.connects.fetch_add(1, std::memory_order_relaxed);
    if (attempts_ > 0) {
        stats.reconnects.fetch_add(1, std::memory_order_relaxed);
    }
    stats.observe_connect_ms(static_cast<std::uint64_t>(ms.count()));
    set_state(state::open);
    log(log_level::info, "bridge_connected",
        {{"call_sid", call_sid_},
         {"upstream", upstream_.name},
         {"protocol", upstream_.protocol},
         {"connect_ms", static_cast<long>(ms.count())}});
    opened_ = true;
    protocol_->on_open(*this);
    if (failing_) {
        return;
    }
    start_protocol();
}

void call_bridge::on_upstream_message(bool text, std::string_view data) {
    if (failing_ || ending_) {
        return;
    }
    auto& counters = service_->stats().frames();
    counters.messages_from_upstream.fetch_add(1, std::memory_order_relaxed);
    counters.bytes_from_upstream.fetch_add(data.size(), std::memory_order_relaxed);
    if (text) {
        protocol_->on_upstream_text(data, *this);
    } else {
        protocol_->on_upstream_binary(
            {reinterpret_cast<const std::uint8_t*>(data.data()), data.size()}, *this);
    }
    after_protocol();
    if (port_ && socket_) {
        auto& lines = socket_->receiver_lines();
        lines.drop_per_frame();
        port_->add_next_push_lines(lines);
    }
}

void call_bridge::on_upstream_closed(std::string_view label, std::string detail) {
    if (stopped_ || ending_) {
        return;
    }
    fail(label, std::move(detail));
}

// ---- bridge_actions ---------------------------------------------------------------------------

void call_bridge::send_text(std::string message) {
    if (failing_ || !socket_) {
        return;
    }
    service_->stats().frames().bytes_to_upstream.fetch_add(message.size(),
                                                           std::memory_order_relaxed);
    socket_->send(std::move(message), true);
}

std::string call_bridge::take_buffer() {
    return socket_ ? socket_->take_buffer() : std::string{};
}

void call_bridge::send_binary(std::vector<std::uint8_t> bytes) {
    if (failing_ || !socket_) {
        return;
    }
    service_->stats().frames().bytes_to_upstream.fetch_add(bytes.size(), std::memory_order_relaxed);
    socket_->send(std::string(bytes.begin(), bytes.end()), false);
}

void call_bridge::play_ulaw(std::span<const std::uint8_t> ulaw) {
    if (failing_ || ending_) {
        return;
    }
    if (!playout_.push_ulaw(ulaw)) {
        fail("too_fast", "upstream audio more than " +
                             std::to_string(service_->config().max_buffered_audio.count()) +
                             " ms ahead of real time");
        return;
    }
    pump();
}

void call_bridge::play_pcm16(std::span<const std::int16_t> pcm, std::uint32_t rate_hz) {
    if (failing_ || ending_) {
        return;
    }
    std::span<const std::int16_t> at_8k = pcm;
    if (rate_hz != pipeline::telephony_rate_hz) {
        auto& conv = down_[rate_hz];
        if (!conv) {
            try {
                pipeline::resampler_spec spec; // the pipeline's default converter
                conv = pipeline::make_resampler(spec, rate_hz, pipeline::telephony_rate_hz);
            } catch (const std::exception& e) {
                fail("bad_audio", std::string("play_pcm16: ") + e.what());
                return;
            }
        }
        pcm_scratch_.resize(pcm.size() * pipeline::telephony_rate_hz / rate_hz + 2);
        const auto n = conv->process(pcm, pcm_scratch_);
        at_8k = std::span<const std::int16_t>(pcm_scratch_.data(), n);
    }
    ulaw_scratch_.resize(at_8k.size());
    codec::ulaw_encode(at_8k, ulaw_scratch_);
    play_ulaw(ulaw_scratch_);
}

void call_bridge::play_mark(std::string name) {
    if (failing_ || ending_) {
        return;
    }
    marks_.push_back({playout_.push_mark(), std::move(name), false});
    pump();
}

void call_bridge::clear_playback() {
    if (ending_) {
        return;
    }
    const auto now = clock::now();
    const auto unreleased = playout_.clear(now);
    service_->stats().clears.fetch_add(1, std::memory_order_relaxed);
    // Twilio will echo the released ones after our clear: those echoes are swallowed.
    std::vector<pending_mark> cleared = std::move(marks_);
    marks_.clear();
    for (const auto& m : cleared) {
        if (std::find(unreleased.begin(), unreleased.end(), m.id) == unreleased.end()) {
            ignore_echoes_.push_back(m.id);
        }
    }
    if (port_ && attached_) {
        if (!port_->push_clear()) {
            service_->stats().port_dropped.fetch_add(1, std::memory_order_relaxed);
        }
        notify_link();
    }
    pace_timer_.cancel();
    pace_due_ = clock::time_point::max();
    // Twilio echoes every pending mark after a clear (TWILIO.md §2.4): report them now.
    for (const auto& m : cleared) {
        if (!m.internal && started_ && !failing_) {
            protocol_->on_mark_played(m.name, true, *this);
        }
    }
}

std::int64_t call_bridge::heard_ms() const {
    return pipeline::bridge_playout::bytes_to_ms(playout_.heard_bytes(clock::now()));
}
std::int64_t call_bridge::sent_ms() const {
    return pipeline::bridge_playout::bytes_to_ms(playout_.sent_bytes());
}
std::int64_t call_bridge::queued_end_ms() const {
    return pipeline::bridge_playout::bytes_to_ms(playout_.accepted_bytes());
}
void call_bridge::count_barge_in() {
    service_->stats().barge_ins.fetch_add(1, std::memory_order_relaxed);
}
void call_bridge::count_truncation() {
    service_->stats().truncations.fetch_add(1, std::memory_order_relaxed);
}

void call_bridge::count_upstream_error(std::string_view type, std::string_view code) {
    service_->stats().count_upstream_error(type, code);
}

void call_bridge::hangup(std::string reason) {
    end_call(std::move(reason));
}

void call_bridge::fail(std::string_view label, std::string detail) {
    if (failing_ || ending_ || stopped_) {
        return;
    }
    failing_ = true; // protocol actions from now on are ignored
    // The protocol may be on the stack (fail() from inside on_upstream_text): handle the
    // failure once it has returned.
    net::post(executor_, [self = shared_from_this(), label = std::string(label),
                          detail = std::move(detail)]() mutable {
        self->apply_policy(std::move(label), std::move(detail));
    });
}

// ---- pacing -----------------------------------------------------------------------------------

void call_bridge::on_frame(std::span<const std::uint8_t, pipeline::telephony_frame_samples> ulaw) {
    ++frames_from_upstream_;
    service_->stats().frames().frames_from_upstream.fetch_add(1, std::memory_order_relaxed);
    if (!port_->push_media(ulaw)) {
        service_->stats().port_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    released_any_ = true;
}

void call_bridge::on_mark(std::uint32_t id) {
    if (!port_->push_mark(mark_name_for(id))) {
        service_->stats().port_dropped.fetch_add(1, std::memory_order_relaxed);
    }
    released_any_ = true;
}

// Releases what is due into the port, wakes the pipeline, and arms the timer for the next.
void call_bridge::pump() {
    if (!attached_ || !port_ || stopped_) {
        return; // pre-warmed: audio waits in the pacer until the stream starts
    }
    released_any_ = false;
    const auto due = playout_.release(clock::now(), *this);
    if (released_any_) {
        notify_link();
    }
    if (due == clock::time_point::max() || due >= pace_due_) {
        return;
    }
    pace_due_ = due;
    pace_timer_.expires_at(due);
    pace_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        if (ec) {
            return;
        }
        if (auto self = weak.lock()) {
            self->pace_due_ = clock::time_point::max();
            self->pump();
        }
    });
}

void call_bridge::notify_link() {
    if (auto link = link_.lock()) {
        link->bridge_output_ready();
    }
}

// ---- failure policy ---------------------------------------------------------------------------

void call_bridge::apply_policy(std::string label, std::string detail) {
    if (ending_ || stopped_) {
        return;
    }
    failing_ = true;
    service_->stats().count_failure(label);
    {
        const std::lock_guard lock(describe_mutex_);
        last_error_ = label;
    }
    log(log_level::warn, "bridge_failed",
        {{"call_sid", call_sid_},
         {"upstream", upstream_.name},
         {"reason", label},
         {"detail", detail},
         {"attempt", static_cast<long>(attempts_)}});
    if (socket_) {
        socket_->close();
        socket_.reset();
    }
    if (!attached_) {
        set_state(state::failed); // pre-warmed: the stream's start decides (adopt refuses it)
        return;
    }
    // The caller stops hearing the failed upstream.
    clear_playback();
    const auto& policy = upstream_.on_failure;
    if (policy.action == failure_policy::kind::reconnect && attempts_ < policy.max_attempts) {
        const auto wait =
            std::min(policy.backoff_max, policy.backoff_first * (1U << std::min(attempts_, 16U)));
        ++attempts_;
        set_state(state::reconnecting);
        retry_timer_.expires_after(wait);
        retry_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
            auto self = weak.lock();
            if (ec || !self || self->stopped_ || self->ending_) {
                return;
            }
            self->failing_ = false;
            self->connect();
        });
        return;
    }
    set_state(state::failed);
    if (policy.action == failure_policy::kind::prompt) {
        play_fallback_prompt();
        return;
    }
    end_call("upstream failed: " + label);
}

void call_bridge::play_fallback_prompt() {
    pipeline::prompt p;
    const auto error =
        pipeline::load_prompt(upstream_.on_failure.prompt_file, service_->prompts_dir(), p);
    if (!error.empty()) {
        log(log_level::warn, "bridge_prompt_failed", {{"call_sid", call_sid_}, {"error", error}});
        end_call("upstream failed and the fallback prompt did not load");
        return;
    }
    std::vector<std::uint8_t> ulaw(p.pcm.size());
    codec::ulaw_encode(p.pcm, ulaw);
    // failing_ blocks the protocol's actions, not ours: feed the pacer directly.
    if (!playout_.push_ulaw(ulaw)) {
        end_call("fallback prompt longer than the playout buffer");
        return;
    }
    marks_.push_back({playout_.push_mark(), {}, true}); // its echo ends the call
    pump();
}

void call_bridge::end_call(std::string reason) {
    if (ending_) {
        return;
    }
    ending_ = true;
    set_state(state::ended);
    log(log_level::info, "bridge_hangup",
        {{"call_sid", call_sid_}, {"upstream", upstream_.name}, {"reason", reason}});
    if (socket_) {
        socket_->close();
    }
    if (service_->rest && call_sid_.size() == 34 && call_sid_.starts_with("CA")) {
        net::co_spawn(
            executor_,
            [rest = service_->rest, sid = call_sid_]() -> net::awaitable<void> {
                const auto result = co_await rest->hangup(sid);
                if (result.outcome != twilio_outcome::ok) {
                    log(log_level::warn, "bridge_rest_hangup_failed",
                        {{"call_sid", sid}, {"detail", result.detail}});
                }
            },
            net::detached);
    }
    // Also close the stream: without credentials that is the hangup (Twilio moves on to the
    // TwiML after <Connect>), with them it stops feeding an upstream that is gone.
    if (auto link = link_.lock()) {
        link->bridge_end_stream(std::move(reason));
    }
}

} // namespace callstream::server::bridge
