#include "server/cluster/redis_parameter_store.hpp"

#include <algorithm>
#include <charconv>

#include "server/app/log.hpp"
#include "server/cluster/redis_client.hpp"

namespace callstream::server {
namespace {

void append_field(std::string& out, std::string_view field) {
    out += std::to_string(field.size());
    out += ':';
    out += field;
}

// Reads one "<n>:<bytes>" field from the front of `in`.
std::optional<std::string> read_field(std::string_view& in) {
    const auto colon = in.find(':');
    if (colon == std::string_view::npos || colon == 0 || colon > 10) {
        return std::nullopt;
    }
    std::size_t n = 0;
    const auto [end, ec] = std::from_chars(in.data(), in.data() + colon, n);
    if (ec != std::errc{} || end != in.data() + colon || n > in.size() - colon - 1) {
        return std::nullopt;
    }
    std::string field(in.substr(colon + 1, n));
    in.remove_prefix(colon + 1 + n);
    return field;
}

// The ids random_parameter_id() makes; anything else is unknown without asking Redis.
bool is_parameter_id(std::string_view id) {
    return id.size() == 32 && std::all_of(id.begin(), id.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}

} // namespace

std::string parameters_key(std::string_view id) {
    return "cs:params:" + std::string(id);
}

std::string encode_stream_parameters(const stream_parameters& params) {
    std::string out;
    for (const auto& [name, value] : params) {
        append_field(out, name);
        append_field(out, value);
    }
    return out;
}

std::optional<stream_parameters> decode_stream_parameters(std::string_view encoded) {
    stream_parameters params;
    while (!encoded.empty()) {
        auto name = read_field(encoded);
        if (!name) {
            return std::nullopt;
        }
        auto value = read_field(encoded);
        if (!value) {
            return std::nullopt;
        }
        params.emplace_back(std::move(*name), std::move(*value));
    }
    return params;
}

redis_parameter_store::redis_parameter_store(std::shared_ptr<redis_client> redis)
    : redis_(std::move(redis)) {}

void redis_parameter_store::put(stream_parameters params, std::chrono::seconds ttl,
                                put_handler done) {
    std::string id = random_parameter_id();
    redis_->command(
        {"SET", parameters_key(id), encode_stream_parameters(params), "EX",
         std::to_string(std::max<long long>(1, ttl.count()))},
        [id, done = std::move(done)](redis_reply r) mutable {
            if (!r.ok) {
                log(log_level::warn, "call_parameters_not_stored", {{"error", r.error}});
                id.clear();
            }
            done(std::move(id));
        });
}

void redis_parameter_store::take(std::string id, take_handler done) {
    if (!is_parameter_id(id)) {
        done(std::nullopt);
        return;
    }
    redis_->command({"GETDEL", parameters_key(id)}, [id, done = std::move(done)](redis_reply r) {
        if (!r.ok) {
            log(log_level::warn, "call_parameters_unreachable", {{"id", id}, {"error", r.error}});
            done(std::nullopt);
            return;
        }
        if (r.value.type != codec::resp_type::bulk_string) {
            done(std::nullopt); // nil: unknown, expired or taken already
            return;
        }
        auto params = decode_stream_parameters(r.value.text);
        if (!params) {
            log(log_level::warn, "call_parameters_corrupt", {{"id", id}});
        }
        done(std::move(params));
    });
}

void redis_parameter_store::discard(std::string_view id) {
    if (is_parameter_id(id)) {
        redis_->command({"DEL", parameters_key(id)}, [](redis_reply) {});
    }
}

} // namespace callstream::server
