/* fuzz.h: what the libFuzzer harnesses share (fuzz_common.c).
 *
 * Every harness aborts, through FUZZ_CHECK, when a parser breaks its own
 * contract (a success with out-of-range fields, a failure without a reason):
 * libFuzzer reports that like a crash, with the input that did it.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A heap copy of exactly size bytes (the parsers that take a length must not
 * read past it: AddressSanitizer sees the first byte beyond).  free() it. */
char *fuzz_copy(const uint8_t *data, size_t size);

/* A heap copy with a NUL after the size bytes, for the parsers of text
 * files (which is what reading /proc gives them: ms_read_file).  free() it. */
char *fuzz_cstr(const uint8_t *data, size_t size);

void fuzz_fail(const char *file, int line, const char *what);

#define FUZZ_CHECK(cond)                                                                           \
	do {                                                                                       \
		if (!(cond))                                                                       \
			fuzz_fail(__FILE__, __LINE__, #cond);                                      \
	} while (0)
