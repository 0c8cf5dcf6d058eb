// libFuzzer harness for codec::ws_frame_reader, the parser of every byte a WebSocket peer sends
// callstream after the upgrade (callers' frames to the server, upstreams' frames to the bridge).
// Properties: it never reads or writes past its input nor crashes; every event's payload lies
// within the input or the reader's reassembly buffer and `consumed` never exceeds the input; text
// messages and close reasons it delivers are valid UTF-8 and close codes valid; the events are the
// same whether the bytes arrive at once or split at any point (the first input byte picks it) as a
// socket may split them; and a message written back as a masked client frame reads back as itself.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "codec/websocket_frame.hpp"

namespace {

using namespace callstream::codec;

struct seen {
    ws_event_kind kind;
    ws_opcode opcode;
    std::string payload;
    std::uint16_t code;
    bool operator==(const seen&) const = default;
};

void check(bool ok) {
    if (!ok) {
        std::abort();
    }
}

// Reads `input` delivered in two pieces (the first `cut` bytes, then the rest).
std::vector<seen> read_split(const std::uint8_t* data, std::size_t size, std::size_t cut,
                             const ws_reader_limits& limits) {
    ws_frame_reader reader(limits);
    std::vector<seen> out;
    // Exactly-sized heap copies so ASan catches any access past the bytes received.
    std::vector<std::uint8_t> pending;
    std::size_t fed = 0;
    for (const std::size_t end : {cut, size}) {
        pending.insert(pending.end(), data + fed, data + end);
        fed = end;
        for (;;) {
            std::vector<std::uint8_t> buffer(pending);
            const auto e = reader.next(buffer);
            check(e.consumed <= buffer.size());
            if (e.kind == ws_event_kind::error) {
                check(!e.reason.empty() && e.close_code >= 1000);
                out.push_back({e.kind, e.opcode, {}, e.close_code});
                return out;
            }
            if (e.kind == ws_event_kind::need_more) {
                check(e.bytes_needed > buffer.size() - e.consumed);
            } else {
                std::string payload(reinterpret_cast<const char*>(e.payload.data()),
                                    e.payload.size());
                if (e.kind == ws_event_kind::message) {
                    check(e.payload.size() <= limits.max_message_bytes);
                    check(e.opcode != ws_opcode::text || utf8_valid(e.payload));
                }
                if (e.kind == ws_event_kind::control) {
                    check(e.payload.size() <= 125);
                    if (e.opcode == ws_opcode::close && e.close_code != ws_close::no_status) {
                        check(ws_close_code_valid(e.close_code));
                        check(utf8_valid({reinterpret_cast<const std::uint8_t*>(e.reason.data()),
                                          e.reason.size()}));
                    }
                }
                out.push_back({e.kind, e.opcode, std::move(payload), e.close_code});
            }
            // What the reader unmasked in place is what stays pending.
            pending.assign(buffer.begin() + static_cast<long>(e.consumed), buffer.end());
            if (e.kind == ws_event_kind::need_more) {
                break;
            }
        }
    }
    return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) {
        return 0;
    }
    ws_reader_limits limits;
    limits.max_message_bytes = 1 + (static_cast<std::size_t>(data[0]) << 6); // up to 16 KiB
    limits.tail_padding = 64;
    // The top bit of the second byte picks the role: a server reading client frames (masked),
    // or a client (the bridge's upstream socket) reading server frames (unmasked).
    limits.peer = (data[1] & 0x80) != 0 ? ws_peer::server : ws_peer::client;
    const std::size_t cut = (data[1] & 0x7F) % (size - 1);
    data += 2;
    size -= 2;
    const auto whole = read_split(data, size, size, limits);
    const auto split = read_split(data, size, cut < size ? cut : size, limits);
    check(whole == split);
    // Messages written back through the writer (masked as a client would, or unmasked as a
    // server would, for the role read) read back as themselves, in one frame or in two fragments.
    for (const auto& s : whole) {
        if (s.kind != ws_event_kind::message) {
            continue;
        }
        const std::array<std::uint8_t, 4> key{0x11, 0x22, 0x33, 0x44};
        const std::size_t half = s.payload.size() / 2;
        std::vector<std::size_t> pieces{s.payload.size()};
        if (half > 0) {
            pieces = {half, s.payload.size() - half};
        }
        std::vector<std::uint8_t> wire;
        std::size_t done = 0;
        for (const std::size_t n : pieces) {
            const bool last = done + n == s.payload.size();
            const auto op = done == 0 ? s.opcode : ws_opcode::continuation;
            const bool masked = limits.peer == ws_peer::client;
            const auto h =
                masked ? ws_make_masked_header(op, n, key, last) : ws_make_header(op, n, last);
            wire.insert(wire.end(), h.bytes().begin(), h.bytes().end());
            std::vector<std::uint8_t> body(s.payload.begin() + static_cast<long>(done),
                                           s.payload.begin() + static_cast<long>(done + n));
            if (masked) {
                ws_apply_mask(body, key);
            }
            wire.insert(wire.end(), body.begin(), body.end());
            done += n;
        }
        const auto back = read_split(wire.data(), wire.size(), wire.size(), limits);
        check(back.size() == 1 && back[0] == s);
    }
    return 0;
}
