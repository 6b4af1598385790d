/*
 * CHECK: the fuzz targets' assertion. A failed property aborts, which
 * libFuzzer reports as a crash and keeps the input.
 */
#ifndef WARDEN_FUZZCHECK_H
#define WARDEN_FUZZCHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__,   \
                    #cond);                                                    \
            abort();                                                           \
        }                                                                      \
    } while (0)

#endif
