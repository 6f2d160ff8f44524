/* full_scan.h: the full-scan method (collectors/methods/full_scan.c says how it
 * measures). */
#pragma once

#include "memstat/methods/method.h"

extern const ms_method ms_full_scan;
