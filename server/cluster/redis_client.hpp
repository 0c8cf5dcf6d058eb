#pragma once
// One Redis connection, kept alive on an io_context the caller gives it (the cluster's own
// thread, never a network thread): connect with a timeout, AUTH/SELECT, optional SUBSCRIBE,
// pipelined commands answered in order, a deadline on every reply, and reconnection with
// exponential backoff (100 ms doubling to 1 s) for as long as the client lives.
//
// Why our own client: Debian 12's hiredis (0.14) has no Asio adapter and its reply types are
// the same RESP2 set we parse in codec/resp.hpp; redis-plus-plus and Boost.Redis are not
// packaged for Debian 12. Owning the socket lets every wait be a timer on our own context.
//
// Threading: command() may be called from any thread; it posts. Every handler, on_ready and
// on_message run on the client's executor. A Redis that is slow or gone never blocks the
// caller: while the connection is down, command() fails at once with "Redis unavailable"
// rather than queueing (callers re-assert their state from on_ready instead).
//
// Lifetime: held by shared_ptr; start() spawns the connection loop, stop() ends it (pending
// handlers then get an error). Errors never throw: they arrive as redis_reply::error.

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/tcp_stream.hpp>

#include "codec/resp.hpp"
#include "server/cluster/async_call.hpp"
#include "server/cluster/redis_url.hpp"

namespace callstream::server {

namespace net = boost::asio;

struct redis_reply {
    bool ok = false;         // a reply arrived and it is not a Redis error
    codec::resp_value value; // the reply (an error reply's text too)
    std::string error; // when !ok: why, naming Redis ("Redis error: ...", "Redis unavailable")
};
using redis_handler = std::function<void(redis_reply)>;

struct redis_client_options {
    redis_endpoint endpoint;
    std::chrono::milliseconds timeout{1000}; // connect, and each reply
    std::chrono::milliseconds backoff_min{100};
    std::chrono::milliseconds backoff_max{1000};
    std::vector<std::string> subscribe; // channels; non-empty makes this a subscriber connection
    std::string name;                   // CLIENT SETNAME, and the logs
};

class redis_client : public std::enable_shared_from_this<redis_client> {
  public:
    redis_client(net::any_io_executor executor, redis_client_options options);
    ~redis_client();
    redis_client(const redis_client&) = delete;
    redis_client& operator=(const redis_client&) = delete;

    void start();
    void stop();

    // Sends one command; `done` runs on the client's executor with the reply or the failure.
    void command(std::vector<std::string> args, redis_handler done);

    bool ready() const noexcept { return ready_.load(std::memory_order_acquire); }
    // Why the connection is down ("cannot connect to ...: Connection refused"); any thread.
    std::string last_error() const;
    const redis_endpoint& endpoint() const noexcept { return options_.endpoint; }

    // Set before start(). on_ready runs each time a connection is ready (after AUTH, SELECT and
    // SUBSCRIBE), so a reconnect can re-register; on_message gets published messages.
    std::function<void()> on_ready;
    std::function<void(std::string channel, std::string payload)> on_message;

  private:
    struct pending {
        redis_handler done;
        std::chrono::steady_clock::time_point deadline;
    };
    net::awaitable<void> run();
    net::awaitable<bool> session();
    void enqueue(std::vector<std::string> args, redis_handler done);
    void flush();
    void dispatch(codec::resp_value value);
    void close_connection(std::string why);
    void watch(std::uint64_t generation);
    void set_error(std::string why);
    redis_reply unavailable() const;

    net::any_io_executor executor_;
    redis_client_options options_;
    net::steady_timer backoff_timer_;
    net::steady_timer watchdog_;
    std::optional<boost::beast::tcp_stream> stream_;
    std::deque<pending> pending_;
    std::string outbox_;
    bool writing_ = false;
    bool stopped_ = false;
    std::uint64_t generation_ = 0;
    std::string closing_reason_;
    std::chrono::steady_clock::time_point last_sent_{};
    std::atomic<bool> ready_{false};
    mutable std::mutex error_mutex_;
    std::string last_error_ = "not connected yet";
};

// The awaitable form for coroutines on other threads (HTTP handlers): the reply is handed back
// on the awaiting coroutine's own executor. `co_await async_redis(client, {"GET", k}, token)`.
template <typename Token>
auto async_redis(redis_client& client, std::vector<std::string> args, Token&& token) {
    return async_call<redis_reply>(
        [&client, a = std::move(args)](redis_handler done) mutable {
            client.command(std::move(a), std::move(done));
        },
        std::forward<Token>(token));
}

} // namespace callstream::server
