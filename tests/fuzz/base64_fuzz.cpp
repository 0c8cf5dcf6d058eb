// libFuzzer harness for codec::base64_decode: any input either decodes, re-encodes to exactly
// the input (the decoder is strict: one canonical spelling per byte string), and never writes
// past its output span; or fails with written == 0. A too-small output must fail cleanly.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "codec/base64.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace callstream::codec;
    const std::string_view in(reinterpret_cast<const char*>(data), size);
    // An exact-size heap buffer lets ASan catch any write past the bound.
    std::vector<std::uint8_t> out(base64_decoded_max_size(size));
    std::size_t written = 12345;
    const auto ec = base64_decode(in, out, written);
    if (ec) {
        if (written != 0) {
            std::abort();
        }
    } else {
        if (written > out.size()) {
            std::abort();
        }
        const std::string again = base64_encode({out.data(), written});
        if (again != in) {
            std::abort(); // accepted a non-canonical encoding or decoded wrongly
        }
    }
    // One byte short of what is needed must be refused without overflowing.
    if (!ec && written > 0) {
        std::vector<std::uint8_t> small(written - 1);
        std::size_t n = 0;
        if (!base64_decode(in, small, n)) {
            std::abort();
        }
    }
    return 0;
}
