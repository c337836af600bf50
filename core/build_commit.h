// The commit the binaries were built from, for benchmark JSON and checkpoint metadata.
#pragma once

namespace fn {

// git rev-parse --short HEAD at the last build, with "-dirty" when tracked files had uncommitted changes;
// "unknown" when the source folder is not the top of a git checkout. Refreshed at every build, not only
// when CMake configures (cmake/build_commit.cmake).
const char* build_commit();

}  // namespace fn
