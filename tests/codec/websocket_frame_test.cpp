// The RFC 6455 frame reader and writer: the byte examples of section 5.7, every rule a server
// must enforce with the close code it fails with, fragmentation with interleaved control frames,
// UTF-8 across fragments, and every input split at every byte boundary (as a socket may deliver
// it) giving the same events as the whole input at once.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "codec/websocket_frame.hpp"

namespace callstream::codec {
namespace {

using bytes = std::vector<std::uint8_t>;

bytes from(std::string_view s) {
    return bytes(s.begin(), s.end());
}

std::string text(std::span<const std::uint8_t> b) {
    return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}

constexpr std::array<std::uint8_t, 4> key{0x37, 0xFA, 0x21, 0x3D};

// A client frame: `b0` is the first byte (FIN, RSV, opcode), masked with `key`.
bytes client_frame(std::uint8_t b0, std::string_view payload) {
    const auto h = ws_make_masked_header(static_cast<ws_opcode>(b0 & 0x0F), payload.size(), key,
                                         (b0 & 0x80) != 0);
    bytes out(h.bytes().begin(), h.bytes().end());
    out[0] = b0;
    bytes body = from(payload);
    ws_apply_mask(body, key);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

bytes close_body(std::uint16_t code, std::string_view reason = {}) {
    std::string b;
    b.push_back(static_cast<char>(code >> 8));
    b.push_back(static_cast<char>(code & 0xFF));
    b.append(reason);
    return from(b);
}

bytes cat(std::initializer_list<bytes> parts) {
    bytes out;
    for (const auto& p : parts) {
        out.insert(out.end(), p.begin(), p.end());
    }
    return out;
}

// What a reader reported, in a form tests compare.
struct seen {
    ws_event_kind kind;
    ws_opcode opcode;
    std::string payload;
    std::uint16_t code;
    bool operator==(const seen&) const = default;
};

void PrintTo(const seen& s, std::ostream* os) {
    *os << "{kind " << static_cast<int>(s.kind) << ", op " << static_cast<int>(s.opcode) << ", "
        << s.payload.size() << " bytes, code " << s.code << "}";
}

// Feeds `input` to a fresh reader in pieces cut at `cuts` (ascending offsets), the way a socket
// buffer fills: unconsumed bytes stay, new ones are appended. Stops at the first error.
std::vector<seen> read_all(const bytes& input, const std::vector<std::size_t>& cuts,
                           ws_reader_limits limits = {}) {
    ws_frame_reader reader(limits);
    std::vector<seen> out;
    bytes buffer;
    std::size_t fed = 0;
    auto feed_to = [&](std::size_t end) {
        buffer.insert(buffer.end(), input.begin() + static_cast<long>(fed),
                      input.begin() + static_cast<long>(end));
        fed = end;
        for (;;) {
            const auto e = reader.next(buffer);
            if (e.kind == ws_event_kind::error) {
                EXPECT_FALSE(e.reason.empty());
                out.push_back({e.kind, e.opcode, std::string(e.reason), e.close_code});
                return false;
            }
            if (e.kind != ws_event_kind::need_more) {
                out.push_back({e.kind, e.opcode, text(e.payload), e.close_code});
            } else {
                EXPECT_GT(e.bytes_needed, buffer.size() - e.consumed);
            }
            buffer.erase(buffer.begin(), buffer.begin() + static_cast<long>(e.consumed));
            if (e.kind == ws_event_kind::need_more) {
                return true;
            }
        }
    };
    for (const auto c : cuts) {
        if (!feed_to(c)) {
            return out;
        }
    }
    feed_to(input.size());
    return out;
}

std::vector<seen> read_whole(const bytes& input, ws_reader_limits limits = {}) {
    return read_all(input, {}, limits);
}

// The events of `input` read whole must be those of every one-cut and (for short inputs) every
// byte-at-a-time delivery. Error reasons may say more or less depending on what arrived, so
// errors compare by code only.
void expect_split_invariant(const bytes& input, ws_reader_limits limits = {}) {
    auto strip = [](std::vector<seen> v) {
        for (auto& s : v) {
            if (s.kind == ws_event_kind::error) {
                s.payload.clear();
            }
        }
        return v;
    };
    const auto whole = strip(read_whole(input, limits));
    // Every cut of a short input; of a long one, every cut near its ends and a stride between.
    for (std::size_t cut = 0; cut <= input.size(); ++cut) {
        if (input.size() > 4096 && cut > 64 && cut + 64 < input.size() && cut % 997 != 0) {
            continue;
        }
        EXPECT_EQ(strip(read_all(input, {cut}, limits)), whole) << "split at " << cut;
    }
    if (input.size() <= 4096) {
        std::vector<std::size_t> each;
        for (std::size_t i = 1; i < input.size(); ++i) {
            each.push_back(i);
        }
        EXPECT_EQ(strip(read_all(input, each, limits)), whole) << "byte at a time";
    }
}

seen msg(ws_opcode op, std::string_view payload) {
    return {ws_event_kind::message, op, std::string(payload), 0};
}
seen ctl(ws_opcode op, std::string_view payload, std::uint16_t code = 0) {
    return {ws_event_kind::control, op, std::string(payload), code};
}

std::uint16_t error_code_of(const bytes& input, ws_reader_limits limits = {}) {
    const auto events = read_whole(input, limits);
    if (events.empty() || events.back().kind != ws_event_kind::error) {
        return 0;
    }
    return events.back().code;
}

// RFC 6455 section 5.7: a single-frame masked text message "Hello".
TEST(websocket_frame, rfc_5_7_masked_text_hello) {
    const bytes wire{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    EXPECT_EQ(read_whole(wire), std::vector<seen>{msg(ws_opcode::text, "Hello")});
    expect_split_invariant(wire);
    // The writer's masked form of the same message is byte for byte the RFC's.
    EXPECT_EQ(client_frame(0x81, "Hello"), wire);
}

// Section 5.7: the masked pong "Hello".
TEST(websocket_frame, rfc_5_7_masked_pong) {
    const bytes wire{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    EXPECT_EQ(read_whole(wire), std::vector<seen>{ctl(ws_opcode::pong, "Hello")});
}

// Section 5.7's unmasked examples are what a server sends: the writer produces them, and the
// reader (server side) refuses them as unmasked client frames.
TEST(websocket_frame, rfc_5_7_unmasked_examples_from_the_writer) {
    const auto hello = ws_make_header(ws_opcode::text, 5);
    EXPECT_EQ(bytes(hello.bytes().begin(), hello.bytes().end()), (bytes{0x81, 0x05}));
    const auto frag1 = ws_make_header(ws_opcode::text, 3, false);
    EXPECT_EQ(bytes(frag1.bytes().begin(), frag1.bytes().end()), (bytes{0x01, 0x03}));
    const auto frag2 = ws_make_header(ws_opcode::continuation, 2);
    EXPECT_EQ(bytes(frag2.bytes().begin(), frag2.bytes().end()), (bytes{0x80, 0x02}));
    const auto ping = ws_make_control_frame(ws_opcode::ping, from("Hello"));
    EXPECT_EQ(from(ping), (bytes{0x89, 0x05, 'H', 'e', 'l', 'l', 'o'}));
    const auto b256 = ws_make_header(ws_opcode::binary, 256);
    EXPECT_EQ(bytes(b256.bytes().begin(), b256.bytes().end()), (bytes{0x82, 0x7E, 0x01, 0x00}));
    const auto b64k = ws_make_header(ws_opcode::binary, 65536);
    EXPECT_EQ(bytes(b64k.bytes().begin(), b64k.bytes().end()),
              (bytes{0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00}));

    const bytes unmasked{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    EXPECT_EQ(error_code_of(unmasked), ws_close::protocol_error);
    EXPECT_EQ(error_code_of(from(ping)), ws_close::protocol_error);
}

// A client reads server frames: section 5.7's unmasked examples, whole and split anywhere,
// fragments with a ping between, a close; a masked server frame is a violation (section 5.1).
TEST(websocket_frame, client_reader_takes_unmasked_server_frames) {
    ws_reader_limits from_server;
    from_server.peer = ws_peer::server;
    const bytes hello{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'};
    EXPECT_EQ(read_whole(hello, from_server), std::vector<seen>{msg(ws_opcode::text, "Hello")});
    const bytes fragmented{0x01, 0x03, 'H', 'e', 'l', 0x89, 0x00, 0x80, 0x02, 'l', 'o'};
    EXPECT_EQ(read_whole(fragmented, from_server),
              (std::vector<seen>{ctl(ws_opcode::ping, ""), msg(ws_opcode::text, "Hello")}));
    expect_split_invariant(fragmented, from_server);
    const std::string p70k(70000, 'b');
    const auto big = ws_make_header(ws_opcode::binary, p70k.size());
    bytes wire(big.bytes().begin(), big.bytes().end());
    wire.insert(wire.end(), p70k.begin(), p70k.end());
    const auto closing = ws_make_close_frame(1000, "bye");
    wire.insert(wire.end(), closing.begin(), closing.end());
    from_server.max_message_bytes = 1 << 20;
    EXPECT_EQ(read_whole(wire, from_server),
              (std::vector<seen>{msg(ws_opcode::binary, p70k),
                                 ctl(ws_opcode::close, text(close_body(1000, "bye")), 1000)}));
    expect_split_invariant(wire, from_server);

    EXPECT_EQ(error_code_of(client_frame(0x81, "Hello"), from_server), ws_close::protocol_error);
    from_server.max_message_bytes = 100;
    const auto over = ws_make_header(ws_opcode::text, 101);
    EXPECT_EQ(error_code_of(bytes(over.bytes().begin(), over.bytes().end()), from_server),
              ws_close::too_big);
}

// The control frame writers mask with a key when given one: what a server reads back.
TEST(websocket_frame, masked_control_frames_read_back_on_the_server_side) {
    const auto close = ws_make_close_frame(1001, "going away", &key);
    const bytes ping_body = from("are you there");
    const auto ping = ws_make_control_frame(ws_opcode::ping, ping_body, &key);
    EXPECT_EQ(read_whole(cat({from(close), from(ping)})),
              (std::vector<seen>{ctl(ws_opcode::close, text(close_body(1001, "going away")), 1001),
                                 ctl(ws_opcode::ping, "are you there")}));
    EXPECT_EQ(from(ws_make_control_frame(ws_opcode::pong, from("Hello"), &key)),
              (bytes{0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58}));
}

TEST(websocket_frame, length_forms_16_and_64_bit) {
    const std::string p300(300, 'a');
    const std::string p70k(70000, 'b');
    ws_reader_limits limits;
    limits.max_message_bytes = 1 << 20;
    const auto wire = cat({client_frame(0x82, p300), client_frame(0x81, p70k)});
    EXPECT_EQ(wire[1], 0x80 | 126);
    EXPECT_EQ(read_whole(wire, limits),
              (std::vector<seen>{msg(ws_opcode::binary, p300), msg(ws_opcode::text, p70k)}));
    // Cut points around each header and the message boundary (every byte would be 70k runs).
    for (std::size_t cut : {1U, 2U, 3U, 4U, 7U, 8U, 9U, 305U, 306U, 307U, 308U, 315U, 316U, 70000U,
                            static_cast<unsigned>(wire.size() - 1)}) {
        EXPECT_EQ(read_all(wire, {cut}, limits), read_whole(wire, limits)) << cut;
    }
}

TEST(websocket_frame, need_more_says_how_much_the_frame_needs) {
    ws_frame_reader reader;
    const auto frame = client_frame(0x81, std::string(300, 'x'));
    bytes part(frame.begin(), frame.begin() + 1);
    auto e = reader.next(part);
    EXPECT_EQ(e.kind, ws_event_kind::need_more);
    EXPECT_EQ(e.bytes_needed, 2U);
    part.assign(frame.begin(), frame.begin() + 3);
    e = reader.next(part);
    EXPECT_EQ(e.bytes_needed, 8U); // 2 + 2 of length + 4 of key
    part.assign(frame.begin(), frame.begin() + 20);
    e = reader.next(part);
    EXPECT_EQ(e.bytes_needed, 308U);
    EXPECT_EQ(e.consumed, 0U);
}

TEST(websocket_frame, many_frames_in_one_buffer_come_out_in_order) {
    const auto wire =
        cat({client_frame(0x81, "one"), client_frame(0x89, "p"), client_frame(0x81, ""),
             client_frame(0x8A, ""), client_frame(0x81, "two"), client_frame(0x88, "")});
    EXPECT_EQ(read_whole(wire),
              (std::vector<seen>{msg(ws_opcode::text, "one"), ctl(ws_opcode::ping, "p"),
                                 msg(ws_opcode::text, ""), ctl(ws_opcode::pong, ""),
                                 msg(ws_opcode::text, "two"),
                                 ctl(ws_opcode::close, "", ws_close::no_status)}));
    expect_split_invariant(wire);
}

TEST(websocket_frame, a_single_frame_message_is_a_view_into_the_input) {
    ws_frame_reader reader;
    auto wire = client_frame(0x81, "in place");
    const auto e = reader.next(wire);
    ASSERT_EQ(e.kind, ws_event_kind::message);
    EXPECT_EQ(e.payload.data(), wire.data() + 6);
    EXPECT_EQ(text(e.payload), "in place");
    EXPECT_EQ(e.consumed, wire.size());
}

TEST(websocket_frame, fragments_reassemble_with_control_frames_between) {
    const auto wire =
        cat({client_frame(0x01, "{\"a\":"), client_frame(0x89, "ping1"), client_frame(0x00, "1,"),
             client_frame(0x8A, "pong"), client_frame(0x00, ""), client_frame(0x80, "\"b\":2}"),
             client_frame(0x81, "after")});
    EXPECT_EQ(read_whole(wire), (std::vector<seen>{
                                    ctl(ws_opcode::ping, "ping1"),
                                    ctl(ws_opcode::pong, "pong"),
                                    msg(ws_opcode::text, "{\"a\":1,\"b\":2}"),
                                    msg(ws_opcode::text, "after"),
                                }));
    expect_split_invariant(wire);
}

TEST(websocket_frame, reassembled_message_keeps_tail_padding_readable) {
    ws_reader_limits limits;
    limits.tail_padding = 64;
    ws_frame_reader reader(limits);
    auto wire = cat({client_frame(0x01, "ab"), client_frame(0x80, "cd")});
    const auto e = reader.next(wire);
    ASSERT_EQ(e.kind, ws_event_kind::message);
    EXPECT_EQ(text(e.payload), "abcd");
    EXPECT_GE(e.readable, 64U);
    EXPECT_FALSE(reader.in_message());
}

TEST(websocket_frame, binary_fragments_are_not_utf8_checked) {
    const auto wire = cat({client_frame(0x02, "\xff\xfe"), client_frame(0x80, "\xC3")});
    EXPECT_EQ(read_whole(wire), std::vector<seen>{msg(ws_opcode::binary, "\xff\xfe\xC3")});
}

TEST(websocket_frame, utf8_text_split_mid_character_across_fragments_is_valid) {
    // U+20AC (E2 82 AC) and U+1F600 (F0 9F 98 80) cut inside each character.
    const auto wire = cat({client_frame(0x01, "\xE2\x82"), client_frame(0x00, "\xAC\xF0"),
                           client_frame(0x80, "\x9F\x98\x80")});
    EXPECT_EQ(read_whole(wire),
              std::vector<seen>{msg(ws_opcode::text, "\xE2\x82\xAC\xF0\x9F\x98\x80")});
    expect_split_invariant(wire);
}

struct bad_case {
    const char* name;
    bytes wire;
    std::uint16_t code;
};

std::vector<bad_case> bad_cases() {
    bytes non_minimal16{0x81, 0xFE, 0x00, 0x05, 0x37, 0xFA, 0x21, 0x3D, 1, 2, 3, 4, 5};
    bytes non_minimal64{0x81, 0xFF, 0, 0, 0, 0, 0, 0, 0x01, 0x00, 0x37, 0xFA, 0x21, 0x3D};
    bytes top_bit{0x81, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x37, 0xFA, 0x21, 0x3D};
    bytes over_limit{0x81, 0xFF, 0, 0, 0, 0, 0, 0x01, 0x00, 0x01, 0x37, 0xFA, 0x21, 0x3D};
    return {
        {"rsv1", client_frame(0xC1, "x"), ws_close::protocol_error},
        {"rsv2", client_frame(0xA1, "x"), ws_close::protocol_error},
        {"rsv3", client_frame(0x91, "x"), ws_close::protocol_error},
        {"opcode_3", client_frame(0x83, "x"), ws_close::protocol_error},
        {"opcode_7", client_frame(0x87, "x"), ws_close::protocol_error},
        {"opcode_b", client_frame(0x8B, "x"), ws_close::protocol_error},
        {"opcode_f", client_frame(0x8F, "x"), ws_close::protocol_error},
        {"unmasked", {0x81, 0x01, 'x'}, ws_close::protocol_error},
        {"fragmented_ping", client_frame(0x09, "hi"), ws_close::protocol_error},
        {"fragmented_close", client_frame(0x08, ""), ws_close::protocol_error},
        {"ping_126_bytes", client_frame(0x89, std::string(126, 'p')), ws_close::protocol_error},
        {"continuation_without_message", client_frame(0x80, "orphan"), ws_close::protocol_error},
        {"text_inside_fragmented_message", cat({client_frame(0x01, "a"), client_frame(0x81, "b")}),
         ws_close::protocol_error},
        {"non_minimal_16", non_minimal16, ws_close::protocol_error},
        {"non_minimal_64", non_minimal64, ws_close::protocol_error},
        {"length_top_bit", top_bit, ws_close::protocol_error},
        {"over_max_message", over_limit, ws_close::too_big},
        {"over_max_across_fragments",
         cat({client_frame(0x01, std::string(40000, 'a')),
              client_frame(0x80, std::string(30000, 'b'))}),
         ws_close::too_big},
        {"invalid_utf8", client_frame(0x81, "\xC3\x28"), ws_close::bad_payload},
        {"overlong_utf8", client_frame(0x81, "\xC0\xAF"), ws_close::bad_payload},
        {"surrogate_utf8", client_frame(0x81, "\xED\xA0\x80"), ws_close::bad_payload},
        {"above_10ffff", client_frame(0x81, "\xF4\x90\x80\x80"), ws_close::bad_payload},
        {"truncated_utf8", client_frame(0x81, "ok\xE2\x82"), ws_close::bad_payload},
        {"invalid_utf8_across_fragments",
         cat({client_frame(0x01, "\xE2\x82"), client_frame(0x80, "\x28")}), ws_close::bad_payload},
        {"truncated_utf8_at_last_fragment",
         cat({client_frame(0x01, "a"), client_frame(0x80, "\xF0\x9F")}), ws_close::bad_payload},
        {"close_one_byte", client_frame(0x88, "\x03"), ws_close::protocol_error},
        {"close_999", client_frame(0x88, text(close_body(999))), ws_close::protocol_error},
        {"close_1004", client_frame(0x88, text(close_body(1004))), ws_close::protocol_error},
        {"close_1005", client_frame(0x88, text(close_body(1005))), ws_close::protocol_error},
        {"close_1006", client_frame(0x88, text(close_body(1006))), ws_close::protocol_error},
        {"close_1012", client_frame(0x88, text(close_body(1012))), ws_close::protocol_error},
        {"close_1015", client_frame(0x88, text(close_body(1015))), ws_close::protocol_error},
        {"close_2999", client_frame(0x88, text(close_body(2999))), ws_close::protocol_error},
        {"close_5000", client_frame(0x88, text(close_body(5000))), ws_close::protocol_error},
        {"close_65535", client_frame(0x88, text(close_body(65535))), ws_close::protocol_error},
        {"close_reason_not_utf8", client_frame(0x88, text(close_body(1000, "\xC3\x28"))),
         ws_close::protocol_error},
    };
}

void PrintTo(const bad_case& c, std::ostream* os) {
    *os << c.name;
}

class websocket_frame_errors : public ::testing::TestWithParam<bad_case> {};

TEST_P(websocket_frame_errors, fail_with_their_close_code_at_every_split) {
    const auto& c = GetParam();
    EXPECT_EQ(error_code_of(c.wire), c.code);
    expect_split_invariant(c.wire);
    // After a good message the same bytes fail the same way, and the reader stays failed.
    ws_frame_reader reader;
    auto wire = cat({client_frame(0x81, "fine"), c.wire});
    auto e = reader.next(wire);
    ASSERT_EQ(e.kind, ws_event_kind::message);
    std::span<std::uint8_t> rest(wire.data() + e.consumed, wire.size() - e.consumed);
    e = reader.next(rest);
    EXPECT_EQ(e.kind, ws_event_kind::error);
    EXPECT_EQ(e.close_code, c.code);
    EXPECT_EQ(reader.next(rest).close_code, c.code);
}

INSTANTIATE_TEST_SUITE_P(rfc6455, websocket_frame_errors, ::testing::ValuesIn(bad_cases()),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(websocket_frame, violations_in_the_first_two_bytes_fail_before_the_payload_arrives) {
    // A reserved opcode announcing 64 KiB: refused with two bytes in hand.
    bytes two{0x83, 0xFE};
    ws_frame_reader reader;
    EXPECT_EQ(reader.next(two).kind, ws_event_kind::error);
    // So is a length over the limit, with the header alone.
    bytes header{0x81, 0xFF, 0, 0, 0, 0, 0x7F, 0xFF, 0xFF, 0xFF, 0x37, 0xFA, 0x21, 0x3D};
    ws_frame_reader reader2;
    const auto e = reader2.next(header);
    EXPECT_EQ(e.kind, ws_event_kind::error);
    EXPECT_EQ(e.close_code, ws_close::too_big);
}

TEST(websocket_frame, valid_close_codes_and_reasons) {
    for (const int c :
         {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999}) {
        const auto code = static_cast<std::uint16_t>(c);
        const auto wire = client_frame(0x88, text(close_body(code, "bye \xE2\x82\xAC")));
        EXPECT_EQ(read_whole(wire),
                  std::vector<seen>{
                      ctl(ws_opcode::close, text(close_body(code, "bye \xE2\x82\xAC")), code)})
            << code;
    }
    ws_frame_reader reader;
    auto wire = client_frame(0x88, text(close_body(1000, "done")));
    const auto e = reader.next(wire);
    EXPECT_EQ(e.close_code, 1000);
    EXPECT_EQ(e.reason, "done");
}

TEST(websocket_frame, close_frame_writer_cuts_the_reason_at_a_character_boundary) {
    const auto plain = ws_make_close_frame(1008, "slow consumer");
    EXPECT_EQ(from(plain), cat({bytes{0x88, 15}, close_body(1008, "slow consumer")}));
    EXPECT_EQ(from(ws_make_close_frame(ws_close::no_status, "ignored")), (bytes{0x88, 0x00}));

    // 122 ASCII bytes then a 3-byte character: 125 bytes, cut back to the 122.
    const std::string reason = std::string(122, 'r') + "\xE2\x82\xAC" + "tail";
    const auto cut = ws_cut_close_reason(reason);
    EXPECT_EQ(cut.size(), 122U);
    const auto frame = ws_make_close_frame(1000, reason);
    EXPECT_EQ(frame.size(), 2U + 2U + 122U);
    EXPECT_TRUE(utf8_valid(from(frame.substr(4))));
    const std::string exact(123, 'x');
    EXPECT_EQ(ws_cut_close_reason(exact).size(), 123U);
    EXPECT_EQ(ws_cut_close_reason(exact + "y").size(), 123U);
}

TEST(websocket_frame, control_frame_writer_caps_the_payload_at_125_bytes) {
    const auto pong = ws_make_control_frame(ws_opcode::pong, from(std::string(200, 'z')));
    EXPECT_EQ(pong.size(), 2U + 125U);
    EXPECT_EQ(static_cast<std::uint8_t>(pong[0]), 0x8A);
    EXPECT_EQ(static_cast<std::uint8_t>(pong[1]), 125);
}

TEST(websocket_frame, mask_matches_bytewise_xor_at_every_offset_and_length) {
    for (std::size_t offset = 0; offset < 4; ++offset) {
        for (std::size_t n = 0; n < 40; ++n) {
            bytes b(n);
            for (std::size_t i = 0; i < n; ++i) {
                b[i] = static_cast<std::uint8_t>(i * 7 + 3);
            }
            bytes expected = b;
            for (std::size_t i = 0; i < n; ++i) {
                expected[i] ^= key[(offset + i) % 4];
            }
            ws_apply_mask(b, key, offset);
            EXPECT_EQ(b, expected) << offset << " " << n;
        }
    }
}

TEST(websocket_frame, utf8_validator_matches_the_rules_byte_by_byte) {
    EXPECT_TRUE(utf8_valid(from("plain ascii that is longer than eight bytes")));
    EXPECT_TRUE(utf8_valid(from("\xC2\x80\xDF\xBF\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80")));
    EXPECT_TRUE(utf8_valid(from("\xF0\x90\x80\x80\xF4\x8F\xBF\xBF")));
    EXPECT_FALSE(utf8_valid(from("\xC1\xBF")));         // overlong
    EXPECT_FALSE(utf8_valid(from("\xE0\x9F\xBF")));     // overlong
    EXPECT_FALSE(utf8_valid(from("\xF0\x8F\xBF\xBF"))); // overlong
    EXPECT_FALSE(utf8_valid(from("\xF5\x80\x80\x80"))); // over U+10FFFF
    EXPECT_FALSE(utf8_valid(from("\x80")));             // lone continuation
    EXPECT_FALSE(utf8_valid(from("abcdefgh\xFF")));     // after an ASCII run
    utf8_validator v;
    EXPECT_TRUE(v.feed(from("\xF0")));
    EXPECT_FALSE(v.complete());
    EXPECT_TRUE(v.feed(from("\x9F\x98")));
    EXPECT_TRUE(v.feed(from("\x80")));
    EXPECT_TRUE(v.complete());
}

} // namespace
} // namespace callstream::codec
