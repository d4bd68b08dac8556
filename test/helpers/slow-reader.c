/*
 * LD_PRELOAD for test/capture-no-wait.test.ts: the shim's reader thread (named wdbtap-reader) takes
 * SLOW_READER_MS longer in each perf_buffer__consume, which it calls holding the rounds' lock — as a
 * full release after a stall does. Every other thread's consume is the real one, at its speed.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

struct perf_buffer;

int perf_buffer__consume(struct perf_buffer *pb)
{
	static int (*real)(struct perf_buffer *);
	char name[16] = "";

	if (!real) {
		/* libbpf came with the shim, dlopen'd (RTLD_NEXT may not see it): ask it by name. */
		void *lib = dlopen("libbpf.so.1", RTLD_NOW | RTLD_NOLOAD);
		real = (int (*)(struct perf_buffer *))dlsym(lib ? lib : RTLD_NEXT, "perf_buffer__consume");
		if (!real)
			abort();
	}
	prctl(PR_GET_NAME, name);
	const char *ms = getenv("SLOW_READER_MS");
	if (ms && !strcmp(name, "wdbtap-reader"))
		usleep((useconds_t)atoi(ms) * 1000);
	return real(pb);
}
