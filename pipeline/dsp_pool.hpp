#pragma once
// DSP worker threads (--dsp-threads N) that run streams' pipelines off the network threads.
//
// Model: each stream (a dsp_task) is pinned to one worker, chosen round-robin, for its whole
// life, so a stream's processors only ever run on that worker (no locks inside pipelines).
// Producers (network threads) put work into the stream's own SPSC ring and then schedule() the
// task: a task is queued at most once at a time (an atomic flag), in the worker's intrusive
// multi-producer/single-consumer run queue (Vyukov's, no allocation, no capacity limit). An idle
// worker sleeps in std::atomic::wait on a wake counter and is notified only when it is asleep,
// so a busy worker takes no syscalls and an idle one burns no CPU.
//
// Lifetime: tasks are reference counted. The queue holds a reference while a task is queued or
// running, so its owner may release its own reference at any time (the task is deleted by
// whichever side lets go last, possibly on the worker). The pool must outlive every task
// scheduled on it; destroying the pool stops and joins the workers, releasing queued tasks
// without running them.
//
// Threading: schedule() from any thread; everything else on the thread that owns the pool.
// Errors: the constructor throws std::system_error if a thread cannot be started (startup only);
// schedule() cannot fail and never allocates.

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

namespace callstream::pipeline {

class dsp_pool;

// Something a worker runs: a stream's pipeline. Derive, implement run(), create with `new`
// (the last release() deletes it) and start with one reference owned by the creator.
class dsp_task {
  public:
    dsp_task() = default;
    dsp_task(const dsp_task&) = delete;
    dsp_task& operator=(const dsp_task&) = delete;

    void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
            delete this;
        }
    }

  protected:
    virtual ~dsp_task() = default;
    // Called on the task's worker after schedule(); does whatever the task's rings hold. Work
    // that arrives while run() is in progress schedules the task again, so nothing is missed.
    virtual void run() noexcept = 0;

  private:
    friend class dsp_pool;
    std::atomic<dsp_task*> next_{nullptr}; // run-queue link
    std::atomic<std::uint32_t> refs_{1};
    std::atomic<bool> queued_{false};
};

struct dsp_pool_counters {
    std::uint64_t runs = 0;     // task runs (one per wake-up of a task, not per frame)
    std::uint64_t wakeups = 0;  // times a worker woke from sleep
    std::uint64_t notifies = 0; // times a producer had to wake a sleeping worker
};

class dsp_pool {
  public:
    // Starts `threads` workers (>= 1).
    explicit dsp_pool(std::size_t threads);
    ~dsp_pool();
    dsp_pool(const dsp_pool&) = delete;
    dsp_pool& operator=(const dsp_pool&) = delete;

    std::size_t threads() const noexcept { return workers_.size(); }

    // The worker for a new stream: round-robin. Any thread.
    std::size_t assign() noexcept;

    // Makes `task` run soon on worker `worker` (from assign(); always the same one for a task).
    // Cheap when already queued. Any thread; never blocks, never allocates.
    void schedule(std::size_t worker, dsp_task& task) noexcept;

    // Totals over all workers (approximate while running). Any thread.
    dsp_pool_counters counters() const noexcept;

  private:
    struct worker;
    void run_worker(worker& w) noexcept;
    static dsp_task* pop(worker& w) noexcept;

    std::vector<std::unique_ptr<worker>> workers_;
    std::atomic<std::size_t> next_worker_{0};
};

} // namespace callstream::pipeline
