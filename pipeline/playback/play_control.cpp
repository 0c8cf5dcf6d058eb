#include "pipeline/playback/play_control.hpp"

namespace callstream::pipeline {

play_control::play_control(std::filesystem::path prompts_dir)
    : prompts_dir_(std::move(prompts_dir)) {}

play_control::~play_control() {
    // Both sides are gone: whatever is still in flight is ours to free.
    command c;
    while (commands_.try_pop(c)) {
        delete c.batch;
    }
    prompt_batch* b = nullptr;
    while (retired_.try_pop(b)) {
        delete b;
    }
}

void play_control::free_retired() {
    prompt_batch* b = nullptr;
    while (retired_.try_pop(b)) {
        delete b;
        live_batches_.fetch_sub(1, std::memory_order_relaxed);
    }
}

std::string play_control::play(std::string_view prompt_list) {
    std::vector<prompt> prompts;
    // Loading happens before taking the lock: a long file does not hold up other commands.
    if (auto err = load_prompts(prompt_list, prompts_dir_, prompts); !err.empty()) {
        return err;
    }
    std::lock_guard lock(mutex_);
    free_retired();
    if (live_batches_.load(std::memory_order_relaxed) >= max_live_batches) {
        return "too many queued prompts";
    }
    auto* batch = new prompt_batch{std::move(prompts)};
    if (!commands_.try_push(command{command::kind::play, batch})) {
        delete batch;
        return "command mailbox full";
    }
    live_batches_.fetch_add(1, std::memory_order_relaxed);
    return {};
}

bool play_control::clear() {
    std::lock_guard lock(mutex_);
    free_retired();
    return commands_.try_push(command{command::kind::clear, nullptr});
}

bool play_control::poll(command& out) noexcept {
    return commands_.try_pop(out);
}

void play_control::retire(prompt_batch* batch) noexcept {
    if (batch != nullptr) {
        // Cannot fail: capacity is twice the number of batches that can exist.
        retired_.try_push(batch);
    }
}

prompt_batch* play_control::adopt(std::vector<prompt> prompts) {
    live_batches_.fetch_add(1, std::memory_order_relaxed);
    return new prompt_batch{std::move(prompts)};
}

} // namespace callstream::pipeline
