#pragma once
// Turns a callback API of the cluster thread into an asynchronous operation a coroutine on a
// network thread can co_await: `start(callback)` is called at once; the callback may run on
// any thread, and the awaiting coroutine resumes on its own executor with the result.

#include <memory>
#include <utility>

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/post.hpp>

namespace callstream::server {

template <typename Result, typename Token, typename Start>
auto async_call(Start start, Token&& token) {
    return boost::asio::async_initiate<Token, void(Result)>(
        [](auto handler, Start begin) {
            auto executor = boost::asio::get_associated_executor(handler);
            auto shared = std::make_shared<decltype(handler)>(std::move(handler));
            begin([shared, executor](Result result) mutable {
                boost::asio::post(executor, [shared, r = std::move(result)]() mutable {
                    std::move (*shared)(std::move(r));
                });
            });
        },
        token, std::move(start));
}

} // namespace callstream::server
