#pragma once
// Writes queued during one pass of a network thread's event loop go out together at its end.
//
// Why: on loopback (and wherever the peer is a process on this machine) every write that finds
// its reader asleep pays for waking it, and that wake-up costs more than the write itself. A
// network thread handles many sockets per pass (epoll hands it every ready one); writing each
// reply the moment it is made spaces the writes out by the work between them, so a fast peer is
// asleep again for nearly every one. Deferring each socket's write to the end of the pass puts
// the writes back to back, and a peer woken by the first is still awake for the rest. It adds
// no timer and no wait: the pass is the work already queued on the thread (microseconds).
//
// One batch per io_context (an Asio service, created on first use, destroyed with the context).
// Threading: the batch's io_context's thread only (a network thread runs one io_context):
// defer() is called there, and flush_deferred() runs there, after the completions queued.
// Ownership: the batch holds weak references; a writer that is gone by the flush is skipped.
// Errors: none.

#include <memory>
#include <type_traits>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "server/app/io_context_of.hpp"

namespace callstream::server {

class deferred_writer {
  public:
    virtual ~deferred_writer() = default;
    // Writes what the writer queued since it was deferred.
    virtual void flush_deferred() = 0;
};

class write_batch final : public boost::asio::execution_context::service {
  public:
    static inline boost::asio::execution_context::id id;

    // The batch of `context`. Looking it up takes a lock: do it once per socket, keep the
    // reference (valid while the context lives).
    static write_batch& of(boost::asio::io_context& context);

    // The batch of the io_context behind `executor` (concrete or any_io_executor), or null when
    // there is none (the caller then writes at once).
    template <typename Executor> static write_batch* of_executor(const Executor& executor) {
        auto* io = io_context_of(executor);
        return io != nullptr ? &of(*io) : nullptr;
    }

    explicit write_batch(boost::asio::execution_context& context);

    // Queues `writer` for the end of this pass: its flush_deferred() follows once. Defer a
    // writer at most once until then.
    void defer(std::weak_ptr<deferred_writer> writer);

  private:
    void shutdown() override;
    void flush();

    boost::asio::io_context& context_;
    bool posted_ = false;
    std::vector<std::weak_ptr<deferred_writer>> pending_;
    std::vector<std::weak_ptr<deferred_writer>> running_; // kept to reuse its capacity
};

} // namespace callstream::server
