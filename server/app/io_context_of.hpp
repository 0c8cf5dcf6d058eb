#pragma once
// The io_context behind an executor: the concrete io_context executor, or an any_io_executor
// that holds one. Per-thread services (write_batch, peer_end_watch) are looked up through it.
// Null when the executor is of another kind (the caller then goes without the service).
// Any thread; no ownership; no errors.

#include <type_traits>

#include <boost/asio/io_context.hpp>

namespace callstream::server {

template <typename Executor> boost::asio::io_context* io_context_of(const Executor& executor) {
    if constexpr (std::is_same_v<Executor, boost::asio::io_context::executor_type>) {
        return &executor.context();
    } else {
        const auto* io = executor.template target<boost::asio::io_context::executor_type>();
        return io != nullptr ? &io->context() : nullptr;
    }
}

} // namespace callstream::server
