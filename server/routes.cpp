#include "server/routes.hpp"

namespace callstream::server {

void add_extra_routes(server_context& /*ctx*/) {}

} // namespace callstream::server
