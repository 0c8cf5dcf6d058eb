#include "server/cluster/redis_client.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include "server/app/log.hpp"

// gcc 12 reports a false -Wmismatched-new-delete on Asio's awaitable frame allocator (gcc bug
// 109224, fixed in gcc 13).
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace callstream::server {
namespace {

constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);
using clock_type = std::chrono::steady_clock;

} // namespace

redis_client::redis_client(net::any_io_executor executor, redis_client_options options)
    : executor_(std::move(executor)), options_(std::move(options)), backoff_timer_(executor_),
      watchdog_(executor_) {}

redis_client::~redis_client() = default;

void redis_client::start() {
    net::co_spawn(
        executor_, [self = shared_from_this()] { return self->run(); }, net::detached);
}

void redis_client::stop() {
    net::post(executor_, [self = shared_from_this()] {
        self->stopped_ = true;
        self->backoff_timer_.cancel();
        self->close_connection("client stopped");
    });
}

std::string redis_client::last_error() const {
    const std::lock_guard lock(error_mutex_);
    return last_error_;
}

void redis_client::set_error(std::string why) {
    const std::lock_guard lock(error_mutex_);
    last_error_ = std::move(why);
}

redis_reply redis_client::unavailable() const {
    redis_reply r;
    r.error = "Redis at " + options_.endpoint.describe() + " unavailable: " + last_error();
    return r;
}

void redis_client::command(std::vector<std::string> args, redis_handler done) {
    net::post(executor_, [self = shared_from_this(), args = std::move(args),
                          done = std::move(done)]() mutable {
        if (!self->ready_.load(std::memory_order_relaxed)) {
            done(self->unavailable());
            return;
        }
        self->enqueue(std::move(args), std::move(done));
    });
}

void redis_client::enqueue(std::vector<std::string> args, redis_handler done) {
    codec::append_resp_command(outbox_, args);
    last_sent_ = clock_type::now();
    pending_.push_back({std::move(done), last_sent_ + options_.timeout});
    flush();
}

void redis_client::flush() {
    if (writing_ || outbox_.empty() || !stream_) {
        return;
    }
    auto bytes = std::make_shared<std::string>(std::move(outbox_));
    outbox_.clear();
    writing_ = true;
    net::async_write(stream_->socket(), net::buffer(*bytes),
                     [self = shared_from_this(), bytes,
                      gen = generation_](const boost::system::error_code& ec, std::size_t) {
                         if (gen != self->generation_) {
                             return; // a write of a connection that is gone
                         }
                         self->writing_ = false;
                         if (ec) {
                             self->close_connection("write to Redis failed: " + ec.message());
                             return;
                         }
                         self->flush();
                     });
}

void redis_client::close_connection(std::string why) {
    ready_.store(false, std::memory_order_release);
    if (stream_) {
        if (closing_reason_.empty()) {
            closing_reason_ = std::move(why);
        }
        boost::system::error_code ignored;
        stream_->socket().shutdown(net::ip::tcp::socket::shutdown_both, ignored);
        stream_->socket().close(ignored);
    }
}

void redis_client::dispatch(codec::resp_value value) {
    // In subscriber mode Redis pushes ["message", channel, payload] between replies.
    if (!options_.subscribe.empty() && value.type == codec::resp_type::array &&
        value.elements.size() == 3 && value.elements[0].text == "message") {
        if (on_message) {
            on_message(std::move(value.elements[1].text), std::move(value.elements[2].text));
        }
        return;
    }
    if (pending_.empty()) {
        close_connection("Redis sent a reply nobody asked for: " + codec::resp_to_string(value));
        return;
    }
    auto p = std::move(pending_.front());
    pending_.pop_front();
    redis_reply r;
    r.ok = !value.is_error();
    if (!r.ok) {
        r.error = "Redis error: " + value.text;
    }
    r.value = std::move(value);
    if (p.done) {
        p.done(std::move(r));
    }
}

// Every 100 ms while a connection lives: a reply overdue means Redis is stuck (or the network
// is): drop the connection so callers hear about it and the loop reconnects. A subscriber
// connection is otherwise silent, so it PINGs to notice a Redis that vanished without a FIN.
void redis_client::watch(std::uint64_t generation) {
    watchdog_.expires_after(std::chrono::milliseconds(100));
    watchdog_.async_wait([self = shared_from_this(), generation](boost::system::error_code ec) {
        if (ec || generation != self->generation_ || !self->stream_) {
            return;
        }
        const auto now = clock_type::now();
        if (!self->pending_.empty() && now > self->pending_.front().deadline) {
            self->close_connection("Redis did not answer within " +
                                   std::to_string(self->options_.timeout.count()) + " ms");
            return;
        }
        if (self->ready_.load(std::memory_order_relaxed) && self->pending_.empty() &&
            now - self->last_sent_ > self->options_.timeout) {
            self->enqueue({"PING"}, nullptr);
        }
        self->watch(generation);
    });
}

net::awaitable<void> redis_client::run() {
    auto self = shared_from_this();
    auto backoff = options_.backoff_min;
    while (!stopped_) {
        const bool was_ready = co_await session();
        if (stopped_) {
            break;
        }
        if (was_ready) {
            backoff = options_.backoff_min;
        }
        backoff_timer_.expires_after(backoff);
        co_await backoff_timer_.async_wait(use_nothrow);
        backoff = std::min(backoff * 2, options_.backoff_max);
    }
}

net::awaitable<bool> redis_client::session() {
    const auto& ep = options_.endpoint;
    net::ip::tcp::resolver resolver(executor_);
    auto [resolve_ec, results] =
        co_await resolver.async_resolve(ep.host, std::to_string(ep.port), use_nothrow);
    if (resolve_ec) {
        set_error("cannot resolve " + ep.host + ": " + resolve_ec.message());
        co_return false;
    }
    stream_.emplace(executor_);
    stream_->expires_after(options_.timeout);
    auto [connect_ec, endpoint] = co_await stream_->async_connect(results, use_nothrow);
    if (connect_ec || stopped_) {
        set_error("cannot connect to " + ep.host + ":" + std::to_string(ep.port) + ": " +
                  (connect_ec == boost::beast::error::timeout ? std::string("timed out")
                                                              : connect_ec.message()));
        stream_.reset();
        co_return false;
    }
    stream_->expires_never();
    boost::system::error_code ignored;
    stream_->socket().set_option(net::ip::tcp::no_delay(true), ignored);
    stream_->socket().set_option(net::socket_base::keep_alive(true), ignored);
    ++generation_;
    writing_ = false;
    closing_reason_.clear();
    outbox_.clear();
    bool was_ready = false;

    // The handshake: its replies come first, in order; any error ends the connection.
    std::vector<std::vector<std::string>> hello;
    if (!ep.password.empty()) {
        hello.push_back(ep.user.empty() ? std::vector<std::string>{"AUTH", ep.password}
                                        : std::vector<std::string>{"AUTH", ep.user, ep.password});
    }
    if (ep.db != 0) {
        hello.push_back({"SELECT", std::to_string(ep.db)});
    }
    if (!options_.name.empty()) {
        hello.push_back({"CLIENT", "SETNAME", options_.name});
    }
    for (const auto& channel : options_.subscribe) {
        hello.push_back({"SUBSCRIBE", channel});
    }
    auto left = std::make_shared<std::size_t>(hello.size());
    auto become_ready = [this, &was_ready] {
        was_ready = true;
        ready_.store(true, std::memory_order_release);
        log(log_level::info, "redis_connected",
            {{"redis", options_.endpoint.describe()}, {"connection", options_.name}});
        if (on_ready) {
            on_ready();
        }
    };
    for (auto& cmd : hello) {
        const std::string what = cmd[0];
        enqueue(std::move(cmd), [this, left, what, become_ready](redis_reply r) {
            if (!r.ok) {
                close_connection(what + " refused: " + r.error);
                return;
            }
            if (--*left == 0) {
                become_ready();
            }
        });
    }
    if (hello.empty()) {
        become_ready();
    }
    watch(generation_);

    std::string buffer;
    std::array<char, 16384> chunk{};
    std::string why;
    for (;;) {
        std::size_t offset = 0;
        bool broken = false;
        while (offset < buffer.size()) {
            auto parsed = codec::parse_resp(std::string_view(buffer).substr(offset));
            if (parsed.status == codec::resp_status::incomplete) {
                break;
            }
            if (parsed.status == codec::resp_status::error) {
                close_connection("Redis sent bytes that are not RESP: " + parsed.error);
                broken = true;
                break;
            }
            offset += parsed.consumed;
            dispatch(std::move(parsed.value));
        }
        buffer.erase(0, offset);
        if (broken || !stream_ || !stream_->socket().is_open()) {
            break;
        }
        auto [read_ec, n] =
            co_await stream_->socket().async_read_some(net::buffer(chunk), use_nothrow);
        if (read_ec) {
            if (closing_reason_.empty()) {
                closing_reason_ = read_ec == net::error::eof
                                      ? "Redis closed the connection"
                                      : "connection lost: " + read_ec.message();
            }
            break;
        }
        buffer.append(chunk.data(), n);
    }
    why = closing_reason_.empty() ? "connection closed" : closing_reason_;
    ready_.store(false, std::memory_order_release);
    ++generation_; // late write and watchdog handlers of this connection now do nothing
    stream_.reset();
    set_error(why);
    if (was_ready && !stopped_) {
        log(log_level::warn, "redis_lost",
            {{"redis", options_.endpoint.describe()},
             {"connection", options_.name},
             {"error", why}});
    }
    auto failed = std::move(pending_);
    pending_.clear();
    for (auto& p : failed) {
        if (p.done) {
            p.done(unavailable());
        }
    }
    co_return was_ready;
}

} // namespace callstream::server
