#include "server/cluster/cluster_node.hpp"

#include <future>
#include <stdexcept>
#include <unistd.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>

#include "codec/json_string.hpp"
#include "server/app/log.hpp"
#include "server/calls/call_registry.hpp"
#include "server/cluster/registry_keys.hpp"
#include "server/http/router.hpp"
#include "server/media/media_session_handle.hpp"

#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {
namespace {

std::string host_name() {
    char buf[256] = {};
    if (gethostname(buf, sizeof buf - 1) != 0 || buf[0] == '\0') {
        return "callstream";
    }
    std::string name(buf);
    return name.substr(0, name.find('.'));
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::string iso_now() {
    const auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buf;
}

std::vector<std::string> eval(std::string_view script, std::vector<std::string> keys,
                              std::vector<std::string> args) {
    std::vector<std::string> cmd{"EVAL", std::string(script), std::to_string(keys.size())};
    cmd.insert(cmd.end(), std::make_move_iterator(keys.begin()),
               std::make_move_iterator(keys.end()));
    cmd.insert(cmd.end(), std::make_move_iterator(args.begin()),
               std::make_move_iterator(args.end()));
    return cmd;
}

} // namespace

std::string instance_id_problem(std::string_view id) {
    if (id.empty() || id.size() > 64) {
        return "--instance-id must be 1 to 64 characters";
    }
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) {
            return "--instance-id may hold only letters, digits, '.', '_' and '-', got '" +
                   std::string(id) + "'";
        }
    }
    return {};
}

cluster_node::cluster_node(server_context& ctx, std::uint16_t http_port)
    : ctx_(ctx), ttl_(ctx.cfg.cluster_ttl), heartbeat_timer_(ioc_), drain_timer_(ioc_) {
    const auto& cfg = ctx.cfg;
    auto url = parse_redis_url(cfg.redis_url, cfg.redis_password);
    if (!url.endpoint) {
        throw std::runtime_error(url.error);
    }
    id_ = cfg.instance_id.empty() ? host_name() + "-" + std::to_string(http_port) : cfg.instance_id;
    if (auto problem = instance_id_problem(id_); !problem.empty()) {
        throw std::runtime_error(problem);
    }
    advertise_url_ = cfg.advertise_url.empty()
                         ? "http://" + host_name() + ":" + std::to_string(http_port)
                         : cfg.advertise_url;
    started_ = iso_now();

    redis_client_options opts;
    opts.endpoint = *url.endpoint;
    opts.name = "callstream-" + id_;
    commands_ = std::make_shared<redis_client>(ioc_.get_executor(), opts);
    opts.subscribe = {cluster_keys::bus(id_)};
    opts.name = "callstream-" + id_ + "-bus";
    subscriber_ = std::make_shared<redis_client>(ioc_.get_executor(), opts);

    if (cfg.agent_port != 0) {
        agent_ =
            std::make_unique<agent_check>(ioc_.get_executor(), cfg.host, cfg.agent_port, [this] {
                return agent_reply_line(draining(), ctx_.sessions.size(), ctx_.cfg.max_streams);
            });
    }
}

cluster_node::~cluster_node() {
    if (thread_.joinable()) {
        stop();
    }
}

void cluster_node::start() {
    // Handlers capture `this`: the node outlives its thread (stop() joins it).
    commands_->on_ready = [this] {
        reregister_all();
        heartbeat();
    };
    subscriber_->on_message = [this](std::string, std::string payload) {
        on_bus_message(std::move(payload));
    };
    commands_->start();
    subscriber_->start();
    if (agent_) {
        agent_->start();
    }
    schedule_heartbeat();
    work_.emplace(net::make_work_guard(ioc_));
    thread_ = std::thread([this] { ioc_.run(); });
    log(log_level::info, "cluster_joining",
        {{"instance", id_},
         {"redis", commands_->endpoint().describe()},
         {"advertise_url", advertise_url_},
         {"agent_port", agent_port()},
         {"ttl_s", ttl_.count()}});
}

void cluster_node::stop() {
    if (!thread_.joinable()) {
        return;
    }
    // Goodbye: remove our instance and whatever streams are still listed, so peers need not
    // wait for the TTL. Best effort, a second at most.
    auto said = std::make_shared<std::promise<void>>();
    auto done = said->get_future();
    commands_->command(eval(cluster_keys::goodbye_script,
                            {cluster_keys::instance(id_), cluster_keys::instances,
                             cluster_keys::calls(id_), cluster_keys::streams(id_)},
                            {id_}),
                       [said](redis_reply) { said->set_value(); });
    done.wait_for(std::chrono::seconds(1));
    net::post(ioc_, [this] {
        heartbeat_timer_.cancel();
        drain_timer_.cancel();
        for (auto& [id, f] : forwards_) {
            f.timer->cancel();
        }
    });
    if (agent_) {
        agent_->stop();
    }
    commands_->stop();
    subscriber_->stop();
    work_.reset();
    // The clients end their loops on their own; give them a moment, then stop regardless.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ioc_.stop();
    thread_.join();
    log(log_level::info, "cluster_left", {{"instance", id_}});
}

std::string cluster_node::redis_unavailable() const {
    return "Redis at " + commands_->endpoint().describe() +
           " unavailable: " + commands_->last_error();
}

std::shared_ptr<media_session_handle> cluster_node::local_call(std::string_view call_sid) const {
    const std::lock_guard lock(mutex_);
    for (const auto& [stream_sid, s] : streams_) {
        if (s.call_sid == call_sid) {
            if (auto session = s.session.lock()) {
                return session;
            }
        }
    }
    return nullptr;
}

bool cluster_node::holds_stream(std::string_view stream_sid) const {
    const std::lock_guard lock(mutex_);
    return streams_.find(std::string(stream_sid)) != streams_.end();
}

std::vector<std::string> cluster_node::registry_keys(std::string_view call_sid,
                                                     std::string_view stream_sid) const {
    return {cluster_keys::owner(call_sid), cluster_keys::stream(stream_sid),
            cluster_keys::calls(id_), cluster_keys::streams(id_)};
}

std::string cluster_node::call_json(std::string_view call_sid) const {
    std::string json;
    if (ctx_.calls) {
        if (const auto call = ctx_.calls->find(call_sid)) {
            json = call_record_json(*call);
        }
    }
    if (json.empty()) {
        json = "{\"sid\":";
        codec::append_json_string(json, call_sid);
        json += "}";
    }
    return with_instance(json, id_);
}

std::string with_instance(std::string_view json_object, std::string_view instance) {
    std::string tagged = "{\"instance\":";
    codec::append_json_string(tagged, instance);
    if (json_object.size() < 2 || json_object.front() != '{') {
        return tagged + "}";
    }
    tagged += json_object.size() > 2 ? "," : "";
    tagged.append(json_object.substr(1));
    return tagged;
}

void cluster_node::stream_started(std::string_view call_sid, std::string_view stream_sid) {
    // The session named its stream in the session registry just before telling the calls.
    std::weak_ptr<media_session_handle> session = ctx_.sessions.find(stream_sid);
    {
        const std::lock_guard lock(mutex_);
        streams_[std::string(stream_sid)] = {std::string(call_sid), std::move(session), false};
    }
    net::post(ioc_, [self = shared_from_this(), sid = std::string(stream_sid)]() mutable {
        self->claim(std::move(sid));
    });
}

void cluster_node::stream_stopped(std::string_view call_sid, std::string_view stream_sid) {
    {
        const std::lock_guard lock(mutex_);
        streams_.erase(std::string(stream_sid));
    }
    net::post(ioc_, [self = shared_from_this(), call = std::string(call_sid),
                     sid = std::string(stream_sid)]() mutable {
        self->release(std::move(call), std::move(sid));
    });
}

// Cluster thread. Registers a stream held here, unless another instance owns its call: then
// this socket is the duplicate and is closed with a reason that names the owner.
void cluster_node::claim(std::string stream_sid) {
    std::string call_sid;
    {
        const std::lock_guard lock(mutex_);
        const auto it = streams_.find(stream_sid);
        if (it == streams_.end()) {
            return; // stopped already
        }
        call_sid = it->second.call_sid;
    }
    auto keys = registry_keys(call_sid, stream_sid);
    commands_->command(
        eval(cluster_keys::claim_script, std::move(keys),
             {id_, call_sid, stream_sid, call_json(call_sid), std::to_string(ttl_.count())}),
        [this, stream_sid, call_sid](redis_reply r) {
            if (!r.ok) {
                // Redis is down or slow: the stream carries on; on_ready registers it later.
                log(log_level::warn, "cluster_register_deferred",
                    {{"stream_sid", stream_sid}, {"error", r.error}});
                return;
            }
            std::shared_ptr<media_session_handle> session;
            {
                const std::lock_guard lock(mutex_);
                const auto it = streams_.find(stream_sid);
                if (it == streams_.end()) {
                    return;
                }
                if (r.value.type == codec::resp_type::integer) {
                    it->second.registered = true;
                    return;
                }
                session = it->second.session.lock();
                streams_.erase(it);
            }
            const std::string owner = r.value.text;
            log(log_level::warn, "stream_refused_duplicate",
                {{"call_sid", call_sid}, {"stream_sid", stream_sid}, {"owner", owner}});
            if (session) {
                session->post_close(1008, "call " + call_sid + " is live on instance " + owner);
            }
        });
}

void cluster_node::release(std::string call_sid, std::string stream_sid) {
    commands_->command(eval(cluster_keys::release_script, registry_keys(call_sid, stream_sid),
                            {id_, call_sid, stream_sid}),
                       [stream_sid](redis_reply r) {
                           if (!r.ok) {
                               log(log_level::debug, "cluster_release_failed",
                                   {{"stream_sid", stream_sid}, {"error", r.error}});
                           }
                       });
}

void cluster_node::reregister_all() {
    std::vector<std::string> held;
    {
        const std::lock_guard lock(mutex_);
        for (const auto& [sid, s] : streams_) {
            held.push_back(sid);
        }
    }
    if (!held.empty()) {
        log(log_level::info, "cluster_reregistering", {{"streams", held.size()}});
    }
    for (auto& sid : held) {
        claim(std::move(sid));
    }
}

void cluster_node::schedule_heartbeat() {
    heartbeat_timer_.expires_after(std::chrono::duration_cast<std::chrono::milliseconds>(ttl_) / 5);
    heartbeat_timer_.async_wait([this](boost::system::error_code ec) {
        if (ec) {
            return;
        }
        heartbeat();
        schedule_heartbeat();
    });
}

void cluster_node::heartbeat() {
    if (!commands_->ready()) {
        return;
    }
    std::size_t held = 0;
    {
        const std::lock_guard lock(mutex_);
        held = streams_.size();
    }
    commands_->command(
        eval(cluster_keys::heartbeat_script,
             {cluster_keys::instance(id_), cluster_keys::instances, cluster_keys::calls(id_),
              cluster_keys::streams(id_)},
             {id_, std::to_string(ttl_.count()), std::to_string(now_ms()), advertise_url_,
              draining() ? "draining" : "serving", std::to_string(ctx_.sessions.size()),
              std::to_string(ctx_.cfg.max_streams), started_}),
        [this, held](redis_reply r) {
            if (!r.ok || r.value.type != codec::resp_type::integer) {
                return;
            }
            // Redis holding fewer of our streams than we do twice in a row (not a start or
            // stop in flight) means it lost them, say a restart without persistence.
            if (static_cast<std::size_t>(r.value.integer) != held) {
                if (++heartbeat_mismatches_ >= 2) {
                    heartbeat_mismatches_ = 0;
                    reregister_all();
                }
            } else {
                heartbeat_mismatches_ = 0;
            }
        });
}

void cluster_node::forward(std::string inst, bus_request req,
                           std::function<void(forward_result)> done) {
    net::post(ioc_, [this, inst = std::move(inst), req = std::move(req),
                     done = std::move(done)]() mutable {
        const auto id = ++next_forward_id_;
        req.id = id;
        req.from = id_;
        auto timer = std::make_unique<net::steady_timer>(ioc_, forward_timeout);
        timer->async_wait([this, id, inst](boost::system::error_code ec) {
            if (!ec) {
                finish_forward(id, {forward_result::outcome::timeout,
                                    {},
                                    "instance " + inst + " did not answer within " +
                                        std::to_string(forward_timeout.count()) + " ms"});
            }
        });
        forwards_.emplace(id, pending_forward{std::move(done), std::move(timer)});
        commands_->command(
            {"PUBLISH", cluster_keys::bus(inst), encode_bus_request(req)},
            [this, id, inst](redis_reply r) {
                if (!r.ok) {
                    finish_forward(id, {forward_result::outcome::redis_down, {}, r.error});
                } else if (r.value.integer == 0) {
                    finish_forward(id, {forward_result::outcome::gone,
                                        {},
                                        "instance " + inst + " is not listening"});
                }
            });
    });
}

void cluster_node::finish_forward(std::uint64_t id, forward_result result) {
    const auto it = forwards_.find(id);
    if (it == forwards_.end()) {
        return; // answered, timed out or gone already
    }
    auto pending = std::move(it->second);
    forwards_.erase(it);
    pending.timer->cancel();
    pending.done(std::move(result));
}

void cluster_node::on_bus_message(std::string payload) {
    if (payload.rfind("res\n", 0) == 0) {
        if (auto res = decode_bus_response(payload)) {
            finish_forward(res->id, {forward_result::outcome::answered, std::move(*res), {}});
        }
        return;
    }
    auto req = decode_bus_request(payload);
    if (!req) {
        log(log_level::warn, "cluster_bad_bus_message", {{"bytes", payload.size()}});
        return;
    }
    net::co_spawn(ioc_, serve_forwarded(std::move(*req)), net::detached);
}

// Runs a request another instance forwarded through our own routes, marked as forwarded so
// they answer from what this instance holds, and publishes the answer back.
net::awaitable<void> cluster_node::serve_forwarded(bus_request fwd) {
    const auto verb = http::string_to_verb(fwd.method);
    http_request req{verb == http::verb::unknown ? http::verb::get : verb, fwd.target, 11};
    req.set(http::field::host, "cluster");
    if (!fwd.authorization.empty()) {
        req.set(http::field::authorization, fwd.authorization);
    }
    req.set(forwarded_header, fwd.from);
    if (!fwd.body.empty()) {
        req.set(http::field::content_type, "application/json");
    }
    req.body() = std::move(fwd.body);
    req.prepare_payload();
    request_context rc{req, false, "instance " + fwd.from, ctx_, {}};
    http_response res = co_await ctx_.routes->dispatch(rc);
    bus_response out{fwd.id, res.result_int(), std::string(res[http::field::content_type]),
                     std::move(res.body())};
    commands_->command({"PUBLISH", cluster_keys::bus(fwd.from), encode_bus_response(out)},
                       [](redis_reply) {});
}

void cluster_node::begin_drain(std::function<void()> finished) {
    net::post(ioc_, [this, finished = std::move(finished)]() mutable {
        draining_.store(true, std::memory_order_relaxed);
        log(log_level::info, "drain_started",
            {{"instance", id_},
             {"streams", ctx_.sessions.size()},
             {"drain_timeout_s", ctx_.cfg.drain_timeout.count()}});
        heartbeat(); // tell the registry at once; the agent says "drain" from now on
        poll_drain(std::chrono::steady_clock::now() + ctx_.cfg.drain_timeout, std::move(finished));
    });
}

void cluster_node::poll_drain(std::chrono::steady_clock::time_point deadline,
                              std::function<void()> finished) {
    const std::size_t left = ctx_.sessions.size();
    if (left == 0 || std::chrono::steady_clock::now() >= deadline) {
        log(left == 0 ? log_level::info : log_level::warn, "drain_finished",
            {{"instance", id_}, {"streams_left", left}});
        finished();
        return;
    }
    drain_timer_.expires_after(std::chrono::milliseconds(100));
    drain_timer_.async_wait(
        [this, deadline, finished = std::move(finished)](boost::system::error_code ec) mutable {
            if (!ec) {
                poll_drain(deadline, std::move(finished));
            }
        });
}

} // namespace callstream::server
