/* page_sampling.h: the page-sampling method (collectors/methods/page_sampling.c says how it
 * measures). */
#pragma once

#include "memstat/methods/method.h"

extern const ms_method ms_page_sampling;
