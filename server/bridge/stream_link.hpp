#pragma once
// The media stream's end of its bridge: a call_link that the bridge may call from its own
// thread (a pre-warmed bridge lives on the thread that answered /twiml) and that runs the
// stream's callbacks on the stream's thread: directly when the bridge shares it, else by
// raising a flag and calling the transport's cross-thread wake-up, after which the stream calls
// poll() from its on_wakeup().
//
// Threading: construct, poll() and detach() on the stream's thread; the call_link methods on any
// thread. Held by shared_ptr by the stream; the bridge holds a weak_ptr.

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include "server/bridge/call_bridge.hpp"

namespace callstream::server::bridge {

class stream_link final : public call_link {
  public:
    stream_link(std::function<void()> on_output, std::function<void(std::string)> on_end,
                std::function<void()> cross_thread_wakeup)
        : thread_(std::this_thread::get_id()), on_output_(std::move(on_output)),
          on_end_(std::move(on_end)), wakeup_(std::move(cross_thread_wakeup)) {}

    void bridge_output_ready() override {
        if (std::this_thread::get_id() == thread_) {
            if (on_output_) {
                on_output_();
            }
            return;
        }
        if (!output_pending_.exchange(true, std::memory_order_acq_rel)) {
            wakeup_(); // one wake-up per burst
        }
    }

    void bridge_end_stream(std::string reason) override {
        if (std::this_thread::get_id() == thread_) {
            if (on_end_) {
                on_end_(std::move(reason));
            }
            return;
        }
        {
            const std::lock_guard lock(mutex_);
            end_reason_ = std::move(reason);
        }
        end_pending_.store(true, std::memory_order_release);
        wakeup_();
    }

    // Runs what other threads asked for (stream thread).
    void poll() {
        if (output_pending_.exchange(false, std::memory_order_acq_rel) && on_output_) {
            on_output_();
        }
        if (end_pending_.exchange(false, std::memory_order_acq_rel) && on_end_) {
            std::string reason;
            {
                const std::lock_guard lock(mutex_);
                reason = std::move(end_reason_);
            }
            on_end_(std::move(reason));
        }
    }

    // The stream is gone: its callbacks must not run any more (stream thread).
    void detach() {
        on_output_ = nullptr;
        on_end_ = nullptr;
    }

  private:
    std::thread::id thread_;
    std::function<void()> on_output_;
    std::function<void(std::string)> on_end_;
    std::function<void()> wakeup_;
    std::atomic<bool> output_pending_{false};
    std::atomic<bool> end_pending_{false};
    std::mutex mutex_;
    std::string end_reason_;
};

} // namespace callstream::server::bridge
