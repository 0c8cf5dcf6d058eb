#include "server/app/write_batch.hpp"

#include <utility>

#include <boost/asio/post.hpp>

namespace callstream::server {

write_batch& write_batch::of(boost::asio::io_context& context) {
    return boost::asio::use_service<write_batch>(context);
}

// Only of() creates the service, always for an io_context.
write_batch::write_batch(boost::asio::execution_context& context)
    : boost::asio::execution_context::service(context),
      context_(static_cast<boost::asio::io_context&>(context)) {}

void write_batch::defer(std::weak_ptr<deferred_writer> writer) {
    pending_.push_back(std::move(writer));
    if (!posted_) {
        posted_ = true;
        // post, not dispatch: it runs behind every completion this pass has queued.
        boost::asio::post(context_, [this] { flush(); });
    }
}

void write_batch::flush() {
    posted_ = false;
    running_.swap(pending_);
    for (auto& weak : running_) {
        if (auto writer = weak.lock()) {
            writer->flush_deferred(); // may defer again: that goes in pending_, the next pass
        }
    }
    running_.clear();
}

void write_batch::shutdown() {
    pending_.clear();
    running_.clear();
}

} // namespace callstream::server
