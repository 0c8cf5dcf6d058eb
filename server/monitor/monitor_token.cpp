#include "server/monitor/monitor_token.hpp"

#include <charconv>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

namespace callstream::server::monitor {
namespace {

std::string to_hex(const unsigned char* p, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    return out;
}

std::int64_t unix_ms(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

} // namespace

std::string_view to_string(token_verdict v) noexcept {
    switch (v) {
    case token_verdict::ok:
        return "ok";
    case token_verdict::malformed:
        return "malformed token";
    case token_verdict::bad_signature:
        return "bad token signature";
    case token_verdict::expired:
        return "token expired";
    }
    return "?";
}

token_signer::token_signer(std::string_view api_token, std::chrono::seconds ttl) : ttl_(ttl) {
    // key = HMAC(api_token, label): the API token itself never signs anything.
    static constexpr std::string_view label = "callstream monitor token v1";
    unsigned int len = 0;
    HMAC(EVP_sha256(), api_token.data(), static_cast<int>(api_token.size()),
         reinterpret_cast<const unsigned char*>(label.data()), label.size(), key_.data(), &len);
}

std::string token_signer::mac_hex(std::string_view payload) const {
    std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
    unsigned int len = 0;
    HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
         reinterpret_cast<const unsigned char*>(payload.data()), payload.size(), mac.data(), &len);
    return to_hex(mac.data(), len);
}

std::string token_signer::issue(std::chrono::system_clock::time_point now) const {
    std::array<unsigned char, 8> nonce{};
    RAND_bytes(nonce.data(), static_cast<int>(nonce.size()));
    const std::string payload =
        std::to_string(unix_ms(now + ttl_)) + "." + to_hex(nonce.data(), nonce.size());
    return payload + "." + mac_hex(payload);
}

token_verdict token_signer::check(std::string_view token,
                                  std::chrono::system_clock::time_point now) const {
    const auto last_dot = token.rfind('.');
    if (last_dot == std::string_view::npos || token.size() > 200) {
        return token_verdict::malformed;
    }
    const std::string_view payload = token.substr(0, last_dot);
    const std::string_view mac = token.substr(last_dot + 1);
    const auto first_dot = payload.find('.');
    std::int64_t expiry = 0;
    if (first_dot == std::string_view::npos || mac.size() != 64) {
        return token_verdict::malformed;
    }
    const auto [ptr, ec] = std::from_chars(payload.data(), payload.data() + first_dot, expiry);
    if (ec != std::errc{} || ptr != payload.data() + first_dot) {
        return token_verdict::malformed;
    }
    const std::string expected = mac_hex(payload);
    if (CRYPTO_memcmp(expected.data(), mac.data(), expected.size()) != 0) {
        return token_verdict::bad_signature;
    }
    if (unix_ms(now) >= expiry) {
        return token_verdict::expired;
    }
    return token_verdict::ok;
}

} // namespace callstream::server::monitor
