#pragma once
// HTTPS client for Twilio's 2010-04-01 Calls API (create a call, hang one up).
//
// Transport: Beast over OpenSSL with peer verification (system CA store, or `ca_file` for tests),
// SNI, and host name verification. One idle keep-alive connection is kept for the API host and
// reused; a request that fails on a reused connection before any response (the server closed it
// while idle) is retried once on a fresh one. A fresh connection is never retried, so a call is
// never placed twice. Every request has one deadline covering connect, TLS, write and read.
//
// Threading: the methods are coroutines that may run on any executor, concurrently; the idle
// connection slot is guarded by a mutex (control plane only, never the audio path). An idle
// connection is owned by a pending wait on its own io_context, so the client may outlive the
// io_contexts it ran on. Errors are
// returned in `call_result`, never thrown; the constructor throws std::runtime_error at startup
// for a bad base URL or an unreadable CA file. Nothing here logs credentials.

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ssl/context.hpp>

#include "server/http/form.hpp"

namespace callstream::server {

struct twilio_credentials {
    std::string account_sid; // AC…, always the one in the URL path
    std::string username;    // the Account SID, or an API Key SID (SK…)
    std::string password;    // the Auth Token, or the API Key secret
};

struct twilio_rest_config {
    std::string api_base = "https://api.twilio.com"; // scheme https, host, optional port
    std::string ca_file;                             // PEM bundle; empty = system store
    std::chrono::milliseconds timeout{10'000};       // per request: connect + TLS + write + read
    twilio_credentials credentials;
};

enum class twilio_outcome {
    ok,             // 2xx with a parsable call resource
    twilio_error,   // Twilio answered with an error (code/message/more_info filled when given)
    timeout,        // the deadline passed
    connect_failed, // resolve/connect/TLS failed (refused, unreachable, bad certificate)
    bad_response,   // the connection broke mid-response, or the body was not Twilio's JSON
};

struct call_result {
    twilio_outcome outcome = twilio_outcome::bad_response;
    unsigned http_status = 0; // Twilio's HTTP status, 0 when there was no response
    std::string call_sid;     // CA…
    std::string status;       // queued, ringing, completed, …
    long long error_code = 0; // Twilio's error code, e.g. 21211
    std::string error_message;
    std::string more_info;
    std::string detail; // our description of transport failures (no secrets)
};

// Turns a Call JSON or an error JSON body into `out` (sid/status, or code/message/more_info).
// Returns false when the body is not a JSON object.
bool parse_twilio_json(std::string_view body, call_result& out);

class twilio_rest_client {
  public:
    explicit twilio_rest_client(twilio_rest_config config);
    ~twilio_rest_client();
    twilio_rest_client(const twilio_rest_client&) = delete;
    twilio_rest_client& operator=(const twilio_rest_client&) = delete;

    // POST /2010-04-01/Accounts/{AccountSid}/Calls.json with `params` form-encoded.
    boost::asio::awaitable<call_result> create_call(const form_fields& params);

    // POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json with Status=completed.
    // `call_sid` must already be validated (CA + 32 hex): it is put in the path as given.
    boost::asio::awaitable<call_result> hangup(std::string call_sid);

    // Connections opened so far (tests check that keep-alive reuse happens).
    std::size_t connections_opened() const;

    const twilio_rest_config& config() const { return config_; }

  private:
    struct connection;
    boost::asio::awaitable<call_result> post_form(std::string target, std::string body);
    void park(std::shared_ptr<connection> conn);
    std::shared_ptr<connection> take_idle();

    // How long an idle connection is kept for reuse.
    static constexpr std::chrono::seconds idle_keep{30};

    twilio_rest_config config_;
    std::string host_;
    std::string port_;
    std::string host_header_;
    std::string authorization_;
    boost::asio::ssl::context tls_;
    mutable std::mutex mutex_;
    std::weak_ptr<connection> idle_;     // guarded by mutex_; see park()
    std::size_t connections_opened_ = 0; // guarded by mutex_
};

} // namespace callstream::server
