#pragma once
// Sample-rate conversion of mono PCM16: the one resampler path of callstream. The pipeline
// converts between the telephony rate (8 kHz) and the rates processors run at (16, 24, 48 kHz);
// the recorder converts 8 kHz to its Opus rate (12, 16, 24 or 48 kHz); the prompt loader
// converts whole prompts from any file rate to 8 kHz (resample_clip). Two backends:
//   libsamplerate:<converter>   sinc-best | sinc-medium | sinc-fastest | zero-order-hold | linear
//   speex:<quality>             speexdsp's resampler, quality 0 (fastest) .. 10 (best)
// docs/pipeline.md has the measured SNR, passband, delay and cost of each one.
//
// Frames: process() takes any number of input samples and always returns exactly the matching
// number of output samples (in.size() * output_rate / input_rate, remainders carried over), so
// a 20 ms frame in gives a 20 ms frame out. Backends that hold input back (libsamplerate's
// sinc filters need look-ahead) are primed with a fixed run of silence at reset, measured once
// per configuration, so the output never has gaps or clicks at frame boundaries; the price is
// the delay that delay_samples() reports.
//
// Threading: one resampler per stream and direction, used by one thread at a time (the thread
// that runs the stream's pipeline). process() and reset() do not allocate, lock or log.
// make_resampler() allocates and, the first time a configuration is used in the process,
// measures it (a few ms; the results are cached under a mutex): call it at stream setup.
//
// Errors: parse_resampler_spec() reports a bad spec as text; make_resampler() throws
// std::invalid_argument for a rate outside 1 kHz .. 384 kHz and std::runtime_error if the C
// library refuses to create a converter. process() cannot fail.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace callstream::pipeline {

enum class resampler_backend : std::uint8_t { libsamplerate, speex };

struct resampler_spec {
    resampler_backend backend = resampler_backend::speex;
    // speex: 0..10. libsamplerate: the SRC_* converter type (0 sinc-best .. 4 linear).
    int quality = 3;

    std::string to_string() const; // the canonical spec text, e.g. "speex:3"
    friend bool operator==(const resampler_spec&, const resampler_spec&) = default;
};

// The default, chosen by measurement (docs/pipeline.md): speexdsp quality 3 keeps a 2-core
// machine well above 2,000 calls resampled 8<->16 kHz both ways with ~3 ms of delay and an SNR
// far above what μ-law can carry (~38 dB).
inline constexpr std::string_view default_resampler_spec = "speex:3";

struct resampler_spec_result {
    resampler_spec spec;
    std::string error; // empty on success
};

// "speex:0".."speex:10", "libsamplerate:sinc-best|sinc-medium|sinc-fastest|zero-order-hold|
// linear". Anything else is an error saying what is accepted.
resampler_spec_result parse_resampler_spec(std::string_view text);

// Every spec the factory accepts, in canonical text form (for tests, benchmarks and --help).
std::vector<std::string> all_resampler_specs();

// The rates a processor may run at: 8000, 16000, 24000 or 48000.
bool is_supported_rate(std::uint32_t rate_hz) noexcept;
// The rates make_resampler() converts between: any rate in 1 kHz .. 384 kHz (prompt files come
// at 11.025, 22.05, 44.1 kHz and more).
inline constexpr std::uint32_t min_resampler_rate_hz = 1000;
inline constexpr std::uint32_t max_resampler_rate_hz = 384000;
bool is_resampler_rate(std::uint32_t rate_hz) noexcept;

class resampler {
  public:
    virtual ~resampler();
    resampler(const resampler&) = delete;
    resampler& operator=(const resampler&) = delete;

    // Converts `in` and writes the matching number of output samples to the front of `out`;
    // returns how many (out.size() must be at least in.size() * output / input rate, rounded
    // up). Input may be any length; 20 ms frames are the designed-for case.
    std::size_t process(std::span<const std::int16_t> in, std::span<std::int16_t> out) noexcept;

    // Forgets all history (after a clear or a break in the stream) and re-primes.
    void reset() noexcept;

    // Measured group delay (input to output, cross-correlation of a band-limited pulse) in
    // samples at the output rate, for 20 ms frames. Includes the priming silence.
    double delay_samples() const noexcept { return delay_samples_; }
    double delay_ms() const noexcept { return delay_samples_ * 1000.0 / output_rate_hz_; }

    std::uint32_t input_rate_hz() const noexcept { return input_rate_hz_; }
    std::uint32_t output_rate_hz() const noexcept { return output_rate_hz_; }
    const resampler_spec& spec() const noexcept { return spec_; }
    // Output samples the backend was late with, filled with silence (0 for 20 ms frames).
    std::uint64_t underrun_samples() const noexcept { return underrun_samples_; }

  protected:
    resampler(const resampler_spec& spec, std::uint32_t input_rate_hz,
              std::uint32_t output_rate_hz);

    // Largest input chunk handed to convert(); process() splits longer input.
    static constexpr std::size_t max_chunk_in = 960;
    std::size_t max_chunk_out() const noexcept;

    // Backend: consume all of `in` (<= max_chunk_in samples), write what the converter
    // produces to `out` (room for max_chunk_out()), return how many.
    virtual std::size_t convert(std::span<const std::int16_t> in,
                                std::span<std::int16_t> out) noexcept = 0;
    virtual void reset_backend() noexcept = 0;

  private:
    friend std::unique_ptr<resampler> make_resampler(const resampler_spec&, std::uint32_t,
                                                     std::uint32_t);
    void configure(std::size_t prime_samples, double delay_samples);
    void fifo_push(std::span<const std::int16_t> samples) noexcept;

    resampler_spec spec_;
    std::uint32_t input_rate_hz_;
    std::uint32_t output_rate_hz_;
    std::uint64_t total_in_ = 0;  // input samples since reset
    std::uint64_t total_out_ = 0; // output samples since reset
    std::size_t prime_samples_ = 0;
    double delay_samples_ = 0.0;
    std::uint64_t underrun_samples_ = 0;
    // Output FIFO (a ring) that turns the backend's uneven output into exact frame sizes.
    std::vector<std::int16_t> fifo_;
    std::size_t fifo_read_ = 0;
    std::size_t fifo_count_ = 0;
    std::vector<std::int16_t> chunk_out_;
};

// Delay of `first` then `second` (first's output rate == second's input rate), in samples at
// second's output rate: what to shift a round trip's output by to line it up with its input.
double round_trip_delay_samples(const resampler& first, const resampler& second) noexcept;

// A converter from `input_rate_hz` to `output_rate_hz` (is_resampler_rate; equal rates are
// allowed and give a plain copy with zero delay).
std::unique_ptr<resampler> make_resampler(const resampler_spec& spec, std::uint32_t input_rate_hz,
                                          std::uint32_t output_rate_hz);

// Converts a whole clip at once (a prompt at load time): returns in.size() * output / input
// rate samples that line up with the input (the converter's delay is trimmed from the front and
// its tail flushed with silence). Any thread; allocates: never on the audio path. Throws as
// make_resampler() does.
std::vector<std::int16_t> resample_clip(const resampler_spec& spec, std::uint32_t input_rate_hz,
                                        std::uint32_t output_rate_hz,
                                        std::span<const std::int16_t> in);

} // namespace callstream::pipeline
