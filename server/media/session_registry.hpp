#pragma once
// The media sessions alive in this process, for HTTP control routes and for shutdown.
//
// Thread-safe (a mutex: touched at stream start/stop and by control requests, never per frame).
// Holds weak pointers: a session's lifetime belongs to its pending I/O, not to the registry.

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "server/media/media_session_handle.hpp"

namespace callstream::pipeline {
class play_control;
} // namespace callstream::pipeline

namespace callstream::server {

class session_registry {
  public:
    std::uint64_t add(std::weak_ptr<media_session_handle> session);
    void remove(std::uint64_t id);
    // Names a started stream; `play` is its play processor's mailbox, if it has one.
    void set_stream_sid(std::uint64_t id, std::string stream_sid,
                        std::shared_ptr<pipeline::play_control> play = nullptr);
    std::shared_ptr<media_session_handle> find(std::string_view stream_sid) const;
    // A started stream's play mailbox. `found` tells an unknown stream from one without play.
    std::shared_ptr<pipeline::play_control> find_play(std::string_view stream_sid,
                                                      bool& found) const;
    std::vector<std::shared_ptr<media_session_handle>> all() const;
    std::size_t size() const;

  private:
    struct entry {
        std::weak_ptr<media_session_handle> session;
        std::string stream_sid;
        std::shared_ptr<pipeline::play_control> play;
    };
    mutable std::mutex mutex_;
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, entry> sessions_;
};

} // namespace callstream::server
