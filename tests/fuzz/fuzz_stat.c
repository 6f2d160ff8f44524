/* fuzz_stat.c: /proc/PID/stat (ms_parse_stat), how a process is told apart
 * from a later one with its pid.  The input is the file's text,
 * NUL-terminated as ms_read_file gives it. */
#include <errno.h>
#include <stdlib.h>

#include "fuzz.h"
#include "memstat/methods/procfs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = fuzz_cstr(data, size);
	ms_proc_stat st;
	int r = ms_parse_stat(text, &st);

	FUZZ_CHECK(r == 0 || r == -EINVAL);
	if (r == 0)
		FUZZ_CHECK(st.pid > 0);
	free(text);
	return 0;
}
