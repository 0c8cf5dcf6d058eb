#pragma once
// Polls a condition from a test thread while DSP workers run. Test code only.

#include <chrono>
#include <thread>

namespace callstream::test {

// Polls `done` every millisecond until it holds (true) or 20 s pass (false): generous, for
// TSan on a loaded 2-core machine.
template <typename Pred> bool wait_until(Pred done) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

} // namespace callstream::test
