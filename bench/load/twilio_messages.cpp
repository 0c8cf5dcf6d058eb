#include "bench/load/twilio_messages.hpp"

#include <cstring>

#include "codec/base64.hpp"

namespace callstream::bench {
namespace {

unsigned digit_count(std::uint64_t v) noexcept {
    unsigned n = 1;
    while (v >= 10) {
        v /= 10;
        ++n;
    }
    return n;
}

// Writes exactly `digits` decimal digits of v ending at out + digits.
void write_digits(char* out, std::uint64_t v, unsigned digits) noexcept {
    for (unsigned i = digits; i > 0; --i) {
        out[i - 1] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
}

std::string quoted(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    out += s;
    out += '"';
    return out;
}

} // namespace

std::string make_sid(std::string_view prefix, std::mt19937_64& rng) {
    static constexpr char hex[] = "0123456789abcdef";
    std::string sid(prefix);
    for (int half = 0; half < 2; ++half) {
        std::uint64_t bits = rng();
        for (int i = 0; i < 16; ++i, bits >>= 4) {
            sid += hex[bits & 15];
        }
    }
    return sid;
}

void embed_frame_id(std::span<std::uint8_t> ulaw, std::uint16_t id) noexcept {
    for (std::size_t i = 0; i < frame_id_bytes; ++i) {
        const unsigned nibble = (id >> (4 * (frame_id_bytes - 1 - i))) & 15u;
        ulaw[i] = static_cast<std::uint8_t>(0xF0u | nibble);
    }
}

std::optional<std::uint16_t> frame_id_from_base64(std::string_view payload) noexcept {
    if (payload.size() < 8) {
        return std::nullopt;
    }
    std::array<std::uint8_t, 6> head{};
    std::size_t written = 0;
    if (codec::base64_decode(payload.substr(0, 8), head, written) || written != 6) {
        return std::nullopt;
    }
    unsigned id = 0;
    for (std::size_t i = 0; i < frame_id_bytes; ++i) {
        if ((head[i] & 0xF0u) != 0xF0u) {
            return std::nullopt;
        }
        id = (id << 4) | (head[i] & 15u);
    }
    return static_cast<std::uint16_t>(id);
}

std::string_view find_payload(std::string_view json) noexcept {
    static constexpr std::string_view key = "\"payload\"";
    const auto at = json.find(key);
    if (at == std::string_view::npos) {
        return {};
    }
    std::size_t p = at + key.size();
    auto skip_space = [&] {
        while (p < json.size() &&
               (json[p] == ' ' || json[p] == '\t' || json[p] == '\n' || json[p] == '\r')) {
            ++p;
        }
    };
    skip_space();
    if (p >= json.size() || json[p] != ':') {
        return {};
    }
    ++p;
    skip_space();
    if (p >= json.size() || json[p] != '"') {
        return {};
    }
    ++p;
    const auto end = json.find('"', p);
    if (end == std::string_view::npos) {
        return {};
    }
    return json.substr(p, end - p);
}

std::string connected_message() {
    return R"({"event":"connected","protocol":"Call","version":"1.0.0"})";
}

std::string start_message(const call_identity& call, std::string_view custom_parameters) {
    std::string m = R"({"event":"start","sequenceNumber":"1","start":{"accountSid":)";
    m += quoted(call.account_sid);
    m += R"(,"streamSid":)";
    m += quoted(call.stream_sid);
    m += R"(,"callSid":)";
    m += quoted(call.call_sid);
    m += R"(,"tracks":["inbound"],"customParameters":{)";
    m += custom_parameters;
    m += R"(},"mediaFormat":{"encoding":"audio/x-mulaw","sampleRate":8000,"channels":1}},)";
    m += R"("streamSid":)";
    m += quoted(call.stream_sid);
    m += '}';
    return m;
}

std::string dtmf_message(const call_identity& call, std::uint64_t sequence_number, char digit) {
    std::string m = R"({"event":"dtmf","streamSid":)";
    m += quoted(call.stream_sid);
    m += R"(,"sequenceNumber":)";
    m += quoted(std::to_string(sequence_number));
    m += R"(,"dtmf":{"track":"inbound_track","digit":)";
    m += quoted(std::string_view(&digit, 1));
    m += "}}";
    return m;
}

std::string mark_message(const call_identity& call, std::uint64_t sequence_number,
                         std::uint64_t mark_number) {
    std::string m = R"({"event":"mark","sequenceNumber":)";
    m += quoted(std::to_string(sequence_number));
    m += R"(,"streamSid":)";
    m += quoted(call.stream_sid);
    m += R"(,"mark":{"name":)";
    m += quoted("mark-" + std::to_string(mark_number));
    m += "}}";
    return m;
}

std::string stop_message(const call_identity& call, std::uint64_t sequence_number) {
    std::string m = R"({"event":"stop","sequenceNumber":)";
    m += quoted(std::to_string(sequence_number));
    m += R"(,"stop":{"accountSid":)";
    m += quoted(call.account_sid);
    m += R"(,"callSid":)";
    m += quoted(call.call_sid);
    m += R"(},"streamSid":)";
    m += quoted(call.stream_sid);
    m += '}';
    return m;
}

media_message::media_message(std::string_view stream_sid) {
    const std::size_t n = std::min(stream_sid.size(), stream_sid_.size());
    std::memcpy(stream_sid_.data(), stream_sid.data(), n);
    layout(1, 1, 1);
    relayouts_ = 0;
}

void media_message::layout(unsigned seq_digits, unsigned chunk_digits,
                           unsigned ts_digits) noexcept {
    char* const start = buf_.data();
    char* o = start;
    auto put = [&o](std::string_view s) {
        std::memcpy(o, s.data(), s.size());
        o += s.size();
    };
    put(R"({"event":"media","sequenceNumber":")");
    seq_pos_ = static_cast<std::size_t>(o - start);
    o += seq_digits;
    put(R"(","media":{"track":"inbound","chunk":")");
    chunk_pos_ = static_cast<std::size_t>(o - start);
    o += chunk_digits;
    put(R"(","timestamp":")");
    ts_pos_ = static_cast<std::size_t>(o - start);
    o += ts_digits;
    put(R"(","payload":")");
    payload_pos_ = static_cast<std::size_t>(o - start);
    o += frame_base64_chars;
    put(R"("},"streamSid":")");
    put(std::string_view(stream_sid_.data(), stream_sid_.size()));
    put(R"("})");
    size_ = static_cast<std::size_t>(o - start);
    seq_digits_ = seq_digits;
    chunk_digits_ = chunk_digits;
    ts_digits_ = ts_digits;
    ++relayouts_;
}

void media_message::set(std::uint64_t sequence_number, std::uint64_t chunk,
                        std::uint64_t timestamp_ms, std::string_view payload_base64,
                        std::string_view id_head) noexcept {
    const unsigned sd = digit_count(sequence_number);
    const unsigned cd = digit_count(chunk);
    const unsigned td = digit_count(timestamp_ms);
    if (sd != seq_digits_ || cd != chunk_digits_ || td != ts_digits_) {
        layout(sd, cd, td);
    }
    write_digits(buf_.data() + seq_pos_, sequence_number, sd);
    write_digits(buf_.data() + chunk_pos_, chunk, cd);
    write_digits(buf_.data() + ts_pos_, timestamp_ms, td);
    std::memcpy(buf_.data() + payload_pos_, payload_base64.data(), frame_base64_chars);
    std::memcpy(buf_.data() + payload_pos_, id_head.data(), 8);
}

} // namespace callstream::bench
