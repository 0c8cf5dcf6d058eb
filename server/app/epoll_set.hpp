#pragma once
// An epoll set of our own whose descriptor waits in Asio's reactor (peer_end_watch in
// drained_read.hpp, socket_poller.hpp): creates the set and hands its descriptor to `set`.
//
// Threading: the set's io_context thread (or before it runs). Ownership: `set` owns the
// descriptor from here. Errors: a set that cannot be created (no descriptors left) or taken by
// the reactor is logged as `failure_event` and `set` stays closed; its users then go without it.

#include <string_view>

#include <boost/asio/posix/stream_descriptor.hpp>

namespace callstream::server {

void open_epoll_set(boost::asio::posix::stream_descriptor& set, std::string_view failure_event);

} // namespace callstream::server
