// Catch2 v2's main, compiled once and shared by every test executable. OpenBLAS is set up as the programs set
// it up (kernels/gemm.h, configure_blas), so that the tests run the products the programs run.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "kernels/gemm.h"

int main(int argc, char** argv) {
  fn::kernels::configure_blas(argv);
  return Catch::Session().run(argc, argv);
}
