#pragma once
// The messages a simulated Twilio call sends on its Media Streams WebSocket, built the way Twilio
// lays them out (counters as decimal JSON strings, SIDs as two letters + 32 hex digits).
//
// media_message keeps one `media` message per stream in a fixed buffer and patches it in place
// for every 20 ms frame: the payload's base64 is copied from a pre-encoded audio frame and only
// the digits of sequenceNumber/chunk/timestamp are rewritten; the whole message is laid out again
// only when one of them gains a digit. No allocation after construction. Single-threaded: each
// stream's thread owns its message.
//
// Frame ids: the first frame_id_bytes μ-law bytes of each payload carry a 16-bit frame id, four
// bits per byte in the low nibble with the high nibble set (0xF0..0xFF, quieter than -40 dBFS
// and never 0x7F, the one byte a G.711 decode/encode round trip does not return), so an echoed
// payload tells which frame it was.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>

namespace callstream::bench {

inline constexpr std::size_t frame_bytes = 160; // 20 ms of 8 kHz μ-law
inline constexpr std::size_t frame_base64_chars = 216;
inline constexpr std::size_t frame_id_bytes = 4;
inline constexpr int frame_ms = 20;

// "AC"/"CA"/"MZ" followed by 32 lowercase hex digits.
std::string make_sid(std::string_view prefix, std::mt19937_64& rng);

// Writes the id into the first frame_id_bytes bytes of `ulaw` (at least that long).
void embed_frame_id(std::span<std::uint8_t> ulaw, std::uint16_t id) noexcept;
// Reads the id back from the start of a base64 payload; nullopt when the payload does not start
// with an id this generator wrote (another server's audio, or a transformed one).
std::optional<std::uint16_t> frame_id_from_base64(std::string_view payload) noexcept;
// Finds the value of the first "payload" string in a JSON text (tolerating whitespace, as Python's
// json.dumps writes it) without parsing the rest; empty when there is none.
std::string_view find_payload(std::string_view json) noexcept;

struct call_identity {
    std::string account_sid;
    std::string call_sid;
    std::string stream_sid;
};

std::string connected_message();
// `custom_parameters` is a ready JSON object body, e.g. "\"app\":\"echo\"".
std::string start_message(const call_identity& call, std::string_view custom_parameters);
std::string dtmf_message(const call_identity& call, std::uint64_t sequence_number, char digit);
std::string mark_message(const call_identity& call, std::uint64_t sequence_number,
                         std::uint64_t mark_number);
std::string stop_message(const call_identity& call, std::uint64_t sequence_number);

class media_message {
  public:
    // Big enough for the 216-char payload, a 34-char SID and three 20-digit counters.
    static constexpr std::size_t capacity = 512;

    explicit media_message(std::string_view stream_sid);

    // Lays out the message for one frame. `payload_base64` is exactly frame_base64_chars long;
    // its first 8 characters are replaced by `id_head` (the base64 of the frame's first 6 bytes,
    // which carry the frame id).
    void set(std::uint64_t sequence_number, std::uint64_t chunk, std::uint64_t timestamp_ms,
             std::string_view payload_base64, std::string_view id_head) noexcept;

    std::string_view view() const noexcept { return {buf_.data(), size_}; }
    // How many times set() had to lay the whole message out again (a digit count changed).
    std::uint64_t relayouts() const noexcept { return relayouts_; }

  private:
    void layout(unsigned seq_digits, unsigned chunk_digits, unsigned ts_digits) noexcept;

    std::array<char, capacity> buf_{};
    std::array<char, 34> stream_sid_{};
    std::size_t size_ = 0;
    std::size_t seq_pos_ = 0;
    std::size_t chunk_pos_ = 0;
    std::size_t ts_pos_ = 0;
    std::size_t payload_pos_ = 0;
    unsigned seq_digits_ = 0;
    unsigned chunk_digits_ = 0;
    unsigned ts_digits_ = 0;
    std::uint64_t relayouts_ = 0;
};

} // namespace callstream::bench
