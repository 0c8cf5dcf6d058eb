#pragma once
// The app room: the process around the rooms: configuration, logging, metrics, the shared
// server_context, the route table that wires every room's routes, and the server's threads.
// May include every other room (it is the only one that does) and pipeline/.
//
// The callstream server: N network threads, each running its own io_context, one listening
// port, graceful shutdown on SIGTERM/SIGINT and TLS certificate reload on SIGHUP.
//
// Why one io_context per thread rather than one pool with strands: a media stream never
// needs more than one thread, and a context per thread keeps each stream's handlers, timers
// and memory on one core with no cross-thread locking in the scheduler. Connections are
// spread round-robin at accept; cross-thread work (DSP wake-ups, control requests, shutdown)
// arrives by post to the session's executor.

#include <atomic>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "server/app/config.hpp"
#include "server/app/server_context.hpp"

namespace callstream::server {

class cluster_node;

class server {
  public:
    // Binds the port and loads TLS files; throws std::runtime_error with a clear message.
    explicit server(config cfg);
    ~server();
    server(const server&) = delete;
    server& operator=(const server&) = delete;

    // Serves until shutdown completes. The calling thread becomes network thread 0.
    void run();
    // Begins a graceful shutdown (as SIGTERM does). Any thread.
    void request_shutdown();

    std::uint16_t port() const noexcept { return port_; }
    server_context& context() noexcept { return *ctx_; }

  private:
    net::awaitable<void> accept_loop();
    void wait_for_signal();
    void begin_shutdown();
    void finish_shutdown();
    void poll_shutdown();
    std::shared_ptr<net::ssl::context> current_tls();

    std::shared_ptr<server_context> ctx_;
    std::shared_ptr<cluster_node> cluster_; // --redis-url only
    std::vector<std::unique_ptr<net::io_context>> contexts_;
    std::vector<net::executor_work_guard<net::io_context::executor_type>> work_;
    net::ip::tcp::acceptor acceptor_;
    net::signal_set signals_;
    net::steady_timer shutdown_timer_;
    std::chrono::steady_clock::time_point shutdown_deadline_{};
    std::mutex tls_mutex_;
    std::shared_ptr<net::ssl::context> tls_;
    std::uint16_t port_ = 0;
    std::size_t next_context_ = 0;
    bool shutting_down_ = false;
};

// Builds a TLS 1.2+ server context from PEM files; throws with a clear message on failure.
std::shared_ptr<net::ssl::context> make_tls_context(const std::string& cert_file,
                                                    const std::string& key_file);

} // namespace callstream::server
