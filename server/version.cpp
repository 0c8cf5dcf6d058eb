#include "server/version.hpp"
