#pragma once
// RFC 6455 framing after the upgrade: a frame reader (client frames in, for a server; server
// frames in, for a client) and a frame writer (server frames out, or masked client frames).
//
// Pure: no I/O, no allocation per frame in the steady state, callable from any thread; one
// reader per connection, used by one thread at a time. Units are bytes.
//
// Reader: the caller keeps the bytes received and not yet consumed in one contiguous buffer and
// calls next() on them. next() parses whole frames only (a frame's header and payload must both
// be in the buffer: need_more says how many bytes are missing, at most one frame's worth, which
// --max-message-bytes bounds), unmasks payloads in place (it writes into `in`), reassembles
// fragmented messages in its own buffer and checks every rule of RFC 6455 sections 5 and 8.1 an
// endpoint must: RSV bits (no extension is ever negotiated), opcodes, masking (client frames
// masked, server frames not: ws_reader_limits::peer), minimal
// length encodings with the top bit of a 64-bit length clear, control frames of at most 125
// bytes and unfragmented, continuation order, the message size limit, UTF-8 of text messages
// (incrementally, across fragments) and of close reasons, and the close codes of section 7.4.
// Errors are returned as an event carrying the close code to send and a reason; the reader then
// stays failed (every later call returns the same error). Nothing throws.
//
// Writer: frame headers go into a small caller-owned array, so a message is written as a
// gather [header, payload] with no copy of the payload.

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::codec {

// Frame opcodes (RFC 6455 section 5.2).
enum class ws_opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

// Close codes the reader fails a connection with (RFC 6455 section 7.4.1).
namespace ws_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t no_status = 1005; // a close frame with an empty body (never sent)
inline constexpr std::uint16_t bad_payload = 1007;
inline constexpr std::uint16_t too_big = 1009;
} // namespace ws_close

// True for the codes a close frame may carry on the wire: 1000-1003, 1007-1011, 3000-4999.
bool ws_close_code_valid(std::uint16_t code) noexcept;

// True when `bytes` is complete, valid UTF-8 (no overlongs, surrogates or code points over
// U+10FFFF).
bool utf8_valid(std::span<const std::uint8_t> bytes) noexcept;

// UTF-8 validation of a text split in pieces (a fragmented message): feed() each piece in order,
// then complete() says whether the text ended on a character boundary. Fails as early as the
// first byte that cannot start or continue a character.
class utf8_validator {
  public:
    // False once the bytes seen so far cannot be the start of valid UTF-8.
    bool feed(std::span<const std::uint8_t> bytes) noexcept;
    bool complete() const noexcept { return need_ == 0; }
    void reset() noexcept { need_ = 0, lo_ = 0x80, hi_ = 0xBF; }

  private:
    std::uint8_t need_ = 0; // continuation bytes still owed by the current character
    std::uint8_t lo_ = 0x80;
    std::uint8_t hi_ = 0xBF; // the range the next continuation byte must be in
};

// XORs `bytes` with the 4-byte masking key (RFC 6455 section 5.3), 8 bytes at a time; `offset`
// is the position of bytes[0] within the masked payload. Masks and unmasks alike.
void ws_apply_mask(std::span<std::uint8_t> bytes, std::array<std::uint8_t, 4> key,
                   std::size_t offset = 0) noexcept;

enum class ws_event_kind : std::uint8_t {
    need_more, // a frame is not complete yet: read more, keep the unconsumed bytes, call again
    message,   // a whole text or binary message
    control,   // a close, ping or pong frame (may arrive between a message's fragments)
    error,     // a protocol violation: close with `close_code` and `reason`, then stop reading
};

struct ws_event {
    ws_event_kind kind = ws_event_kind::need_more;
    ws_opcode opcode = ws_opcode::continuation; // message: text or binary; control: its opcode
    // message and control: the (unmasked) payload. A view into `in` (a message in one frame,
    // every control frame) or into the reader's reassembly buffer (a fragmented message), valid
    // until the next call to next() and until the caller drops or moves the bytes of `in`.
    std::span<const std::uint8_t> payload;
    // The first `consumed` bytes of `in` are done with (frames read, fragments taken into the
    // reassembly buffer): drop them once the event is handled (payload views point into them).
    std::size_t consumed = 0;
    // need_more: bytes beyond `consumed` the next frame needs in all (header and payload)
    // before next() can make progress; the caller's buffer must be able to hold them.
    std::size_t bytes_needed = 0;
    // control close: the peer's code (ws_close::no_status for an empty body); error: the code
    // to fail the connection with.
    std::uint16_t close_code = 0;
    // control close: the peer's reason (UTF-8, a view like payload); error: what was wrong, for
    // the close frame and the log (static or owned by the reader).
    std::string_view reason;
    // message: the payload's bytes past payload.size() that may be read (never written) from
    // payload.data(): at least the reader's tail_padding for a reassembled message; for a view
    // into `in` the caller knows its own buffer.
    std::size_t readable = 0;
};

// Which end sent the frames a reader reads: a server reads client frames, which must be masked;
// a client reads server frames, which must not be (RFC 6455 section 5.1).
enum class ws_peer : std::uint8_t { client, server };

struct ws_reader_limits {
    std::size_t max_message_bytes = 64 * 1024; // a whole message, over all its fragments (1009)
    // Readable bytes kept after a reassembled message (simdjson's padding, for one).
    std::size_t tail_padding = 64;
    ws_peer peer = ws_peer::client; // who sent the frames read
};

class ws_frame_reader {
  public:
    explicit ws_frame_reader(ws_reader_limits limits = {}) : limits_(limits) {}

    // Reads from the start of `in`: the bytes received and not yet consumed. Unmasks in place.
    // Returns the first message, control frame, error or need_more found; non-final fragments
    // before it are taken into the reassembly buffer and counted in `consumed`.
    ws_event next(std::span<std::uint8_t> in);

    // True while a fragmented message has begun and not ended.
    bool in_message() const noexcept { return in_message_; }

  private:
    ws_event fail(std::uint16_t code, std::string_view reason);

    ws_reader_limits limits_;
    bool failed_ = false;
    std::uint16_t fail_code_ = 0;
    std::string fail_reason_;

    bool in_message_ = false; // a fragmented message is being reassembled
    ws_opcode message_opcode_ = ws_opcode::text;
    std::vector<std::uint8_t> assembly_; // its bytes, then tail_padding more
    std::size_t assembled_ = 0;          // how many of them are the message's
    utf8_validator utf8_;
};

// The largest frame header: 2 bytes, 8 of extended length, 4 of masking key.
inline constexpr std::size_t ws_max_header_bytes = 14;

// A frame header, built in place (no allocation); bytes() is what goes on the wire before the
// payload.
struct ws_frame_header {
    std::array<std::uint8_t, ws_max_header_bytes> data{};
    std::uint8_t size = 0; // 2, 4 or 10 bytes (6, 8 or 14 when masked)
    std::span<const std::uint8_t> bytes() const noexcept { return {data.data(), size}; }
};

// A server frame header (unmasked) with FIN set for a payload of `payload_bytes`.
ws_frame_header ws_make_header(ws_opcode opcode, std::uint64_t payload_bytes,
                               bool fin = true) noexcept;
// A client frame header: masked with `key`. The caller masks the payload with ws_apply_mask.
ws_frame_header ws_make_masked_header(ws_opcode opcode, std::uint64_t payload_bytes,
                                      std::array<std::uint8_t, 4> key, bool fin = true) noexcept;

// The longest close reason a close frame can carry (125 bytes of control payload less the code).
inline constexpr std::size_t ws_max_close_reason_bytes = 123;

// `reason` cut to at most ws_max_close_reason_bytes at a UTF-8 character boundary.
std::string_view ws_cut_close_reason(std::string_view reason) noexcept;

// Whole control frames, as bytes to write: a close frame with `code` and `reason` (cut with
// ws_cut_close_reason; code ws_close::no_status sends an empty body), and a ping or pong
// carrying up to 125 bytes of `payload` (longer is cut). Unmasked (a server's) unless `mask_key`
// is given: then masked with it, as a client must send them.
std::string ws_make_close_frame(std::uint16_t code, std::string_view reason,
                                const std::array<std::uint8_t, 4>* mask_key = nullptr);
std::string ws_make_control_frame(ws_opcode opcode, std::span<const std::uint8_t> payload,
                                  const std::array<std::uint8_t, 4>* mask_key = nullptr);

} // namespace callstream::codec
