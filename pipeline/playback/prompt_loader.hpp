#pragma once
// Loads the prompts the play processor sends: WAV (any rate, mono or stereo), Ogg Opus, or a
// generated tone, all turned into 8 kHz mono PCM16 at load time.
//
// Calling thread: any, but never an audio thread: it reads whole files into memory, decodes them
// (codec/wav.hpp, codec/ogg_opus_reader.hpp) and resamples them whole with the pipeline's
// resampler (resample_clip, prompt_resampler_spec(): libsamplerate sinc-medium, the prompt's
// start lined up with the file's). Allocates. Errors are returned as text naming the prompt;
// nothing throws. Output is 8 kHz mono PCM16, owned by the returned `prompt`.
//
// Prompt names are relative to prompts_dir. Absolute paths, ".." components and anything that
// resolves (through symlinks too) outside prompts_dir are refused. A name without an extension
// tries ".wav" then ".opus".

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "pipeline/resampler.hpp"

namespace callstream::pipeline {

struct prompt {
    std::string name;              // as requested: "welcome" or "tone:440:1000"
    std::vector<std::int16_t> pcm; // 8 kHz mono
};

// The file a prompt name refers to, or an error.
std::string resolve_prompt_path(std::string_view name, const std::filesystem::path& prompts_dir,
                                std::filesystem::path& out);

// One prompt: "tone:<hz>:<ms>" or a file name inside prompts_dir.
std::string load_prompt(std::string_view spec, const std::filesystem::path& prompts_dir,
                        prompt& out);

// A comma-separated list ("welcome, tone:440:500, menu"): all or nothing.
std::string load_prompts(std::string_view list, const std::filesystem::path& prompts_dir,
                         std::vector<prompt>& out);

// The converter prompts are resampled with: libsamplerate:sinc-medium. Prompts are converted
// once at load time, so they can afford a better filter than the per-frame default.
resampler_spec prompt_resampler_spec();

// Converts interleaved float audio in [-1, 1] at rate_hz (is_resampler_rate) to 8 kHz mono PCM16:
// the mean of the channels, then resample_clip with prompt_resampler_spec().
std::string to_telephony_pcm(const std::vector<float>& interleaved, int channels,
                             std::uint32_t rate_hz, std::vector<std::int16_t>& out);

} // namespace callstream::pipeline
