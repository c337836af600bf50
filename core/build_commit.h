// The commit the binaries were built from, for benchmark JSON and checkpoint metadata.
#pragma once

namespace fn {

// git rev-parse --short HEAD at the last build, with "-dirty" when tracked files had uncommitted changes;
// "unknown" when built outside a git checkout. Refreshed at every build, not only when CMake configures.
const char* build_commit();

}  // namespace fn
