#include "shared/logging.h"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace testfarm {

bool InitLogging(const std::string& level, bool daemon) {
  auto parsed = spdlog::level::from_str(level);
  if (parsed == spdlog::level::off && level != "off") return false;
  auto logger = spdlog::stderr_color_mt("testfarm");
  if (daemon || parsed < spdlog::level::warn) {
    logger->set_pattern("%^[%Y-%m-%d %H:%M:%S.%e] [%l] [%t]%$ %v");
  } else {
    logger->set_pattern("%^testfarm: %l:%$ %v");
  }
  logger->set_level(parsed);
  spdlog::set_default_logger(logger);
  return true;
}

}  // namespace testfarm
