#pragma once
// Short-lived monitor tokens. Browsers cannot set headers on a WebSocket, so the page trades the
// API bearer token (POST /monitor/token) for one of these and puts it in the query string of
// /monitor/events and /monitor/listen/{streamSid}.
//
// Format: "<expiry, unix milliseconds>.<16 hex random>.<64 hex HMAC-SHA256>", the MAC over the
// first two fields. The HMAC key is derived from the API token, so every instance of a cluster that
// shares the API token accepts every instance's tokens (the listen socket may land on another
// instance than the one that issued it), and changing the API token voids them all.
// Threading: immutable after construction; any thread. Errors: check() says why it refused.

#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace callstream::server::monitor {

enum class token_verdict { ok, malformed, bad_signature, expired };
std::string_view to_string(token_verdict v) noexcept;

class token_signer {
  public:
    token_signer(std::string_view api_token, std::chrono::seconds ttl);

    std::chrono::seconds ttl() const noexcept { return ttl_; }
    std::string issue(std::chrono::system_clock::time_point now) const;
    token_verdict check(std::string_view token, std::chrono::system_clock::time_point now) const;

  private:
    std::string mac_hex(std::string_view payload) const;

    std::array<unsigned char, 32> key_{};
    std::chrono::seconds ttl_;
};

} // namespace callstream::server::monitor
