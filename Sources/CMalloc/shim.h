// glibc's malloc tuning (malloc_trim(3)) for Swift: Glibc's module does not carry <malloc.h>.
#ifndef HALLWATCH_CMALLOC_SHIM_H
#define HALLWATCH_CMALLOC_SHIM_H
#include <malloc.h>
#endif
