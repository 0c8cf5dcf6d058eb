#include "pipeline/resampler.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <mutex>
#include <numbers>
#include <stdexcept>

#include <samplerate.h>
#include <speex/speex_resampler.h>

namespace callstream::pipeline {

namespace {

constexpr std::array<std::string_view, 5> src_names{"sinc-best", "sinc-medium", "sinc-fastest",
                                                    "zero-order-hold", "linear"};
static_assert(SRC_SINC_BEST_QUALITY == 0 && SRC_LINEAR == 4, "src_names follows SRC_* order");

// Equal rates: a copy, no state, no delay.
class copy_resampler final : public resampler {
  public:
    copy_resampler(const resampler_spec& spec, std::uint32_t rate_hz)
        : resampler(spec, rate_hz, rate_hz) {}

  protected:
    std::size_t convert(std::span<const std::int16_t> in,
                        std::span<std::int16_t> out) noexcept override {
        std::copy(in.begin(), in.end(), out.begin());
        return in.size();
    }
    void reset_backend() noexcept override {}
};

class libsamplerate_resampler final : public resampler {
  public:
    libsamplerate_resampler(const resampler_spec& spec, std::uint32_t in_hz, std::uint32_t out_hz)
        : resampler(spec, in_hz, out_hz), ratio_(static_cast<double>(out_hz) / in_hz),
          in_f_(max_chunk_in), out_f_(max_chunk_out()) {
        int err = 0;
        state_ = src_new(spec.quality, 1, &err);
        if (state_ == nullptr) {
            throw std::runtime_error(std::string("libsamplerate: ") + src_strerror(err));
        }
    }
    ~libsamplerate_resampler() override { src_delete(state_); }

  protected:
    std::size_t convert(std::span<const std::int16_t> in,
                        std::span<std::int16_t> out) noexcept override {
        src_short_to_float_array(in.data(), in_f_.data(), static_cast<int>(in.size()));
        SRC_DATA data{};
        data.src_ratio = ratio_;
        std::size_t used = 0;
        std::size_t made = 0;
        // src_process may stop early when the output buffer is full; ours is sized for the
        // whole chunk, so this loop normally runs once.
        while (used < in.size() && made < out_f_.size()) {
            data.data_in = in_f_.data() + used;
            data.input_frames = static_cast<long>(in.size() - used);
            data.data_out = out_f_.data() + made;
            data.output_frames = static_cast<long>(out_f_.size() - made);
            if (src_process(state_, &data) != 0) {
                break; // only bad arguments fail, which the constructor rules out
            }
            used += static_cast<std::size_t>(data.input_frames_used);
            made += static_cast<std::size_t>(data.output_frames_gen);
            if (data.input_frames_used == 0 && data.output_frames_gen == 0) {
                break;
            }
        }
        src_float_to_short_array(out_f_.data(), out.data(), static_cast<int>(made));
        return made;
    }
    void reset_backend() noexcept override { src_reset(state_); }

  private:
    SRC_STATE* state_ = nullptr;
    double ratio_;
    std::vector<float> in_f_;
    std::vector<float> out_f_;
};

class speex_resampler final : public resampler {
  public:
    speex_resampler(const resampler_spec& spec, std::uint32_t in_hz, std::uint32_t out_hz)
        : resampler(spec, in_hz, out_hz) {
        int err = 0;
        state_ = speex_resampler_init(1, in_hz, out_hz, spec.quality, &err);
        if (state_ == nullptr) {
            throw std::runtime_error(std::string("speexdsp: ") + speex_resampler_strerror(err));
        }
        // speexdsp's first call fills its history with zeros rather than dropping them, so the
        // output starts with the filter's delay already in place (no skip_zeros: we keep the
        // output count exact and report the delay instead).
    }
    ~speex_resampler() override { speex_resampler_destroy(state_); }

  protected:
    std::size_t convert(std::span<const std::int16_t> in,
                        std::span<std::int16_t> out) noexcept override {
        std::size_t used = 0;
        std::size_t made = 0;
        while (used < in.size() && made < out.size()) {
            auto in_len = static_cast<spx_uint32_t>(in.size() - used);
            auto out_len = static_cast<spx_uint32_t>(out.size() - made);
            speex_resampler_process_int(state_, 0, in.data() + used, &in_len, out.data() + made,
                                        &out_len);
            used += in_len;
            made += out_len;
            if (in_len == 0 && out_len == 0) {
                break;
            }
        }
        return made;
    }
    void reset_backend() noexcept override { speex_resampler_reset_mem(state_); }

  private:
    SpeexResamplerState* state_ = nullptr;
};

std::unique_ptr<resampler> make_backend(const resampler_spec& spec, std::uint32_t in_hz,
                                        std::uint32_t out_hz) {
    if (in_hz == out_hz) {
        return std::make_unique<copy_resampler>(spec, in_hz);
    }
    if (spec.backend == resampler_backend::libsamplerate) {
        return std::make_unique<libsamplerate_resampler>(spec, in_hz, out_hz);
    }
    return std::make_unique<speex_resampler>(spec, in_hz, out_hz);
}

// What make_resampler measures once per configuration.
struct calibration {
    resampler_spec spec;
    std::uint32_t in_hz = 0;
    std::uint32_t out_hz = 0;
    std::size_t prime_samples = 0;
    double delay_samples = 0.0;
};

// A band-limited (3 kHz, inside every rate's passband) Hann-windowed sinc pulse centred at
// `centre_s`, sampled at `rate_hz`: the same continuous signal at any rate, so the input and
// the ideal output can be compared directly.
std::vector<double> pulse(std::uint32_t rate_hz, double centre_s, double length_s) {
    constexpr double bandwidth_hz = 3000.0;
    constexpr double half_window_s = 0.010;
    const auto n = static_cast<std::size_t>(length_s * rate_hz);
    std::vector<double> x(n, 0.0);
    for (std::size_t i = 0; i < n; ++i) {
        const double t = static_cast<double>(i) / rate_hz - centre_s;
        if (std::abs(t) >= half_window_s) {
            continue;
        }
        const double arg = 2.0 * bandwidth_hz * t;
        const double sinc =
            arg == 0.0 ? 1.0 : std::sin(std::numbers::pi * arg) / (std::numbers::pi * arg);
        const double window = 0.5 + 0.5 * std::cos(std::numbers::pi * t / half_window_s);
        x[i] = sinc * window;
    }
    return x;
}

} // namespace

// ---- spec parsing -------------------------------------------------------------------------

std::string resampler_spec::to_string() const {
    if (backend == resampler_backend::libsamplerate) {
        return "libsamplerate:" + std::string(src_names.at(static_cast<std::size_t>(quality)));
    }
    return "speex:" + std::to_string(quality);
}

resampler_spec_result parse_resampler_spec(std::string_view text) {
    resampler_spec_result r;
    const auto fail = [&](std::string why) {
        r.error = "bad resampler '" + std::string(text) + "': " + why +
                  " (expected speex:0..10 or libsamplerate:sinc-best|sinc-medium|sinc-fastest|"
                  "zero-order-hold|linear)";
        return r;
    };
    const auto colon = text.find(':');
    if (colon == std::string_view::npos) {
        return fail("missing ':'");
    }
    const std::string_view backend = text.substr(0, colon);
    const std::string_view arg = text.substr(colon + 1);
    if (backend == "speex") {
        int q = -1;
        const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), q);
        if (ec != std::errc{} || end != arg.data() + arg.size() || q < 0 || q > 10) {
            return fail("speex quality must be an integer 0..10");
        }
        r.spec = {resampler_backend::speex, q};
        return r;
    }
    if (backend == "libsamplerate") {
        for (std::size_t i = 0; i < src_names.size(); ++i) {
            if (arg == src_names[i]) {
                r.spec = {resampler_backend::libsamplerate, static_cast<int>(i)};
                return r;
            }
        }
        return fail("unknown libsamplerate converter");
    }
    return fail("unknown backend");
}

std::vector<std::string> all_resampler_specs() {
    std::vector<std::string> specs;
    for (const auto name : src_names) {
        specs.push_back("libsamplerate:" + std::string(name));
    }
    for (int q = 0; q <= 10; ++q) {
        specs.push_back("speex:" + std::to_string(q));
    }
    return specs;
}

bool is_supported_rate(std::uint32_t rate_hz) noexcept {
    return rate_hz == 8000 || rate_hz == 16000 || rate_hz == 24000 || rate_hz == 48000;
}

bool is_resampler_rate(std::uint32_t rate_hz) noexcept {
    return rate_hz >= min_resampler_rate_hz && rate_hz <= max_resampler_rate_hz;
}

// ---- resampler ----------------------------------------------------------------------------

resampler::resampler(const resampler_spec& spec, std::uint32_t input_rate_hz,
                     std::uint32_t output_rate_hz)
    : spec_(spec), input_rate_hz_(input_rate_hz), output_rate_hz_(output_rate_hz),
      chunk_out_(max_chunk_out()) {}

resampler::~resampler() = default;

std::size_t resampler::max_chunk_out() const noexcept {
    // Backends may emit a few samples more than the exact ratio in one call.
    return max_chunk_in * output_rate_hz_ / input_rate_hz_ + 64;
}

void resampler::configure(std::size_t prime_samples, double delay_samples) {
    prime_samples_ = prime_samples;
    delay_samples_ = delay_samples;
    // Room for the priming, one chunk's output and a chunk's worth of backlog.
    fifo_.assign(prime_samples + 2 * max_chunk_out(), 0);
    reset();
}

void resampler::reset() noexcept {
    reset_backend();
    total_in_ = 0;
    total_out_ = 0;
    fifo_read_ = 0;
    // The priming silence stands in for the backend's look-ahead (see the header).
    std::fill(fifo_.begin(), fifo_.end(), std::int16_t{0});
    fifo_count_ = prime_samples_;
}

void resampler::fifo_push(std::span<const std::int16_t> samples) noexcept {
    const std::size_t room = fifo_.size() - fifo_count_;
    if (samples.size() > room) {
        // Cannot happen with the sizing in configure(); keep the newest rather than overrun.
        samples = samples.last(room);
    }
    std::size_t write = (fifo_read_ + fifo_count_) % fifo_.size();
    for (const std::int16_t s : samples) {
        fifo_[write] = s;
        write = write + 1 == fifo_.size() ? 0 : write + 1;
    }
    fifo_count_ += samples.size();
}

std::size_t resampler::process(std::span<const std::int16_t> in,
                               std::span<std::int16_t> out) noexcept {
    std::size_t written = 0;
    while (!in.empty()) {
        const std::span<const std::int16_t> chunk = in.first(std::min(in.size(), max_chunk_in));
        in = in.subspan(chunk.size());
        const std::size_t made = convert(chunk, chunk_out_);
        fifo_push(std::span<const std::int16_t>(chunk_out_).first(made));
        // Exactly the output that the input so far is worth, remainders carried over.
        total_in_ += chunk.size();
        const std::uint64_t due = total_in_ * output_rate_hz_ / input_rate_hz_ - total_out_;
        const std::size_t n = std::min(static_cast<std::size_t>(due), out.size() - written);
        const std::size_t from_fifo = std::min(n, fifo_count_);
        for (std::size_t i = 0; i < from_fifo; ++i) {
            out[written + i] = fifo_[fifo_read_];
            fifo_read_ = fifo_read_ + 1 == fifo_.size() ? 0 : fifo_read_ + 1;
        }
        fifo_count_ -= from_fifo;
        std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(written + from_fifo), n - from_fifo,
                    std::int16_t{0});
        underrun_samples_ += n - from_fifo;
        written += n;
        total_out_ += n;
    }
    return written;
}

double round_trip_delay_samples(const resampler& first, const resampler& second) noexcept {
    return first.delay_samples() * second.output_rate_hz() / first.output_rate_hz() +
           second.delay_samples();
}

// ---- factory ------------------------------------------------------------------------------

namespace {

// Runs a fresh backend on 20 ms frames and returns the largest shortfall of its output against
// the exact ratio: the silence to prime with so that frames always come out whole.
std::size_t measure_prime(resampler& r, std::span<std::int16_t> scratch, std::uint32_t in_hz,
                          std::uint32_t out_hz,
                          std::size_t (*convert)(resampler&, std::span<const std::int16_t>,
                                                 std::span<std::int16_t>)) {
    const std::size_t in_frame = in_hz / 50;
    const std::vector<std::int16_t> silence(in_frame, 0);
    std::int64_t expected = 0;
    std::int64_t produced = 0;
    std::int64_t worst = 0;
    for (int frame = 0; frame < 100; ++frame) { // 2 s: long past any filter's look-ahead
        produced += static_cast<std::int64_t>(convert(r, silence, scratch));
        // Cumulative, so that rates whose 20 ms frame is not a whole number of output samples
        // (11025 Hz) are measured against the exact count process() will ask for.
        expected = static_cast<std::int64_t>(std::uint64_t(frame + 1) * in_frame * out_hz / in_hz);
        worst = std::max(worst, expected - produced);
    }
    return static_cast<std::size_t>(worst);
}

// Cross-correlates the resampler's output for a band-limited pulse with the ideal output and
// returns the lag of the peak (parabolic interpolation), in output samples.
double measure_delay(resampler& r) {
    const std::uint32_t in_hz = r.input_rate_hz();
    const std::uint32_t out_hz = r.output_rate_hz();
    constexpr double centre_s = 0.05;
    constexpr double length_s = 0.2;
    const std::vector<double> x = pulse(in_hz, centre_s, length_s);
    const std::vector<double> ideal = pulse(out_hz, centre_s, length_s);
    std::vector<std::int16_t> in(x.size());
    std::transform(x.begin(), x.end(), in.begin(),
                   [](double v) { return static_cast<std::int16_t>(std::lround(v * 16000.0)); });
    std::vector<std::int16_t> out(ideal.size() + 64, 0);
    std::size_t made = 0;
    const std::size_t in_frame = in_hz / 50;
    for (std::size_t i = 0; i + in_frame <= in.size(); i += in_frame) {
        made += r.process(std::span<const std::int16_t>(in).subspan(i, in_frame),
                          std::span<std::int16_t>(out).subspan(made));
    }
    const auto max_lag = static_cast<std::ptrdiff_t>(out_hz / 20); // 50 ms
    std::vector<double> corr(static_cast<std::size_t>(max_lag) + 1, 0.0);
    for (std::ptrdiff_t lag = 0; lag <= max_lag; ++lag) {
        double c = 0.0;
        for (std::size_t n = static_cast<std::size_t>(lag); n < made; ++n) {
            c += out[n] * ideal[n - static_cast<std::size_t>(lag)];
        }
        corr[static_cast<std::size_t>(lag)] = c;
    }
    const auto peak = static_cast<std::size_t>(
        std::distance(corr.begin(), std::max_element(corr.begin(), corr.end())));
    double frac = 0.0;
    if (peak > 0 && peak + 1 < corr.size()) {
        const double a = corr[peak - 1];
        const double b = corr[peak];
        const double c = corr[peak + 1];
        const double denom = a - 2.0 * b + c;
        if (denom != 0.0) {
            frac = 0.5 * (a - c) / denom;
        }
    }
    return static_cast<double>(peak) + frac;
}

} // namespace

std::unique_ptr<resampler> make_resampler(const resampler_spec& spec, std::uint32_t input_rate_hz,
                                          std::uint32_t output_rate_hz) {
    if (!is_resampler_rate(input_rate_hz) || !is_resampler_rate(output_rate_hz)) {
        throw std::invalid_argument("unsupported resampler rate " + std::to_string(input_rate_hz) +
                                    " -> " + std::to_string(output_rate_hz) + " Hz");
    }
    std::unique_ptr<resampler> r = make_backend(spec, input_rate_hz, output_rate_hz);

    // Never destroyed: the recorder's writer thread (a static of its own, constructed before
    // this cache) still makes resamplers while exit() runs static destructors.
    static std::mutex& cache_mutex = *new std::mutex;
    static std::vector<calibration>& cache = *new std::vector<calibration>;
    {
        std::lock_guard lock(cache_mutex);
        for (const calibration& c : cache) {
            if (c.spec == spec && c.in_hz == input_rate_hz && c.out_hz == output_rate_hz) {
                r->configure(c.prime_samples, c.delay_samples);
                return r;
            }
        }
    }
    // Measure on a throw-away instance so `r` starts clean. Two threads measuring the same
    // configuration at once get the same numbers; the second entry is harmless.
    calibration c{spec, input_rate_hz, output_rate_hz, 0, 0.0};
    {
        std::unique_ptr<resampler> probe = make_backend(spec, input_rate_hz, output_rate_hz);
        std::vector<std::int16_t> scratch(probe->max_chunk_out());
        c.prime_samples =
            measure_prime(*probe, scratch, input_rate_hz, output_rate_hz,
                          [](resampler& p, std::span<const std::int16_t> in,
                             std::span<std::int16_t> out) { return p.convert(in, out); });
        probe->configure(c.prime_samples, 0.0);
        c.delay_samples = measure_delay(*probe);
    }
    {
        std::lock_guard lock(cache_mutex);
        cache.push_back(c);
    }
    r->configure(c.prime_samples, c.delay_samples);
    return r;
}

std::vector<std::int16_t> resample_clip(const resampler_spec& spec, std::uint32_t input_rate_hz,
                                        std::uint32_t output_rate_hz,
                                        std::span<const std::int16_t> in) {
    const std::unique_ptr<resampler> r = make_resampler(spec, input_rate_hz, output_rate_hz);
    const auto expected =
        static_cast<std::size_t>(std::uint64_t{in.size()} * output_rate_hz / input_rate_hz);
    const auto delay = static_cast<std::size_t>(std::lround(r->delay_samples()));
    // Enough trailing silence to push the last input sample through the converter's delay.
    const std::size_t tail_in =
        static_cast<std::size_t>(std::uint64_t{delay + 1} * input_rate_hz / output_rate_hz) +
        input_rate_hz / 50 + 1;
    std::vector<std::int16_t> padded(in.begin(), in.end());
    padded.resize(in.size() + tail_in, 0);
    std::vector<std::int16_t> out(
        static_cast<std::size_t>(std::uint64_t{padded.size()} * output_rate_hz / input_rate_hz) +
        1);
    const std::size_t made = r->process(padded, out);
    out.resize(made);
    // Drop the converter's delay from the front: output sample i lines up with input time i.
    const std::size_t from = std::min(delay, out.size());
    std::vector<std::int16_t> aligned(out.begin() + static_cast<std::ptrdiff_t>(from), out.end());
    aligned.resize(expected, 0);
    return aligned;
}

} // namespace callstream::pipeline
