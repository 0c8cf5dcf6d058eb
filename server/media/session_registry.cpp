#include "server/media/session_registry.hpp"

#include "pipeline/playback/play_control.hpp"

namespace callstream::server {

std::uint64_t session_registry::add(std::weak_ptr<media_session_handle> session) {
    const std::lock_guard lock(mutex_);
    const auto id = next_id_++;
    sessions_.emplace(id, entry{std::move(session), {}, nullptr});
    return id;
}

void session_registry::remove(std::uint64_t id) {
    const std::lock_guard lock(mutex_);
    sessions_.erase(id);
}

void session_registry::set_stream_sid(std::uint64_t id, std::string stream_sid,
                                      std::shared_ptr<pipeline::play_control> play) {
    const std::lock_guard lock(mutex_);
    if (auto it = sessions_.find(id); it != sessions_.end()) {
        it->second.stream_sid = std::move(stream_sid);
        it->second.play = std::move(play);
    }
}

std::shared_ptr<pipeline::play_control> session_registry::find_play(std::string_view stream_sid,
                                                                    bool& found) const {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, e] : sessions_) {
        if (e.stream_sid == stream_sid) {
            found = true;
            return e.play;
        }
    }
    found = false;
    return nullptr;
}

std::shared_ptr<media_session_handle> session_registry::find(std::string_view stream_sid) const {
    const std::lock_guard lock(mutex_);
    for (const auto& [id, e] : sessions_) {
        if (e.stream_sid == stream_sid) {
            return e.session.lock();
        }
    }
    return nullptr;
}

std::vector<std::shared_ptr<media_session_handle>> session_registry::all() const {
    const std::lock_guard lock(mutex_);
    std::vector<std::shared_ptr<media_session_handle>> out;
    out.reserve(sessions_.size());
    for (const auto& [id, e] : sessions_) {
        if (auto s = e.session.lock()) {
            out.push_back(std::move(s));
        }
    }
    return out;
}

std::size_t session_registry::size() const {
    const std::lock_guard lock(mutex_);
    return sessions_.size();
}

} // namespace callstream::server
