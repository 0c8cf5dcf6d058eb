#include "server/app/socket_poller.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <initializer_list>
#include <sys/epoll.h>

#include <boost/asio/detail/descriptor_read_op.hpp>
#include <boost/version.hpp>

#include "server/app/epoll_set.hpp"
#include "server/app/log.hpp"

static_assert(BOOST_VERSION / 100 == 1081,
              "socket_poller.cpp specialises Boost 1.81's descriptor_read_op_base; check that "
              "the reactor still starts reads speculatively and without epoll_ctl first");

namespace callstream::server {

// What the set's descriptor is "read" into: its ready events. A type of its own so that Asio's
// read operation for it can be the one below.
struct poll_events_buffer : boost::asio::mutable_buffer {
    explicit poll_events_buffer(boost::asio::mutable_buffer b) noexcept : mutable_buffer(b) {}
};

} // namespace callstream::server

// Reading the set's descriptor is taking its events with epoll_wait(0). Why a read and not
// Asio's async_wait: a wait is never speculative, and each one re-arms the descriptor with an
// epoll_ctl (one more system call per pass of the thread); a read is tried at once when the
// last one did not report the descriptor empty, and otherwise waits with no system call. A
// batch smaller than the array reports it empty ("exhausted"), as drained_read.hpp does for a
// short recv; the next edge makes the reactor try again.
namespace boost::asio::detail {

template <>
class descriptor_read_op_base<callstream::server::poll_events_buffer> : public reactor_op {
  public:
    descriptor_read_op_base(const boost::system::error_code& success_ec, int descriptor,
                            const callstream::server::poll_events_buffer& buffer,
                            func_type complete_func)
        : reactor_op(success_ec, &descriptor_read_op_base::do_perform, complete_func),
          descriptor_(descriptor), buffer_(buffer) {}

    static status do_perform(reactor_op* base) {
        auto* o = static_cast<descriptor_read_op_base*>(base);
        const int capacity = static_cast<int>(o->buffer_.size() / sizeof(epoll_event));
        const int n =
            ::epoll_wait(o->descriptor_, static_cast<epoll_event*>(o->buffer_.data()), capacity, 0);
        if (n < 0) {
            if (errno == EINTR) {
                return not_done;
            }
            o->ec_ = boost::system::error_code(errno, boost::asio::error::get_system_category());
            return done;
        }
        if (n == 0) {
            return not_done; // nothing yet: wait for the set's next edge
        }
        o->bytes_transferred_ = static_cast<std::size_t>(n) * sizeof(epoll_event);
        return n < capacity ? done_and_exhausted : done;
    }

  private:
    int descriptor_;
    callstream::server::poll_events_buffer buffer_;
};

} // namespace boost::asio::detail

namespace callstream::server {
namespace {

// Targets whose lines are in flight ahead of the one being handled: enough to overlap their
// misses, few enough that their lines are still in L1/L2 when their turn comes.
constexpr int prefetch_ahead = 4;

poll_target* target_of(const epoll_event& e) {
    return static_cast<poll_target*>(e.data.ptr);
}

} // namespace

socket_poller& socket_poller::of(boost::asio::io_context& context) {
    return boost::asio::use_service<socket_poller>(context);
}

// Only of() creates the service, always for an io_context.
socket_poller::socket_poller(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context),
      context_(static_cast<boost::asio::io_context&>(context)), epoll_(context_) {
    open_epoll_set(epoll_, "socket_poller_failed");
}

void socket_poller::shutdown() {
    boost::system::error_code ignored;
    epoll_.close(ignored);
    auto held = std::move(held_); // an owner's destructor may call remove()
    held_.clear();
    held.clear();
}

bool socket_poller::add(int fd, poll_target& target, std::shared_ptr<void> keep) {
    if (!epoll_.is_open()) {
        return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | EPOLLET;
    ev.data.ptr = &target;
    if (::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_ADD, fd, &ev) != 0) {
        return false;
    }
    held_[fd] = std::move(keep);
    arm();
    return true;
}

void socket_poller::remove(int fd) {
    if (!epoll_.is_open()) {
        return;
    }
    ::epoll_ctl(epoll_.native_handle(), EPOLL_CTL_DEL, fd, nullptr);
    if (auto it = held_.find(fd); it != held_.end()) {
        // Not here: this may run inside a batch that names the target further on.
        boost::asio::post(context_, [keep = std::move(it->second)] {});
        held_.erase(it);
    }
}

void socket_poller::arm() {
    if (armed_) {
        return;
    }
    armed_ = true;
    epoll_.async_read_some(
        poll_events_buffer(boost::asio::buffer(events_.data(), sizeof events_)),
        [this](const boost::system::error_code& ec, std::size_t bytes) {
            // armed_ stays set until the batch is handled: an add() meanwhile must not start a
            // read that would overwrite events_ under it.
            if (ec) {
                armed_ = false;
                if (ec != boost::asio::error::operation_aborted) {
                    log(log_level::error, "socket_poller_failed", {{"error", ec.message()}});
                }
                return;
            }
            auto n = static_cast<int>(bytes / sizeof(epoll_event));
            for (;;) {
                handle(n);
                if (n < max_events) {
                    break;
                }
                // A full batch: there may be more (edge-triggered: each is reported once).
                n = std::max(0,
                             ::epoll_wait(epoll_.native_handle(), events_.data(), max_events, 0));
            }
            armed_ = false;
            arm();
        });
}

// Before a target is handled, its first line and its prefetch list are fetched for the whole
// batch, and the lines on its list `prefetch_ahead` targets ahead of its turn.
void socket_poller::handle(int n) {
    const auto event = [this](int i) -> const epoll_event& {
        return events_[static_cast<std::size_t>(i)];
    };
    for (int i = 0; i < n; ++i) {
        __builtin_prefetch(target_of(event(i)));
    }
    for (int i = 0; i < n; ++i) {
        const auto* target = target_of(event(i));
        for (const auto* lines : {target->ready_lines, target->more_ready_lines}) {
            if (lines != nullptr) {
                __builtin_prefetch(lines);
                __builtin_prefetch(reinterpret_cast<const char*>(lines) +
                                   sizeof(pipeline::warm_lines) - 1);
            }
        }
    }
    for (int i = 0; i < n + prefetch_ahead; ++i) {
        if (i < n) {
            const auto* target = target_of(event(i));
            for (const auto* lines : {target->ready_lines, target->more_ready_lines}) {
                if (lines != nullptr) {
                    lines->prefetch();
                }
            }
        }
        if (const int now = i - prefetch_ahead; now >= 0) {
            target_of(event(now))->on_ready(event(now).events);
        }
    }
}

} // namespace callstream::server
