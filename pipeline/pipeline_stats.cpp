#include "pipeline/pipeline_stats.hpp"

namespace callstream::pipeline {

pipeline_stats& stats() noexcept {
    static pipeline_stats instance;
    return instance;
}

} // namespace callstream::pipeline
