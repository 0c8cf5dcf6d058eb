// libFuzzer harness: one WebSocket text message through the Twilio parser, then the media
// payload through base64 like the session does. Beyond "no crash" (ASan/UBSan), a decoded
// payload must fit the bound the session sizes its buffer with.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include <simdjson.h>

#include "codec/base64.hpp"
#include "server/app/log.hpp"
#include "server/twilio/media_messages.hpp"

using namespace callstream;

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    server::configure_logging(server::log_level::off, server::log_format::text);
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    // The session hands the parser its read buffer with SIMDJSON_PADDING spare bytes after it.
    static simdjson::ondemand::parser parser;
    std::vector<char> buffer(size + simdjson::SIMDJSON_PADDING, '\0');
    if (size != 0) {
        std::memcpy(buffer.data(), data, size);
    }
    const std::string_view json(buffer.data(), size);
    server::inbound_message msg;
    pipeline::stream_info start;
    const auto ec = server::parse_inbound(parser, json, buffer.size(), msg, start);
    if (ec) {
        return 0;
    }
    if (msg.event == server::inbound_event::media) {
        std::vector<std::uint8_t> ulaw(codec::base64_decoded_max_size(msg.payload.size()));
        std::size_t written = 0;
        if (!codec::base64_decode(msg.payload, ulaw, written) && written > ulaw.size()) {
            std::abort();
        }
    }
    return 0;
}
