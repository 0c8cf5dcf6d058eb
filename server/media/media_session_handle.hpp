#pragma once
// The face a running media session shows to other threads (HTTP control routes, shutdown).
//
// Every call posts to the session's own network thread and returns at once; calling one after
// the session ended is harmless (the post finds nothing to do). Held by shared_ptr, obtained
// from a weak_ptr in session_registry.

#include <cstdint>
#include <functional>
#include <string>

namespace callstream::pipeline {
class stream_pipeline;
} // namespace callstream::pipeline

namespace callstream::server {

// What other threads may ask of a running media session. Every call posts to the session's
// own executor and returns at once.
class media_session_handle {
  public:
    virtual ~media_session_handle() = default;
    // Close with a WebSocket close code and reason (1001 on shutdown).
    virtual void post_close(std::uint16_t code, std::string reason) = 0;
    // Runs `fn` on the session's thread with its pipeline, once the stream has started.
    virtual void post_to_pipeline(std::function<void(pipeline::stream_pipeline&)> fn) = 0;
};

} // namespace callstream::server
