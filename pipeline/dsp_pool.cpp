#include "pipeline/dsp_pool.hpp"

#include <cassert>

namespace callstream::pipeline {

namespace {

// The run queue's permanent dummy node (Vyukov's MPSC queue needs one); never runs.
class stub_task final : public dsp_task {
  public:
    ~stub_task() override = default;

  protected:
    void run() noexcept override {}
};

constexpr std::size_t line = 64; // cache line: keep producer- and consumer-written fields apart

} // namespace

struct dsp_pool::worker {
    // Producers swap themselves in at head_; only the worker touches tail_.
    alignas(line) std::atomic<dsp_task*> head{nullptr};
    alignas(line) dsp_task* tail = nullptr;
    std::atomic<std::uint64_t> runs{0};
    std::atomic<std::uint64_t> wakeups{0};
    stub_task stub;
    alignas(line) std::atomic<std::uint32_t> wake{0}; // bumped after every push
    std::atomic<bool> sleeping{false};
    std::atomic<bool> stopping{false};
    std::atomic<std::uint64_t> notifies{0};
    std::thread thread;

    worker() {
        head.store(&stub, std::memory_order_relaxed);
        tail = &stub;
    }

    // Vyukov's intrusive MPSC push: wait-free, one exchange.
    void push(dsp_task* task) noexcept {
        task->next_.store(nullptr, std::memory_order_relaxed);
        dsp_task* prev = head.exchange(task, std::memory_order_acq_rel);
        prev->next_.store(task, std::memory_order_release);
    }
};

dsp_pool::dsp_pool(std::size_t threads) {
    assert(threads >= 1);
    workers_.reserve(threads);
    for (std::size_t i = 0; i < threads; ++i) {
        workers_.push_back(std::make_unique<worker>());
    }
    for (auto& w : workers_) {
        w->thread = std::thread([this, raw = w.get()] { run_worker(*raw); });
    }
}

dsp_pool::~dsp_pool() {
    for (auto& w : workers_) {
        w->stopping.store(true, std::memory_order_seq_cst);
        w->wake.fetch_add(1, std::memory_order_seq_cst);
        w->wake.notify_one();
    }
    for (auto& w : workers_) {
        w->thread.join();
        // Drop the queue's references to tasks that never ran.
        for (dsp_task* t = pop(*w); t != nullptr; t = pop(*w)) {
            t->queued_.store(false, std::memory_order_relaxed);
            t->release();
        }
    }
}

std::size_t dsp_pool::assign() noexcept {
    return next_worker_.fetch_add(1, std::memory_order_relaxed) % workers_.size();
}

void dsp_pool::schedule(std::size_t index, dsp_task& task) noexcept {
    // At most one queue entry per task: the worker clears the flag before it runs the task,
    // so anything produced after that point schedules again.
    if (task.queued_.exchange(true, std::memory_order_acq_rel)) {
        return;
    }
    worker& w = *workers_[index];
    task.retain(); // the queue's reference, released by the worker after run()
    w.push(&task);
    w.wake.fetch_add(1, std::memory_order_seq_cst);
    // Only a sleeping worker needs the (syscall) notify; a running one will find the task.
    if (w.sleeping.load(std::memory_order_seq_cst)) {
        w.notifies.fetch_add(1, std::memory_order_relaxed);
        w.wake.notify_one();
    }
}

// Vyukov's intrusive MPSC pop, single consumer. Returns nullptr when empty or when a producer
// is between its exchange and its link; that producer bumps `wake` afterwards, so the worker
// cannot sleep through it.
dsp_task* dsp_pool::pop(worker& w) noexcept {
    dsp_task* tail = w.tail;
    dsp_task* next = tail->next_.load(std::memory_order_acquire);
    if (tail == &w.stub) {
        if (next == nullptr) {
            return nullptr;
        }
        w.tail = next;
        tail = next;
        next = next->next_.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
        w.tail = next;
        return tail;
    }
    if (tail != w.head.load(std::memory_order_acquire)) {
        return nullptr;
    }
    w.push(&w.stub);
    next = tail->next_.load(std::memory_order_acquire);
    if (next != nullptr) {
        w.tail = next;
        return tail;
    }
    return nullptr;
}

void dsp_pool::run_worker(worker& w) noexcept {
    for (;;) {
        if (dsp_task* t = pop(w); t != nullptr) {
            // An exchange, not a store: it reads the producer's exchange, which makes the
            // producer's ring writes before it visible to run().
            t->queued_.exchange(false, std::memory_order_acq_rel);
            t->run();
            w.runs.fetch_add(1, std::memory_order_relaxed);
            t->release();
            continue;
        }
        if (w.stopping.load(std::memory_order_seq_cst)) {
            return;
        }
        // Announce sleep, then look once more: a producer either sees `sleeping` and
        // notifies, or pushed before our second look (and bumped `wake` past `seen`).
        const std::uint32_t seen = w.wake.load(std::memory_order_seq_cst);
        w.sleeping.store(true, std::memory_order_seq_cst);
        if (dsp_task* t = pop(w); t != nullptr) {
            w.sleeping.store(false, std::memory_order_relaxed);
            t->queued_.exchange(false, std::memory_order_acq_rel);
            t->run();
            w.runs.fetch_add(1, std::memory_order_relaxed);
            t->release();
            continue;
        }
        if (!w.stopping.load(std::memory_order_seq_cst)) {
            w.wake.wait(seen, std::memory_order_seq_cst);
            w.wakeups.fetch_add(1, std::memory_order_relaxed);
        }
        w.sleeping.store(false, std::memory_order_seq_cst);
    }
}

dsp_pool_counters dsp_pool::counters() const noexcept {
    dsp_pool_counters c;
    for (const auto& w : workers_) {
        c.runs += w->runs.load(std::memory_order_relaxed);
        c.wakeups += w->wakeups.load(std::memory_order_relaxed);
        c.notifies += w->notifies.load(std::memory_order_relaxed);
    }
    return c;
}

} // namespace callstream::pipeline
