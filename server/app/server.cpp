#include "server/app/server.hpp"

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <unistd.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "server/app/log.hpp"
#include "server/app/route_table.hpp"
#include "server/bridge/bridge_flags.hpp"
#include "server/bridge/bridge_service.hpp"
#include "server/calls/call_routes.hpp"
#include "server/cluster/cluster_node.hpp"
#include "server/cluster/cluster_routes.hpp"
#include "server/cluster/redis_parameter_store.hpp"
#include "server/cluster/redis_status_sequencer.hpp"
#include "server/http/connection.hpp"
#include "server/http/router.hpp"
#include "server/monitor/monitor_hub.hpp"
#include "server/twilio/rest_client.hpp"

namespace callstream::server {
namespace {

constexpr auto use_nothrow = net::as_tuple(net::use_awaitable);

std::string openssl_error_text() {
    return "check that the files exist, are PEM, and that the key matches the certificate";
}

} // namespace

std::shared_ptr<net::ssl::context> make_tls_context(const std::string& cert_file,
                                                    const std::string& key_file) {
    auto ctx = std::make_shared<net::ssl::context>(net::ssl::context::tls_server);
    ctx->set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 |
                     net::ssl::context::no_sslv3 | net::ssl::context::no_tlsv1 |
                     net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
    SSL_CTX_set_min_proto_version(ctx->native_handle(), TLS1_2_VERSION);
    // Forward-secret AEAD suites only for TLS 1.2; TLS 1.3's defaults are already modern.
    SSL_CTX_set_cipher_list(ctx->native_handle(),
                            "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                            "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                            "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305");
    beast::error_code ec;
    ctx->use_certificate_chain_file(cert_file, ec);
    if (ec) {
        throw std::runtime_error("cannot load TLS certificate chain '" + cert_file +
                                 "': " + ec.message() + "; " + openssl_error_text());
    }
    ctx->use_private_key_file(key_file, net::ssl::context::pem, ec);
    if (ec && ec.message().find("mismatch") != std::string::npos) {
        throw std::runtime_error("TLS private key '" + key_file +
                                 "' does not match the certificate '" + cert_file + "'");
    }
    if (ec) {
        throw std::runtime_error("cannot load TLS private key '" + key_file + "': " + ec.message() +
                                 "; " + openssl_error_text());
    }
    if (SSL_CTX_check_private_key(ctx->native_handle()) != 1) {
        throw std::runtime_error("TLS private key '" + key_file +
                                 "' does not match the certificate '" + cert_file + "'");
    }
    return ctx;
}

server::server(config cfg)
    : ctx_(std::make_shared<server_context>()), contexts_([&] {
          std::vector<std::unique_ptr<net::io_context>> v;
          for (unsigned i = 0; i < std::max(1U, cfg.threads); ++i) {
              // Concurrency hint 1: each context is run by exactly one thread.
              v.push_back(std::make_unique<net::io_context>(1));
          }
          return v;
      }()),
      acceptor_(*contexts_[0]), signals_(*contexts_[0]), shutdown_timer_(*contexts_[0]) {
    ctx_->cfg = std::move(cfg);
    const auto& c = ctx_->cfg;
    ctx_->processors.default_app = c.default_app;
    ctx_->processors.recordings_dir = c.recordings_dir;
    ctx_->processors.play.prompts_dir = c.prompts_dir;
    const auto resampler = pipeline::parse_resampler_spec(c.resampler);
    if (!resampler.error.empty()) {
        throw std::runtime_error("invalid --resampler '" + c.resampler + "': " + resampler.error);
    }
    ctx_->pipeline.resampler = resampler.spec;
    if (c.dsp_threads > 0) {
        ctx_->dsp = std::make_unique<pipeline::dsp_pool>(c.dsp_threads);
        ctx_->pipeline.dsp = ctx_->dsp.get();
        // 5 s of caller audio may queue for a worker (a burst after a network stall); beyond
        // that frames are dropped and counted rather than blocking the network thread.
        ctx_->pipeline.inbound_capacity = 256;
        ctx_->pipeline.outbound_capacity = 128;
    } else {
        // Inline mode drains right after each push; a small ring keeps a stream's memory low.
        ctx_->pipeline.outbound_capacity = 64;
    }
    {
        bridge::bridge_config bridges;
        const auto error = bridge::make_bridge_config(
            c.bridge, [](const char* name) { return std::getenv(name); }, c.prompts_dir, bridges);
        if (!error.empty()) {
            throw std::runtime_error(error);
        }
        ctx_->bridge = std::make_shared<bridge::bridge_service>(std::move(bridges), c.prompts_dir);
        auto rest = twilio_rest_config_from(c);
        if (!rest.credentials.account_sid.empty() && !rest.credentials.password.empty()) {
            ctx_->bridge->rest = std::make_shared<twilio_rest_client>(std::move(rest));
        }
    }
    if (c.monitor.enabled) {
        ctx_->monitor = std::make_shared<monitor::monitor_hub>(
            contexts_[0]->get_executor(), monitor::token_signer(c.api_token, c.monitor.token_ttl),
            std::make_shared<const monitor::monitor_assets>(
                monitor::monitor_assets::load(c.monitor.assets_dir)),
            ctx_->bridge, c.instance_id);
    }
    ctx_->routes = std::make_shared<router>();
    add_all_routes(*ctx_);

    if (!c.tls_cert.empty()) {
        tls_ = make_tls_context(c.tls_cert, c.tls_key);
    }

    beast::error_code ec;
    const auto address = net::ip::make_address(c.host, ec);
    if (ec) {
        throw std::runtime_error("invalid --host '" + c.host + "': " + ec.message());
    }
    const net::ip::tcp::endpoint endpoint{address, c.port};
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) {
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        acceptor_.bind(endpoint, ec);
    }
    if (!ec) {
        acceptor_.listen(net::socket_base::max_listen_connections, ec);
    }
    if (ec) {
        throw std::runtime_error("cannot listen on " + c.host + ":" + std::to_string(c.port) +
                                 ": " + ec.message());
    }
    port_ = acceptor_.local_endpoint().port();

    if (!c.redis_url.empty()) {
        cluster_ = std::make_shared<cluster_node>(*ctx_, port_);
        add_cluster_routes(*ctx_, cluster_);
        ctx_->pinned_stream_path = "/i/" + cluster_->instance_id() + "/media-stream";
        ctx_->calls->set_stream_observer(cluster_);
        ctx_->calls->set_parameter_store(
            std::make_shared<redis_parameter_store>(cluster_->redis_connection()));
        ctx_->calls->set_status_sequencer(
            std::make_shared<redis_status_sequencer>(cluster_->redis_connection()));
        ctx_->drain = [node = cluster_.get()](std::function<void()> finished) {
            node->begin_drain(std::move(finished));
        };
        if (ctx_->monitor) {
            ctx_->monitor->set_cluster(std::make_shared<monitor::cluster_view>(
                                           cluster_->redis_connection(), cluster_->instance_id()),
                                       cluster_->instance_id());
        }
    }
}

namespace {

// execution_context::shutdown() (protected) destroys every pending handler but keeps the
// services; the destructor calls it again, which finds nothing left.
struct context_shutdown : net::execution_context {
    static void run(net::execution_context& c) { (c.*&context_shutdown::shutdown)(); }
};

void shut_down(net::io_context& ioc) {
    context_shutdown::run(ioc);
}

} // namespace

server::~server() {
    // The context holds objects bound to io_contexts that are members of this server: the
    // monitor's timer (network thread 0) and, through the Redis parameter store, the cluster's
    // Redis client (the cluster node's own io_context). Members are destroyed in reverse order
    // of declaration, which would destroy both io_contexts first; drop our reference now, so the
    // context goes here or, if a pending handler still holds it, while the network contexts shut
    // down, and in either case before the cluster node.
    ctx_.reset();
    // Handlers still pending on a network context (connection coroutines) may hold the last
    // reference to the context, or objects bound to another network context (the monitor's
    // timer lives on context 0). Shut every context down, which destroys those handlers while
    // all contexts' services still exist, before any context is destroyed.
    work_.clear();
    for (auto& ioc : contexts_) {
        shut_down(*ioc);
    }
}

std::shared_ptr<net::ssl::context> server::current_tls() {
    const std::lock_guard lock(tls_mutex_);
    return tls_;
}

void server::run() {
    for (auto& ioc : contexts_) {
        work_.push_back(net::make_work_guard(*ioc));
    }
    net::co_spawn(*contexts_[0], accept_loop(), net::detached);
    signals_.add(SIGINT);
    signals_.add(SIGTERM);
    signals_.add(SIGHUP);
    wait_for_signal();
    log(log_level::info, "listening",
        {{"host", ctx_->cfg.host},
         {"port", port_},
         {"threads", contexts_.size()},
         {"tls", tls_ ? "on" : "off"}});

    if (cluster_) {
        cluster_->start();
    }
    std::vector<std::thread> threads;
    for (std::size_t i = 1; i < contexts_.size(); ++i) {
        threads.emplace_back([ioc = contexts_[i].get()] { ioc->run(); });
    }
    contexts_[0]->run();
    for (auto& t : threads) {
        t.join();
    }
    if (cluster_) {
        cluster_->stop();
    }
    log(log_level::info, "stopped", {});
}

net::awaitable<void> server::accept_loop() {
    while (acceptor_.is_open()) {
        // Each connection lands on the next network thread's context, round-robin.
        auto& target = *contexts_[next_context_++ % contexts_.size()];
        auto [ec, socket] = co_await acceptor_.async_accept(target, use_nothrow);
        if (ec) {
            if (ec == net::error::operation_aborted || !acceptor_.is_open()) {
                co_return;
            }
            // Out of file descriptors and similar: log, back off briefly, keep serving.
            log(log_level::warn, "accept_failed", {{"error", ec.message()}});
            net::steady_timer pause(acceptor_.get_executor(), std::chrono::milliseconds(50));
            co_await pause.async_wait(use_nothrow);
            continue;
        }
        if (static_cast<std::size_t>(ctx_->stats.connections_active.load(
                std::memory_order_relaxed)) >= ctx_->cfg.max_connections) {
            beast::error_code ignored;
            socket.close(ignored);
            continue;
        }
        auto executor = socket.get_executor();
        net::co_spawn(executor, run_connection(std::move(socket), ctx_, current_tls()),
                      net::detached);
    }
}

void server::wait_for_signal() {
    signals_.async_wait([this](const beast::error_code& ec, int signo) {
        if (ec) {
            return;
        }
        if (signo == SIGHUP) {
            if (!ctx_->cfg.tls_cert.empty()) {
                try {
                    auto fresh = make_tls_context(ctx_->cfg.tls_cert, ctx_->cfg.tls_key);
                    const std::lock_guard lock(tls_mutex_);
                    tls_ = std::move(fresh); // open connections keep the context they began with
                    log(log_level::info, "tls_reloaded", {{"cert", ctx_->cfg.tls_cert}});
                } catch (const std::exception& e) {
                    log(log_level::error, "tls_reload_failed", {{"error", e.what()}});
                }
            }
        } else if (shutting_down_) {
            log(log_level::warn, "shutdown_forced", {{"signal", signo}});
            std::_Exit(1);
        } else {
            log(log_level::info, "shutdown_requested", {{"signal", signo}});
            begin_shutdown();
        }
        wait_for_signal();
    });
}

void server::request_shutdown() {
    net::post(*contexts_[0], [this] { begin_shutdown(); });
}

void server::begin_shutdown() {
    if (shutting_down_) {
        return;
    }
    shutting_down_ = true;
    if (ctx_->drain) {
        // Cluster mode: keep serving (calls in progress, pinned streams, HTTP) while HAProxy
        // sends new streams elsewhere; then the usual shutdown.
        ctx_->drain([this] { net::post(*contexts_[0], [this] { finish_shutdown(); }); });
        return;
    }
    finish_shutdown();
}

void server::finish_shutdown() {
    beast::error_code ignored;
    acceptor_.close(ignored);
    for (auto& session : ctx_->sessions.all()) {
        session->post_close(1001, "server shutting down");
    }
    if (ctx_->bridge) {
        ctx_->bridge->abandon_prewarmed(); // calls that never connected will not now
    }
    shutdown_deadline_ = std::chrono::steady_clock::now() + ctx_->cfg.shutdown_timeout;
    poll_shutdown();
}

// Waits for every stream to close (each flushes its processors, e.g. recordings) or for the
// deadline, then stops every network thread.
void server::poll_shutdown() {
    if (ctx_->sessions.size() == 0 || std::chrono::steady_clock::now() >= shutdown_deadline_) {
        if (ctx_->sessions.size() != 0) {
            log(log_level::warn, "shutdown_deadline_passed",
                {{"streams_left", ctx_->sessions.size()}});
        }
        work_.clear();
        for (auto& ioc : contexts_) {
            ioc->stop();
        }
        return;
    }
    shutdown_timer_.expires_after(std::chrono::milliseconds(20));
    shutdown_timer_.async_wait([this](const beast::error_code& ec) {
        if (!ec) {
            poll_shutdown();
        }
    });
}

} // namespace callstream::server
