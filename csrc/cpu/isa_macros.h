// Feature macros for a translation unit compiled under `#pragma GCC target`:
// the pragma enables the instructions but not the macros that sleef.h and
// at::vec test, so each kernels_<isa>.cpp declares them for itself only.
#pragma once
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
