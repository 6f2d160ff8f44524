/* soft_dirty.h: the soft-dirty method (collectors/methods/soft_dirty.c says how it
 * measures). */
#pragma once

#include "memstat/methods/method.h"

extern const ms_method ms_soft_dirty;
