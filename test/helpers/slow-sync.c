/* LD_PRELOAD: a disk whose fdatasync hangs. While the file named by $SLOW_SYNC_HOLD exists, every
 * fdatasync(2) of the process creates "$SLOW_SYNC_HOLD.entered" and waits (polling every 5 ms) for
 * the hold to be removed, then syncs for real — or, when "$SLOW_SYNC_HOLD.fail" exists then, fails
 * with EIO (a disk that lost the writes). And while "$SLOW_SYNC_HOLD.rename" exists too, rename(2)
 * waits the same way (a file system whose metadata calls hang: an NFS server gone), after creating
 * "$SLOW_SYNC_HOLD.rename.entered". Writes, reads and fsync are the kernel's own. Built by
 * test/helpers/slow-sync.mjs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* Wait while `hold` exists, having created `entered`. */
static void held(const char *hold, const char *entered)
{
	int m = open(entered, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	if (m >= 0)
		close(m);
	struct timespec ts = { 0, 5 * 1000 * 1000 };
	while (access(hold, F_OK) == 0)
		nanosleep(&ts, NULL);
}

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	const char *hold = getenv("SLOW_SYNC_HOLD");
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	if (hold) {
		char flag[4096], entered[4096];
		snprintf(flag, sizeof flag, "%s.rename", hold);
		snprintf(entered, sizeof entered, "%s.rename.entered", hold);
		if (access(hold, F_OK) == 0 && access(flag, F_OK) == 0)
			held(hold, entered);
	}
	return real(from, to);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *hold = getenv("SLOW_SYNC_HOLD");
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	if (hold && access(hold, F_OK) == 0) {
		char entered[4096];
		snprintf(entered, sizeof entered, "%s.entered", hold);
		held(hold, entered);
		char fail[4096];
		snprintf(fail, sizeof fail, "%s.fail", hold);
		if (access(fail, F_OK) == 0) {
			errno = EIO;
			return -1;
		}
	}
	return real(fd);
}
