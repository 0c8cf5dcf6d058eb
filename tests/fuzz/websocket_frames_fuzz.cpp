// libFuzzer harness for what the media transport does with the bytes after the upgrade: the
// RFC 6455 frame reader (codec/websocket_frame.hpp) with the server's limits reads the fuzz
// bytes as client frames, in one buffer as the transport's read buffer holds them; every text
// message goes through the Twilio parser (with simdjson's padding, as the transport gives it)
// and the media payload through base64.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "codec/base64.hpp"
#include "codec/websocket_frame.hpp"
#include "server/app/config.hpp"
#include "server/app/log.hpp"
#include "server/twilio/media_messages.hpp"

namespace {
using namespace callstream;
} // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    server::configure_logging(server::log_level::off, server::log_format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static simdjson::ondemand::parser parser;
    const server::config cfg;
    constexpr std::size_t padding = simdjson::SIMDJSON_PADDING;
    codec::ws_frame_reader reader({cfg.max_message_bytes, padding});
    // The transport's buffer: the bytes read, then padding that may be read but holds nothing.
    std::vector<std::uint8_t> buffer(data, data + size);
    buffer.resize(size + padding);
    std::span<std::uint8_t> in(buffer.data(), size);
    std::vector<std::uint8_t> ulaw;
    for (;;) {
        const auto e = reader.next(in);
        if (e.kind == codec::ws_event_kind::need_more || e.kind == codec::ws_event_kind::error) {
            break;
        }
        if (e.kind == codec::ws_event_kind::message && e.opcode == codec::ws_opcode::text) {
            const std::string_view text(reinterpret_cast<const char*>(e.payload.data()),
                                        e.payload.size());
            const auto* end = buffer.data() + buffer.size();
            const bool in_buffer = e.payload.data() >= buffer.data() && e.payload.data() < end;
            const std::size_t capacity = in_buffer
                                             ? static_cast<std::size_t>(end - e.payload.data())
                                             : text.size() + e.readable;
            server::inbound_message msg;
            pipeline::stream_info start;
            if (!server::parse_inbound(parser, text, capacity, msg, start) &&
                msg.event == server::inbound_event::media) {
                ulaw.resize(codec::base64_decoded_max_size(msg.payload.size()));
                std::size_t n = 0;
                (void)codec::base64_decode(msg.payload, ulaw, n);
            }
        }
        in = in.subspan(e.consumed);
    }
    return 0;
}
