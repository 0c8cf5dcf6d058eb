#pragma once
// A log-linear latency histogram in the style of HdrHistogram: values (any unit; the load
// generator records microseconds) go into 2^sub_bits linear sub-buckets per power of two, so every
// recorded value is kept with a relative error below 1 / 2^sub_bits (0.8 % with the default 7 bits)
// and values below 2^(sub_bits+1) are exact.
//
// Fixed size (no allocation after construction), so recording is safe on a hot path: one
// bit_width, a shift and an increment. Not thread-safe: each thread records into its own histogram
// and the owner merges them once the threads have finished. Values above max_value() are clamped
// to it and counted in clamped().

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <limits>

namespace callstream::bench {

class latency_histogram {
  public:
    static constexpr unsigned sub_bits = 7;
    static constexpr std::uint64_t sub_count = std::uint64_t{1} << sub_bits;
    // Largest magnitude (power of two) tracked: 2^40 µs is 12.7 days.
    static constexpr unsigned max_bits = 40;
    static constexpr std::size_t bucket_count = (max_bits - sub_bits + 1) * sub_count;

    static constexpr std::uint64_t max_value() noexcept {
        return (std::uint64_t{1} << max_bits) - 1;
    }

    // Index of the bucket that holds `value` (value <= max_value()).
    static constexpr std::size_t index_of(std::uint64_t value) noexcept {
        const auto width = static_cast<unsigned>(std::bit_width(value));
        const unsigned shift = width > sub_bits + 1 ? width - (sub_bits + 1) : 0;
        return static_cast<std::size_t>(shift * sub_count + (value >> shift));
    }
    // Smallest and largest value that share bucket `index`.
    static constexpr std::uint64_t lowest_in(std::size_t index) noexcept {
        const std::size_t shift = index < 2 * sub_count ? 0 : index / sub_count - 1;
        return (static_cast<std::uint64_t>(index) - shift * sub_count) << shift;
    }
    static constexpr std::uint64_t highest_in(std::size_t index) noexcept {
        const std::size_t shift = index < 2 * sub_count ? 0 : index / sub_count - 1;
        return lowest_in(index) + (std::uint64_t{1} << shift) - 1;
    }

    void record(std::uint64_t value) noexcept {
        if (value > max_value()) {
            value = max_value();
            ++clamped_;
        }
        ++counts_[index_of(value)];
        ++count_;
        sum_ += value;
        min_ = std::min(min_, value);
        max_ = std::max(max_, value);
    }

    void merge(const latency_histogram& other) noexcept {
        for (std::size_t i = 0; i < bucket_count; ++i) {
            counts_[i] += other.counts_[i];
        }
        count_ += other.count_;
        sum_ += other.sum_;
        clamped_ += other.clamped_;
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }

    void reset() noexcept { *this = latency_histogram{}; }

    // The value below which `percentile` % of the recorded values fall, reported as the highest
    // value of its bucket (as HdrHistogram does) but never above the exact maximum. 0 when empty.
    std::uint64_t value_at_percentile(double percentile) const noexcept {
        if (count_ == 0) {
            return 0;
        }
        const double clamped_pct = std::clamp(percentile, 0.0, 100.0);
        // The rank of the value we want, 1-based: at least the first value.
        auto rank =
            static_cast<std::uint64_t>(clamped_pct / 100.0 * static_cast<double>(count_) + 0.5);
        rank = std::clamp<std::uint64_t>(rank, 1, count_);
        std::uint64_t seen = 0;
        for (std::size_t i = 0; i < bucket_count; ++i) {
            seen += counts_[i];
            if (seen >= rank) {
                return std::min(highest_in(i), max_);
            }
        }
        return max_;
    }

    std::uint64_t count() const noexcept { return count_; }
    std::uint64_t clamped() const noexcept { return clamped_; }
    std::uint64_t min() const noexcept { return count_ == 0 ? 0 : min_; }
    std::uint64_t max() const noexcept { return max_; }
    double mean() const noexcept {
        return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
    }

  private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t clamped_ = 0;
    std::uint64_t min_ = std::numeric_limits<std::uint64_t>::max();
    std::uint64_t max_ = 0;
};

} // namespace callstream::bench
