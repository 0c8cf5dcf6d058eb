#include "codec/websocket_frame.hpp"

#include <algorithm>
#include <cstring>

namespace callstream::codec {
namespace {

constexpr std::uint64_t ascii_bits = 0x8080808080808080ULL;

bool is_control(ws_opcode op) noexcept {
    return (static_cast<std::uint8_t>(op) & 0x8) != 0;
}

bool known_opcode(std::uint8_t op) noexcept {
    return op <= 0x2 || (op >= 0x8 && op <= 0xA);
}

std::uint64_t load_be(const std::uint8_t* p, std::size_t n) noexcept {
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        v = (v << 8) | p[i];
    }
    return v;
}

ws_frame_header make_header(ws_opcode opcode, std::uint64_t n, bool fin, const std::uint8_t* key) {
    ws_frame_header h;
    auto* p = h.data.data();
    p[0] = static_cast<std::uint8_t>((fin ? 0x80 : 0x00) | static_cast<std::uint8_t>(opcode));
    const std::uint8_t mask_bit = key != nullptr ? 0x80 : 0x00;
    std::size_t at = 2;
    if (n < 126) {
        p[1] = static_cast<std::uint8_t>(mask_bit | n);
    } else if (n <= 0xFFFF) {
        p[1] = static_cast<std::uint8_t>(mask_bit | 126);
        p[2] = static_cast<std::uint8_t>(n >> 8);
        p[3] = static_cast<std::uint8_t>(n);
        at = 4;
    } else {
        p[1] = static_cast<std::uint8_t>(mask_bit | 127);
        for (std::size_t i = 0; i < 8; ++i) {
            p[2 + i] = static_cast<std::uint8_t>(n >> (56 - 8 * i));
        }
        at = 10;
    }
    if (key != nullptr) {
        std::memcpy(p + at, key, 4);
        at += 4;
    }
    h.size = static_cast<std::uint8_t>(at);
    return h;
}

} // namespace

bool ws_close_code_valid(std::uint16_t code) noexcept {
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

bool utf8_validator::feed(std::span<const std::uint8_t> bytes) noexcept {
    const std::uint8_t* p = bytes.data();
    const std::uint8_t* const end = p + bytes.size();
    while (p < end) {
        if (need_ == 0) {
            // ASCII runs (every byte of JSON but the odd accented name) 8 bytes at a time.
            while (end - p >= 8) {
                std::uint64_t w = 0;
                std::memcpy(&w, p, 8);
                if ((w & ascii_bits) != 0) {
                    break;
                }
                p += 8;
            }
            if (p == end) {
                break;
            }
            const std::uint8_t b = *p++;
            if (b < 0x80) {
                continue;
            }
            // The lead byte fixes how many continuation bytes follow and, for E0/ED/F0/F4, a
            // narrower range for the first of them (no overlongs, surrogates, > U+10FFFF).
            lo_ = 0x80;
            hi_ = 0xBF;
            if (b >= 0xC2 && b <= 0xDF) {
                need_ = 1;
            } else if (b >= 0xE0 && b <= 0xEF) {
                need_ = 2;
                if (b == 0xE0) {
                    lo_ = 0xA0;
                } else if (b == 0xED) {
                    hi_ = 0x9F;
                }
            } else if (b >= 0xF0 && b <= 0xF4) {
                need_ = 3;
                if (b == 0xF0) {
                    lo_ = 0x90;
                } else if (b == 0xF4) {
                    hi_ = 0x8F;
                }
            } else {
                return false;
            }
            continue;
        }
        const std::uint8_t b = *p++;
        if (b < lo_ || b > hi_) {
            return false;
        }
        --need_;
        lo_ = 0x80;
        hi_ = 0xBF;
    }
    return true;
}

bool utf8_valid(std::span<const std::uint8_t> bytes) noexcept {
    utf8_validator v;
    return v.feed(bytes) && v.complete();
}

void ws_apply_mask(std::span<std::uint8_t> bytes, std::array<std::uint8_t, 4> key,
                   std::size_t offset) noexcept {
    // The key rotated so that its first byte lines up with bytes[0], repeated to 8 bytes.
    std::array<std::uint8_t, 8> k8{};
    for (std::size_t i = 0; i < 8; ++i) {
        k8[i] = key[(offset + i) & 3];
    }
    std::uint64_t k = 0;
    std::memcpy(&k, k8.data(), 8);
    std::uint8_t* p = bytes.data();
    std::size_t n = bytes.size();
    while (n >= 8) {
        std::uint64_t w = 0;
        std::memcpy(&w, p, 8);
        w ^= k;
        std::memcpy(p, &w, 8);
        p += 8;
        n -= 8;
    }
    for (std::size_t i = 0; i < n; ++i) {
        p[i] ^= k8[i];
    }
}

ws_event ws_frame_reader::fail(std::uint16_t code, std::string_view reason) {
    failed_ = true;
    fail_code_ = code;
    fail_reason_.assign(reason);
    ws_event e;
    e.kind = ws_event_kind::error;
    e.close_code = code;
    e.reason = fail_reason_;
    return e;
}

ws_event ws_frame_reader::next(std::span<std::uint8_t> in) {
    if (failed_) {
        ws_event e;
        e.kind = ws_event_kind::error;
        e.close_code = fail_code_;
        e.reason = fail_reason_;
        return e;
    }
    std::size_t at = 0; // bytes of `in` taken by earlier fragments in this call
    for (;;) {
        const std::span<std::uint8_t> rest = in.subspan(at);
        ws_event more;
        more.consumed = at;
        if (rest.size() < 2) {
            more.bytes_needed = 2;
            return more;
        }
        const std::uint8_t b0 = rest[0];
        const std::uint8_t b1 = rest[1];
        const bool fin = (b0 & 0x80) != 0;
        const std::uint8_t raw_op = b0 & 0x0F;
        // Every rule the first two bytes decide is checked before waiting for the rest, so a
        // violation is refused at once rather than after its announced payload.
        if ((b0 & 0x70) != 0) {
            return fail(ws_close::protocol_error, "RSV bits set without a negotiated extension");
        }
        if (!known_opcode(raw_op)) {
            return fail(ws_close::protocol_error, "reserved opcode");
        }
        const bool masked = (b1 & 0x80) != 0;
        if (limits_.peer == ws_peer::client && !masked) {
            return fail(ws_close::protocol_error, "client frames must be masked");
        }
        if (limits_.peer == ws_peer::server && masked) {
            return fail(ws_close::protocol_error, "server frames must not be masked");
        }
        const auto op = static_cast<ws_opcode>(raw_op);
        const std::uint8_t len7 = b1 & 0x7F;
        if (is_control(op)) {
            if (len7 > 125) {
                return fail(ws_close::protocol_error, "control frame over 125 bytes");
            }
            if (!fin) {
                return fail(ws_close::protocol_error, "fragmented control frame");
            }
        } else if (op == ws_opcode::continuation && !in_message_) {
            return fail(ws_close::protocol_error, "continuation frame without a message");
        } else if (op != ws_opcode::continuation && in_message_) {
            return fail(ws_close::protocol_error, "new message before the last one ended");
        }
        const std::size_t length_bytes = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        const std::size_t header = 2 + length_bytes + (masked ? 4 : 0);
        if (rest.size() < header) {
            more.bytes_needed = header;
            return more;
        }
        std::uint64_t length = len7;
        if (length_bytes != 0) {
            length = load_be(rest.data() + 2, length_bytes);
            if (length_bytes == 8 && (length >> 63) != 0) {
                return fail(ws_close::protocol_error, "64-bit length with the top bit set");
            }
            if ((length_bytes == 2 && length < 126) || (length_bytes == 8 && length <= 0xFFFF)) {
                return fail(ws_close::protocol_error, "length not in its shortest encoding");
            }
        }
        if (!is_control(op)) {
            const std::size_t so_far = in_message_ ? assembled_ : 0;
            if (length > limits_.max_message_bytes - so_far) {
                return fail(ws_close::too_big,
                            "message over " + std::to_string(limits_.max_message_bytes) + " bytes");
            }
        }
        const auto n = static_cast<std::size_t>(length);
        if (rest.size() - header < n) {
            more.bytes_needed = header + n;
            return more;
        }
        const std::span<std::uint8_t> payload = rest.subspan(header, n);
        if (masked) {
            std::array<std::uint8_t, 4> key{};
            std::memcpy(key.data(), rest.data() + header - 4, 4);
            ws_apply_mask(payload, key);
        }
        at += header + n;

        if (is_control(op)) {
            ws_event e;
            e.kind = ws_event_kind::control;
            e.opcode = op;
            e.payload = payload;
            e.consumed = at;
            if (op == ws_opcode::close) {
                if (n == 1) {
                    return fail(ws_close::protocol_error, "close frame with a 1-byte body");
                }
                e.close_code = ws_close::no_status;
                if (n >= 2) {
                    e.close_code = static_cast<std::uint16_t>(load_be(payload.data(), 2));
                    if (!ws_close_code_valid(e.close_code)) {
                        return fail(ws_close::protocol_error,
                                    "invalid close code " + std::to_string(e.close_code));
                    }
                    const auto reason = payload.subspan(2);
                    if (!utf8_valid(reason)) {
                        return fail(ws_close::protocol_error, "close reason is not UTF-8");
                    }
                    e.reason = {reinterpret_cast<const char*>(reason.data()), reason.size()};
                }
            }
            return e;
        }

        if (op != ws_opcode::continuation) {
            message_opcode_ = op;
            utf8_.reset();
        }
        if (message_opcode_ == ws_opcode::text && !utf8_.feed(payload)) {
            return fail(ws_close::bad_payload, "text message is not UTF-8");
        }
        if (fin && message_opcode_ == ws_opcode::text && !utf8_.complete()) {
            return fail(ws_close::bad_payload, "text message ends inside a UTF-8 character");
        }
        if (fin && !in_message_) {
            // The common case: a whole message in one frame, handed over in place.
            ws_event e;
            e.kind = ws_event_kind::message;
            e.opcode = op;
            e.payload = payload;
            e.consumed = at;
            return e;
        }
        // A fragment: into the reassembly buffer (the frame's bytes in `in` are then done).
        if (!in_message_) {
            in_message_ = true;
            assembled_ = 0;
        }
        if (assembly_.size() < assembled_ + n + limits_.tail_padding) {
            assembly_.resize(assembled_ + n + limits_.tail_padding);
        }
        std::copy(payload.begin(), payload.end(),
                  assembly_.begin() + static_cast<long>(assembled_));
        assembled_ += n;
        if (fin) {
            in_message_ = false;
            ws_event e;
            e.kind = ws_event_kind::message;
            e.opcode = message_opcode_;
            e.payload = {assembly_.data(), assembled_};
            e.consumed = at;
            e.readable = assembly_.size() - assembled_;
            return e;
        }
    }
}

ws_frame_header ws_make_header(ws_opcode opcode, std::uint64_t payload_bytes, bool fin) noexcept {
    return make_header(opcode, payload_bytes, fin, nullptr);
}

ws_frame_header ws_make_masked_header(ws_opcode opcode, std::uint64_t payload_bytes,
                                      std::array<std::uint8_t, 4> key, bool fin) noexcept {
    return make_header(opcode, payload_bytes, fin, key.data());
}

std::string_view ws_cut_close_reason(std::string_view reason) noexcept {
    if (reason.size() <= ws_max_close_reason_bytes) {
        return reason;
    }
    std::size_t n = ws_max_close_reason_bytes;
    // Back off over continuation bytes (10xxxxxx) so no character is split.
    while (n > 0 && (static_cast<std::uint8_t>(reason[n]) & 0xC0) == 0x80) {
        --n;
    }
    return reason.substr(0, n);
}

namespace {

// A control frame of `body` (at most 125 bytes), masked with `mask_key` when one is given.
std::string control_frame(ws_opcode opcode, std::string_view body,
                          const std::array<std::uint8_t, 4>* mask_key) {
    const auto h = mask_key != nullptr ? ws_make_masked_header(opcode, body.size(), *mask_key)
                                       : ws_make_header(opcode, body.size());
    std::string out(reinterpret_cast<const char*>(h.data.data()), h.size);
    out += body;
    if (mask_key != nullptr) {
        ws_apply_mask({reinterpret_cast<std::uint8_t*>(out.data()) + h.size, body.size()},
                      *mask_key);
    }
    return out;
}

} // namespace

std::string ws_make_close_frame(std::uint16_t code, std::string_view reason,
                                const std::array<std::uint8_t, 4>* mask_key) {
    std::string body;
    if (code != ws_close::no_status) {
        const auto cut = ws_cut_close_reason(reason);
        body.push_back(static_cast<char>(code >> 8));
        body.push_back(static_cast<char>(code & 0xFF));
        body.append(cut);
    }
    return control_frame(ws_opcode::close, body, mask_key);
}

std::string ws_make_control_frame(ws_opcode opcode, std::span<const std::uint8_t> payload,
                                  const std::array<std::uint8_t, 4>* mask_key) {
    const auto body = payload.first(std::min<std::size_t>(payload.size(), 125));
    return control_frame(opcode, {reinterpret_cast<const char*>(body.data()), body.size()},
                         mask_key);
}

} // namespace callstream::codec
