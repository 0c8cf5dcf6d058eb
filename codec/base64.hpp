#pragma once
// RFC 4648 base64, standard alphabet with '=' padding.
//
// Pure functions, callable from any thread. Whole blocks use SSSE3 where the CPU has it (asked
// once, at start-up), the rest plain code; both give the same bytes. Encoding never
// fails. Decoding checks every character and the padding and reports the first problem; it
// never reads past `in` nor writes past `out`. Units are bytes; buffers are the caller's (views
// in, caller-sized spans out, nothing kept).
// Errors are returned as error codes (see below), never thrown.

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace callstream::codec {

enum class base64_errc {
    bad_length = 1,   // length is not a multiple of 4
    bad_character,    // a byte outside the alphabet
    bad_padding,      // '=' anywhere but the last one or two places, or non-zero trailing bits
    output_too_small, // `out` cannot hold the decoded bytes
};
const std::error_category& base64_category() noexcept;
std::error_code make_error_code(base64_errc e) noexcept;

// Characters needed to encode `bytes` bytes.
constexpr std::size_t base64_encoded_size(std::size_t bytes) noexcept {
    return (bytes + 2) / 3 * 4;
}
// Upper bound of the bytes that `chars` characters decode to (exact when there is no padding).
constexpr std::size_t base64_decoded_max_size(std::size_t chars) noexcept {
    return chars / 4 * 3;
}

// Writes base64_encoded_size(in.size()) characters to `out` and returns that count.
std::size_t base64_encode(std::span<const std::uint8_t> in, char* out) noexcept;
std::string base64_encode(std::span<const std::uint8_t> in);

// Decodes `in` into `out`; on success `written` is the number of bytes produced. On error `out`
// may hold partial output and `written` is 0.
std::error_code base64_decode(std::string_view in, std::span<std::uint8_t> out,
                              std::size_t& written) noexcept;

} // namespace callstream::codec

template <> struct std::is_error_code_enum<callstream::codec::base64_errc> : std::true_type {};
