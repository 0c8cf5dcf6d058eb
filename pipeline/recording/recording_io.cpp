#include "pipeline/recording/recording_io.hpp"

#include <cerrno>
#include <cstdint>
#include <unistd.h>

#include "pipeline/pipeline_stats.hpp"

namespace callstream::pipeline {

bool write_recording_bytes(int fd, const void* data, std::size_t size) {
    const auto* p = static_cast<const std::uint8_t*>(data);
    while (size > 0) {
        const ssize_t n = ::write(fd, p, size);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        p += n;
        size -= static_cast<std::size_t>(n);
        stats().recording_bytes.fetch_add(static_cast<std::uint64_t>(n), std::memory_order_relaxed);
    }
    return true;
}

} // namespace callstream::pipeline
