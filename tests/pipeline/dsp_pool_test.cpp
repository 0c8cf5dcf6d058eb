#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pipeline/dsp_pool.hpp"
#include "tests/pipeline/wait_until.hpp"

namespace callstream::pipeline {
namespace {

// A task that counts units of work handed to it through an atomic "ring" (a counter).
class counting_task final : public dsp_task {
  public:
    counting_task(std::atomic<int>& destroyed, std::thread::id* runner)
        : destroyed_(destroyed), runner_(runner) {}
    std::atomic<std::uint64_t> submitted{0};
    std::atomic<std::uint64_t> consumed{0};
    std::atomic<int> wrong_thread{0};

  protected:
    ~counting_task() override { destroyed_.fetch_add(1); }
    void run() noexcept override {
        // A task always runs on the same worker.
        if (*runner_ == std::thread::id{}) {
            *runner_ = std::this_thread::get_id();
        } else if (*runner_ != std::this_thread::get_id()) {
            wrong_thread.fetch_add(1);
        }
        consumed.store(submitted.load(std::memory_order_acquire), std::memory_order_release);
    }

  private:
    std::atomic<int>& destroyed_;
    std::thread::id* runner_; // written only by the worker that runs this task
};

using callstream::test::wait_until;

// Many producers schedule many tasks: every task sees all the work submitted before its last
// schedule(), always on its one worker, and is deleted exactly once when both sides let go.
TEST(dsp_pool, every_scheduled_task_runs_after_its_last_submission_on_one_worker) {
    std::atomic<int> destroyed{0};
    constexpr int tasks = 64;
    std::vector<std::thread::id> runners(tasks);
    std::vector<counting_task*> all;
    std::vector<std::size_t> worker_of;
    {
        dsp_pool pool(2);
        for (int i = 0; i < tasks; ++i) {
            all.push_back(new counting_task(destroyed, &runners[static_cast<std::size_t>(i)]));
            worker_of.push_back(pool.assign());
        }
        const auto producer = [&](int first) {
            for (int round = 0; round < 500; ++round) {
                for (int i = first; i < tasks; i += 2) {
                    auto& t = *all[static_cast<std::size_t>(i)];
                    t.submitted.fetch_add(1, std::memory_order_release);
                    pool.schedule(worker_of[static_cast<std::size_t>(i)], t);
                }
            }
        };
        std::thread a(producer, 0);
        std::thread b(producer, 1);
        a.join();
        b.join();
        for (auto* t : all) {
            EXPECT_TRUE(wait_until([&] { return t->consumed.load() == 500; }));
            EXPECT_EQ(t->wrong_thread.load(), 0);
        }
        const auto c = pool.counters();
        EXPECT_GE(c.runs, static_cast<std::uint64_t>(tasks));
        EXPECT_LE(c.runs, static_cast<std::uint64_t>(tasks) * 500U) << "coalesced, never more";
        for (auto* t : all) {
            t->release(); // the creator's reference
        }
        // A worker lets go of the queue's reference just after run() returns, so the last
        // task's may still be held the moment its work is seen done.
        EXPECT_TRUE(wait_until([&] { return destroyed.load() == tasks; }));
    }
    EXPECT_EQ(destroyed.load(), tasks); // and none twice
}

TEST(dsp_pool, destroying_the_pool_releases_tasks_that_never_ran) {
    std::atomic<int> destroyed{0};
    std::thread::id runner{};
    auto* t = new counting_task(destroyed, &runner);
    {
        dsp_pool pool(1);
        t->retain(); // keep it alive to look at after the pool is gone
        pool.schedule(pool.assign(), *t);
    }
    t->release();
    t->release();
    EXPECT_EQ(destroyed.load(), 1);
}

TEST(dsp_pool, assigns_workers_round_robin) {
    dsp_pool pool(3);
    EXPECT_EQ(pool.threads(), 3U);
    EXPECT_EQ(pool.assign(), 0U);
    EXPECT_EQ(pool.assign(), 1U);
    EXPECT_EQ(pool.assign(), 2U);
    EXPECT_EQ(pool.assign(), 0U);
}

} // namespace
} // namespace callstream::pipeline
