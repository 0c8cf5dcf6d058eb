#include "pipeline/scratch_frames.hpp"

namespace callstream::pipeline {

scratch_frames& thread_scratch_frames() noexcept {
    thread_local scratch_frames frames;
    return frames;
}

} // namespace callstream::pipeline
