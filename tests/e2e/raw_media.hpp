#pragma once
// Twilio media messages over a raw_socket: a masked media frame to send, and the media the
// server sends back. Test code only.

#include <string>
#include <vector>

#include "tests/e2e/e2e_helpers.hpp"
#include "tests/e2e/raw_socket.hpp"
#include "tests/support/ws_client.hpp"

namespace callstream::testing {

// A media message for `sid` whose 160 μ-law bytes all equal `sequence`.
inline std::string media_frame(const std::string& sid, int sequence) {
    std::vector<std::uint8_t> ulaw(e2e_frame_bytes, static_cast<std::uint8_t>(sequence));
    return make_frame(fin | op_text,
                      twilio::media(sid, sequence, ulaw, sequence - 1, (sequence - 2) * 20));
}

// Reads `n` media messages (skipping other frames); the sequence of their payload's first byte.
inline std::vector<int> read_media(raw_socket& raw, int n) {
    std::vector<int> firsts;
    while (static_cast<int>(firsts.size()) < n) {
        const auto f = raw.read_frame();
        if (!f || f->opcode == 0x8) {
            break;
        }
        if (f->opcode != op_text) {
            continue;
        }
        if (const auto p = media_payload(f->payload); p && !p->empty()) {
            firsts.push_back((*p)[0]);
        }
    }
    return firsts;
}

} // namespace callstream::testing
