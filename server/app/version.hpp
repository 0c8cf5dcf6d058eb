#pragma once

namespace callstream::server {
inline constexpr const char* version = "0.1.0";
}
