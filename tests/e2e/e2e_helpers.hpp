#pragma once
// Shared pieces of the end-to-end tests: a started Twilio stream that checks its echo, and
// /metrics helpers that poll instead of sleeping. Test code only.

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/ws_client.hpp"

namespace callstream::testing {

inline constexpr std::size_t e2e_frame_bytes = 160;

using clock_type = std::chrono::steady_clock;

// Seconds elapsed since `t0`, for tests that check a deadline was kept.
inline double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

// μ-law 0x7F is negative zero; it decodes to 0, which encodes as 0xFF (positive zero).
inline std::vector<std::uint8_t> echo_of(std::vector<std::uint8_t> frame) {
    for (auto& b : frame) {
        if (b == 0x7F) {
            b = 0xFF;
        }
    }
    return frame;
}

// A well-behaved Twilio stream (connected + start sent) that can prove it still echoes.
struct good_stream {
    ws_client client;
    std::string sid;
    int sequence = 2;
    good_stream(std::uint16_t port, int n, bool tls = false)
        : client(port, tls), sid(twilio::stream_sid(n)) {
        client.send_text(twilio::connected());
        client.send_text(twilio::start(sid, "CA" + sid.substr(2)));
    }
    std::vector<std::uint8_t> next_frame() const {
        std::vector<std::uint8_t> frame(e2e_frame_bytes);
        for (std::size_t i = 0; i < frame.size(); ++i) {
            frame[i] = static_cast<std::uint8_t>(i * 7 + static_cast<std::size_t>(sequence) * 13);
        }
        return frame;
    }
    void send_frame(const std::vector<std::uint8_t>& frame) {
        client.send_text(twilio::media(sid, sequence, frame, sequence - 1, (sequence - 2) * 20));
        ++sequence;
    }
    // Sends one frame and returns true if exactly that frame comes back.
    bool echoes(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
        const auto frame = next_frame();
        send_frame(frame);
        const auto reply = client.read(timeout);
        if (!reply) {
            return false;
        }
        const auto payload = media_payload(*reply);
        return payload && *payload == echo_of(frame);
    }
};

inline std::string metrics_text(std::uint16_t port) {
    return http_request(port, "GET", "/metrics").body;
}

// The value of the sample `series` (e.g. `callstream_streams_active` or
// `callstream_streams_closed_total{reason="stop"}`), or nullopt if absent.
inline std::optional<double> metric_value(const std::string& text, const std::string& series) {
    const std::string needle = "\n" + series + " ";
    const auto pos = text.find(needle);
    if (pos == std::string::npos) {
        return std::nullopt;
    }
    return std::strtod(text.c_str() + pos + needle.size(), nullptr);
}

// Polls /metrics until `series` equals `value`; false on timeout.
inline bool wait_for_metric_value(std::uint16_t port, const std::string& series, double value,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (metric_value(metrics_text(port), series) == value) {
            return true;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
}

} // namespace callstream::testing
