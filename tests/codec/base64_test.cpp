#include <algorithm>
#include <array>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "codec/base64.hpp"

namespace {

using callstream::codec::base64_decode;
using callstream::codec::base64_decoded_max_size;
using callstream::codec::base64_encode;
using callstream::codec::base64_encoded_size;
using callstream::codec::base64_errc;

std::span<const std::uint8_t> bytes_of(std::string_view s) {
    return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// Decodes into a buffer of exactly base64_decoded_max_size; returns the error and the bytes.
std::error_code decode(std::string_view in, std::string& out) {
    std::vector<std::uint8_t> buffer(base64_decoded_max_size(in.size()));
    std::size_t written = 12345;
    const std::error_code ec = base64_decode(in, buffer, written);
    if (ec) {
        EXPECT_EQ(written, 0u) << "written must be 0 on error";
    }
    out.assign(reinterpret_cast<const char*>(buffer.data()), written);
    return ec;
}

constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// RFC 4648 section 10 test vectors.
constexpr std::array<std::pair<std::string_view, std::string_view>, 7> rfc4648_vectors{{
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
}};

TEST(base64, rfc4648_vectors_encode) {
    for (const auto& [plain, encoded] : rfc4648_vectors) {
        EXPECT_EQ(base64_encode(bytes_of(plain)), encoded) << "plain: " << plain;
        EXPECT_EQ(base64_encoded_size(plain.size()), encoded.size());
    }
}

TEST(base64, rfc4648_vectors_decode) {
    for (const auto& [plain, encoded] : rfc4648_vectors) {
        std::string out;
        EXPECT_FALSE(decode(encoded, out)) << "encoded: " << encoded;
        EXPECT_EQ(out, plain);
    }
}

TEST(base64, pointer_encode_returns_count_and_stays_in_bounds) {
    // Guard bytes around the output catch any write past the computed size.
    std::array<char, 16> out{};
    out.fill('#');
    const std::size_t n = base64_encode(bytes_of("fooba"), out.data() + 1);
    EXPECT_EQ(n, 8u);
    EXPECT_EQ(std::string_view(out.data() + 1, n), "Zm9vYmE=");
    EXPECT_EQ(out[0], '#');
    EXPECT_EQ(out[9], '#');
}

TEST(base64, every_byte_value_round_trips) {
    std::vector<std::uint8_t> all(256);
    for (std::size_t i = 0; i < all.size(); ++i) {
        all[i] = static_cast<std::uint8_t>(i);
    }
    const std::string encoded = base64_encode(all);
    std::vector<std::uint8_t> decoded(base64_decoded_max_size(encoded.size()));
    std::size_t written = 0;
    ASSERT_FALSE(base64_decode(encoded, decoded, written));
    decoded.resize(written);
    EXPECT_EQ(decoded, all);
}

TEST(base64, random_round_trips_all_lengths_0_to_300) {
    std::mt19937 rng(20240611);
    std::uniform_int_distribution<int> byte(0, 255);
    for (std::size_t length = 0; length <= 300; ++length) {
        for (int trial = 0; trial < 4; ++trial) {
            std::vector<std::uint8_t> plain(length);
            for (auto& b : plain) {
                b = static_cast<std::uint8_t>(byte(rng));
            }
            const std::string encoded = base64_encode(plain);
            ASSERT_EQ(encoded.size(), base64_encoded_size(length));
            ASSERT_EQ(encoded.size() % 4, 0u);
            for (const char c : encoded) {
                ASSERT_TRUE(alphabet.find(c) != std::string_view::npos || c == '=');
            }
            // Decode into a buffer exactly as large as the payload: the decoder must not need
            // slack even though base64_decoded_max_size would give more.
            std::vector<std::uint8_t> decoded(length);
            std::size_t written = 0;
            ASSERT_FALSE(base64_decode(encoded, decoded, written)) << "length " << length;
            ASSERT_EQ(written, length);
            ASSERT_EQ(decoded, plain) << "length " << length;
        }
    }
}

TEST(base64, every_invalid_character_in_every_position_is_rejected) {
    const std::string valid = "Zm9vYmFy"; // "foobar", no padding
    int checked = 0;
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        if (alphabet.find(ch) != std::string_view::npos || ch == '=') {
            continue;
        }
        for (std::size_t pos = 0; pos < valid.size(); ++pos) {
            std::string bad = valid;
            bad[pos] = ch;
            std::string out;
            EXPECT_EQ(decode(bad, out), base64_errc::bad_character)
                << "byte " << c << " at " << pos;
            ++checked;
        }
        // Also inside a padded final quantum.
        std::string padded = "Zm9vYg==";
        padded[5] = ch;
        std::string out;
        EXPECT_EQ(decode(padded, out), base64_errc::bad_character) << "byte " << c;
    }
    EXPECT_EQ(checked, (256 - 65) * 8);
}

TEST(base64, padding_in_every_wrong_position_is_rejected) {
    // Put one or two '=' anywhere in a 12-character string other than the allowed tails
    // "xx==" and "xxx=" at the very end.
    const std::string valid = "Zm9vYmFyYmF6"; // "foobarbaz"
    for (std::size_t i = 0; i < valid.size(); ++i) {
        for (std::size_t j = i; j < valid.size(); ++j) {
            std::string bad = valid;
            bad[i] = '=';
            bad[j] = '=';
            std::string out;
            // The two legal shapes ("...xx==" and "...xxx=") are rejected here too, because
            // this text leaves non-zero bits in the last sextet.
            EXPECT_EQ(decode(bad, out), base64_errc::bad_padding) << bad;
        }
    }
    std::string out;
    EXPECT_EQ(decode("====", out), base64_errc::bad_padding);
    EXPECT_EQ(decode("A===", out), base64_errc::bad_padding);
    EXPECT_EQ(decode("AA=A", out), base64_errc::bad_padding);
    EXPECT_EQ(decode("Zg==Zg==", out), base64_errc::bad_padding);
    EXPECT_EQ(decode("Zm8=Zm8=", out), base64_errc::bad_padding);
    EXPECT_EQ(decode("=Zm9", out), base64_errc::bad_padding);
}

TEST(base64, legal_padding_shapes_are_accepted) {
    std::string out;
    EXPECT_FALSE(decode("Zm9vYmFyYg==", out));
    EXPECT_EQ(out, "foobarb");
    EXPECT_FALSE(decode("Zm9vYmFyYmE=", out));
    EXPECT_EQ(out, "foobarba");
}

TEST(base64, non_canonical_trailing_bits_are_rejected) {
    std::string out;
    // "QQ==" is the canonical "A"; "QR==".."QT==" set bits that the single byte cannot hold.
    EXPECT_FALSE(decode("QQ==", out));
    EXPECT_EQ(out, "A");
    for (const char c : std::string_view("RSTUVWXYZabcdef")) {
        const std::string bad = std::string("Q") + c + "==";
        EXPECT_EQ(decode(bad, out), base64_errc::bad_padding) << bad;
    }
    // Two bytes + '=': the last sextet's low 2 bits must be zero. "QUI=" is "AB".
    EXPECT_FALSE(decode("QUI=", out));
    EXPECT_EQ(out, "AB");
    for (const char c : std::string_view("JKL")) {
        const std::string bad = std::string("QU") + c + "=";
        EXPECT_EQ(decode(bad, out), base64_errc::bad_padding) << bad;
    }
    // Exhaustively: every last sextet with any of the dropped bits set is rejected.
    for (std::size_t s = 0; s < 64; ++s) {
        const std::string two = std::string("Q") + alphabet[s] + "==";
        EXPECT_EQ(!decode(two, out), (s & 0xF) == 0) << two;
        const std::string one = std::string("QU") + alphabet[s] + "=";
        EXPECT_EQ(!decode(one, out), (s & 0x3) == 0) << one;
    }
}

TEST(base64, bad_length_is_rejected) {
    std::string out;
    for (const std::string_view s :
         {"Z", "Zm", "Zm9", "Zm9vY", "Zm9vYm", "Zm9vYmF", "Zg=", "Zg", "Zm9vYmFyZ", "="}) {
        EXPECT_EQ(decode(s, out), base64_errc::bad_length) << s;
    }
}

TEST(base64, output_too_small_is_reported_and_nothing_overflows) {
    const std::string encoded = "Zm9vYmFy"; // 6 bytes
    for (std::size_t capacity = 0; capacity < 6; ++capacity) {
        std::vector<std::uint8_t> out(capacity + 2, 0xAA);
        std::size_t written = 99;
        EXPECT_EQ(base64_decode(encoded, std::span(out).first(capacity), written),
                  base64_errc::output_too_small);
        EXPECT_EQ(written, 0u);
        EXPECT_EQ(out[capacity], 0xAA);
        EXPECT_EQ(out[capacity + 1], 0xAA);
    }
    // Padded input needs only the real size, not base64_decoded_max_size.
    std::array<std::uint8_t, 4> four{};
    std::size_t written = 0;
    EXPECT_FALSE(base64_decode("Zm9vYg==", four, written));
    EXPECT_EQ(written, 4u);
    std::array<std::uint8_t, 3> three{};
    EXPECT_EQ(base64_decode("Zm9vYg==", three, written), base64_errc::output_too_small);
}

TEST(base64, empty_input_decodes_to_nothing) {
    std::size_t written = 7;
    EXPECT_FALSE(base64_decode("", {}, written));
    EXPECT_EQ(written, 0u);
    EXPECT_EQ(base64_encode(std::span<const std::uint8_t>{}), "");
}

TEST(base64, errors_have_a_category_and_messages) {
    const std::error_code ec = base64_errc::bad_padding;
    EXPECT_STREQ(ec.category().name(), "base64");
    EXPECT_EQ(ec.message(), "invalid base64 padding");
    EXPECT_NE(std::error_code(base64_errc::bad_length).message(),
              std::error_code(base64_errc::bad_character).message());
}

// RFC 4648 §4 spelled out bit by bit, to check the block encoder and decoder against.
std::string reference_encode(std::span<const std::uint8_t> in) {
    std::string out;
    std::uint32_t bits = 0;
    int held = 0;
    for (const std::uint8_t b : in) {
        bits = (bits << 8) | b;
        held += 8;
        while (held >= 6) {
            held -= 6;
            out += alphabet[(bits >> held) & 63];
        }
    }
    if (held > 0) {
        out += alphabet[(bits << (6 - held)) & 63];
    }
    while (out.size() % 4 != 0) {
        out += '=';
    }
    return out;
}

TEST(base64, matches_a_bitwise_reference_at_every_length_and_alignment) {
    std::mt19937 rng(7);
    std::vector<std::uint8_t> storage(320 + 16);
    for (std::size_t length = 0; length <= 320; ++length) {
        for (std::size_t shift = 0; shift < 4; ++shift) {
            const std::span<std::uint8_t> plain(storage.data() + shift, length);
            for (auto& b : plain) {
                b = static_cast<std::uint8_t>(rng());
            }
            const std::string expected = reference_encode(plain);
            // Encoded into an exact-size buffer between guard bytes, at an odd offset.
            std::string out(expected.size() + 3, '#');
            ASSERT_EQ(base64_encode(plain, out.data() + 1), expected.size());
            ASSERT_EQ(out.substr(1, expected.size()), expected) << "length " << length;
            ASSERT_EQ(out.front(), '#');
            ASSERT_EQ(out.substr(expected.size() + 1), "##");
            // Decoded from an odd offset into an exact-size span with guards after it.
            const std::string text = "!" + expected;
            std::vector<std::uint8_t> back(length + 16, 0xA5);
            std::size_t written = 0;
            ASSERT_FALSE(base64_decode(std::string_view(text).substr(1),
                                       std::span(back).first(length), written))
                << "length " << length;
            ASSERT_EQ(written, length);
            ASSERT_TRUE(std::equal(plain.begin(), plain.end(), back.begin()))
                << "length " << length;
            for (std::size_t i = length; i < back.size(); ++i) {
                ASSERT_EQ(back[i], 0xA5) << "wrote past the span at length " << length;
            }
        }
    }
}

TEST(base64, every_byte_outside_the_alphabet_at_every_position_of_a_long_text_is_rejected) {
    // 64 characters: four 16-character blocks, then a padded quantum, so each block's
    // classification and the code after it both meet every byte.
    std::vector<std::uint8_t> plain(49);
    for (std::size_t i = 0; i < plain.size(); ++i) {
        plain[i] = static_cast<std::uint8_t>(i * 89 + 3);
    }
    const std::string valid = base64_encode(plain);
    ASSERT_EQ(valid.size(), 68u);
    std::string out;
    ASSERT_FALSE(decode(valid, out));
    for (int c = 0; c < 256; ++c) {
        const char ch = static_cast<char>(c);
        if (alphabet.find(ch) != std::string_view::npos) {
            continue;
        }
        for (std::size_t pos = 0; pos < valid.size() - 2; ++pos) {
            std::string bad = valid;
            bad[pos] = ch;
            const std::error_code want =
                ch == '=' ? base64_errc::bad_padding : base64_errc::bad_character;
            ASSERT_EQ(decode(bad, out), want) << "byte " << c << " at " << pos;
        }
    }
    // Every alphabet character decodes to its index wherever it stands.
    for (std::size_t pos = 0; pos < 64; ++pos) {
        for (std::size_t v = 0; v < 64; ++v) {
            std::string text = valid.substr(0, 64);
            text[pos] = alphabet[v];
            std::vector<std::uint8_t> bytes(48);
            std::size_t written = 0;
            ASSERT_FALSE(base64_decode(text, bytes, written));
            const std::size_t bit = pos * 6;
            std::uint32_t got = 0;
            for (std::size_t k = 0; k < 6; ++k) {
                const std::size_t at = bit + k;
                got = (got << 1) | ((bytes[at / 8] >> (7 - at % 8)) & 1);
            }
            ASSERT_EQ(got, v) << "character " << alphabet[v] << " at " << pos;
        }
    }
}

TEST(base64, twilio_media_payload_size) {
    // A 20 ms μ-law frame is 160 bytes: 216 characters, the last two of them padding.
    std::vector<std::uint8_t> frame(160, 0xFF);
    const std::string encoded = base64_encode(frame);
    EXPECT_EQ(encoded.size(), 216u);
    std::array<std::uint8_t, 160> decoded{};
    std::size_t written = 0;
    ASSERT_FALSE(base64_decode(encoded, decoded, written));
    EXPECT_EQ(written, 160u);
    EXPECT_EQ(std::vector<std::uint8_t>(decoded.begin(), decoded.end()), frame);
}

} // namespace
