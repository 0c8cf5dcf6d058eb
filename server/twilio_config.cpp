#include "server/twilio_config.hpp"

#include <charconv>
#include <stdexcept>

#include <boost/url/parse.hpp>

namespace callstream::server {
namespace {

std::string need_value(std::string_view flag, const char* value) {
    if (value == nullptr || *value == '\0') {
        throw std::runtime_error(std::string(flag) + " needs a value");
    }
    return value;
}

void fill_from_env(std::string& field, const char* name,
                   const std::function<const char*(const char*)>& getenv_fn) {
    if (field.empty()) {
        if (const char* v = getenv_fn(name); v != nullptr) {
            field = v;
        }
    }
}

} // namespace

std::string twilio_settings::media_stream_url() const {
    std::string url = public_url;
    if (url.rfind("https://", 0) == 0) {
        url.replace(0, 5, "wss");
    } else if (url.rfind("http://", 0) == 0) {
        url.replace(0, 4, "ws");
    }
    return url + "/media-stream";
}

int parse_twilio_flag(std::string_view flag, const char* value, twilio_settings& settings) {
    if (flag == "--no-verify-signatures") {
        settings.verify_signatures_flag = false;
        return 1;
    }
    if (flag == "--public-url") {
        settings.public_url = need_value(flag, value);
    } else if (flag == "--api-token") {
        settings.api_token = need_value(flag, value);
    } else if (flag == "--twilio-from") {
        settings.default_from = need_value(flag, value);
    } else if (flag == "--twilio-api-base") {
        settings.rest.api_base = need_value(flag, value);
    } else if (flag == "--twilio-ca-file") {
        settings.rest.ca_file = need_value(flag, value);
    } else if (flag == "--twilio-timeout-ms") {
        const std::string text = need_value(flag, value);
        long long ms = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), ms);
        if (ec != std::errc{} || end != text.data() + text.size() || ms < 1 || ms > 600'000) {
            throw std::runtime_error("--twilio-timeout-ms must be 1..600000, got '" + text + "'");
        }
        settings.rest.timeout = std::chrono::milliseconds(ms);
    } else {
        return 0;
    }
    return 2;
}

void finish_twilio_settings(twilio_settings& settings,
                            const std::function<const char*(const char*)>& getenv_fn) {
    fill_from_env(settings.public_url, "CALLSTREAM_PUBLIC_URL", getenv_fn);
    fill_from_env(settings.api_token, "CALLSTREAM_API_TOKEN", getenv_fn);
    fill_from_env(settings.default_from, "TWILIO_FROM", getenv_fn);
    fill_from_env(settings.auth_token, "TWILIO_AUTH_TOKEN", getenv_fn);
    if (settings.rest.api_base == twilio_rest_config{}.api_base) {
        std::string base;
        fill_from_env(base, "TWILIO_API_BASE", getenv_fn);
        if (!base.empty()) {
            settings.rest.api_base = base;
        }
    }
    while (!settings.public_url.empty() && settings.public_url.back() == '/') {
        settings.public_url.pop_back();
    }
    if (!settings.public_url.empty()) {
        auto url = boost::urls::parse_absolute_uri(settings.public_url);
        if (!url || (url->scheme() != "https" && url->scheme() != "http") || url->host().empty() ||
            url->has_query() || url->has_fragment()) {
            throw std::runtime_error("--public-url must look like https://host[:port][/prefix], "
                                     "got '" +
                                     settings.public_url + "'");
        }
    }

    auto& creds = settings.rest.credentials;
    std::string api_key;
    std::string api_secret;
    fill_from_env(creds.account_sid, "TWILIO_ACCOUNT_SID", getenv_fn);
    fill_from_env(api_key, "TWILIO_API_KEY", getenv_fn);
    fill_from_env(api_secret, "TWILIO_API_SECRET", getenv_fn);
    if (!api_key.empty() != !api_secret.empty()) {
        throw std::runtime_error("set both TWILIO_API_KEY and TWILIO_API_SECRET, or neither");
    }
    // An API key is Twilio's recommendation for REST calls; the auth token still signs webhooks.
    if (!api_key.empty()) {
        creds.username = api_key;
        creds.password = api_secret;
    } else {
        creds.username = creds.account_sid;
        creds.password = settings.auth_token;
    }
    settings.rest_configured = !creds.account_sid.empty() && !creds.password.empty();
    if (!creds.account_sid.empty() &&
        (creds.account_sid.size() != 34 || creds.account_sid.rfind("AC", 0) != 0)) {
        throw std::runtime_error("TWILIO_ACCOUNT_SID must be AC followed by 32 characters");
    }
}

const char* twilio_flags_help() {
    return "  --public-url URL        public https base Twilio reaches (env "
           "CALLSTREAM_PUBLIC_URL)\n"
           "  --api-token TOKEN       bearer token for /make-call and /calls (env "
           "CALLSTREAM_API_TOKEN)\n"
           "  --twilio-from FROM      default caller ID for /make-call (env TWILIO_FROM)\n"
           "  --twilio-api-base URL   Twilio REST base, default https://api.twilio.com\n"
           "  --twilio-ca-file PEM    CA bundle to verify the Twilio REST host with\n"
           "  --twilio-timeout-ms MS  Twilio REST request timeout, default 10000\n"
           "  --no-verify-signatures  do not check X-Twilio-Signature\n"
           "  env TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN or TWILIO_API_KEY + TWILIO_API_SECRET\n";
}

} // namespace callstream::server
