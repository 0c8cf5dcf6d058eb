#include "server/twilio/signature.hpp"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>

#include <boost/url/parse.hpp>
#include <boost/url/url.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "codec/base64.hpp"

namespace callstream::server {
namespace {

std::string default_port_for(std::string_view scheme) {
    if (scheme == "https" || scheme == "wss") {
        return "443";
    }
    return "80";
}

} // namespace

std::string twilio_signature(std::string_view auth_token, std::string_view url,
                             const form_fields& params) {
    // Sort a copy by name, then by value, and drop exact duplicates: for a repeated name this is
    // twilio-node's "distinct values, sorted", and std::string compares as unsigned bytes.
    std::vector<const std::pair<std::string, std::string>*> sorted;
    sorted.reserve(params.size());
    for (const auto& p : params) {
        sorted.push_back(&p);
    }
    std::sort(sorted.begin(), sorted.end(), [](const auto* a, const auto* b) { return *a < *b; });
    std::string data(url);
    const std::pair<std::string, std::string>* previous = nullptr;
    for (const auto* p : sorted) {
        if (previous != nullptr && *previous == *p) {
            continue;
        }
        data += p->first;
        data += p->second;
        previous = p;
    }
    std::array<std::uint8_t, EVP_MAX_MD_SIZE> mac{};
    unsigned int mac_len = 0;
    HMAC(EVP_sha1(), auth_token.data(), static_cast<int>(auth_token.size()),
         reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac.data(), &mac_len);
    return codec::base64_encode(std::span<const std::uint8_t>(mac.data(), mac_len));
}

std::vector<std::string> twilio_url_variants(std::string_view url) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return {std::string(url)};
    }
    boost::urls::url without(*parsed);
    without.remove_port();
    boost::urls::url with(*parsed);
    if (!with.has_port()) {
        with.set_port(default_port_for(with.scheme()));
    }
    std::vector<std::string> out;
    out.emplace_back(without.buffer());
    if (with.buffer() != without.buffer()) {
        out.emplace_back(with.buffer());
    }
    return out;
}

std::string twilio_swap_ws_scheme(std::string_view url) {
    const auto colon = url.find("://");
    if (colon == std::string_view::npos) {
        return std::string(url);
    }
    const std::string_view scheme = url.substr(0, colon);
    const std::string_view rest = url.substr(colon);
    if (scheme == "https") {
        return "wss" + std::string(rest);
    }
    if (scheme == "wss") {
        return "https" + std::string(rest);
    }
    if (scheme == "http") {
        return "ws" + std::string(rest);
    }
    if (scheme == "ws") {
        return "http" + std::string(rest);
    }
    return std::string(url);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) {
        return false;
    }
    return a.empty() || CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool twilio_validate(std::string_view auth_token, std::string_view signature, std::string_view url,
                     const form_fields& params) {
    if (signature.empty()) {
        return false;
    }
    // Check every variant (no early return) so the time taken does not say which one matched.
    bool ok = false;
    for (const auto& variant : twilio_url_variants(url)) {
        ok |= constant_time_equal(signature, twilio_signature(auth_token, variant, params));
    }
    return ok;
}

bool twilio_validate_upgrade(std::string_view auth_token, std::string_view signature,
                             std::string_view url) {
    const form_fields none;
    bool ok = twilio_validate(auth_token, signature, url, none);
    const std::string twin = twilio_swap_ws_scheme(url);
    if (twin != url) {
        ok |= twilio_validate(auth_token, signature, twin, none);
    }
    return ok;
}

std::string sha256_hex(std::string_view data) {
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    EVP_Digest(data.data(), data.size(), md.data(), &md_len, EVP_sha256(), nullptr);
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(md_len * 2);
    for (unsigned int i = 0; i < md_len; ++i) {
        out.push_back(hex[md[i] >> 4]);
        out.push_back(hex[md[i] & 0x0F]);
    }
    return out;
}

bool twilio_validate_with_body(std::string_view auth_token, std::string_view signature,
                               std::string_view url, std::string_view body) {
    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) {
        return false;
    }
    const auto params = parsed->params();
    const auto it = params.find("bodySHA256");
    if (it == params.end()) {
        return false;
    }
    const std::string expected_hash = (*it).value;
    const bool signature_ok = twilio_validate(auth_token, signature, url, {});
    const bool body_ok = constant_time_equal(expected_hash, sha256_hex(body));
    return signature_ok && body_ok;
}

} // namespace callstream::server
