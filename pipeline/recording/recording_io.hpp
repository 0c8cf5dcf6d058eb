#pragma once
// Writing recording files: the whole buffer or an error, counted in pipeline::stats().
//
// Called on the recording writer's thread only (never on an audio thread). Plain write(2) on a
// descriptor, no stdio buffer, so what returned true is in the kernel even if the process dies.

#include <cstddef>

namespace callstream::pipeline {

// Writes all `size` bytes (retrying after EINTR and short writes); false on an error.
bool write_recording_bytes(int fd, const void* data, std::size_t size);

} // namespace callstream::pipeline
