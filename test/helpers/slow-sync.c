/* LD_PRELOAD: a disk whose fdatasync hangs. While the file named by $SLOW_SYNC_HOLD exists, every
 * fdatasync(2) of the process creates "$SLOW_SYNC_HOLD.entered" and waits (polling every 5 ms) for
 * the hold to be removed, then syncs for real — or, when "$SLOW_SYNC_HOLD.fail" exists then, fails
 * with EIO (a disk that lost the writes). And while "$SLOW_SYNC_HOLD.rename" exists too, rename(2)
 * waits the same way (a file system whose metadata calls hang: an NFS server gone), after creating
 * "$SLOW_SYNC_HOLD.rename.entered". With $SLOW_SYNC_MATCH set, only the fdatasyncs of a file whose
 * path contains it are held (or failed). With $SLOW_SYNC_LOG set, each fdatasync that returned
 * ("fdatasync <rc> <path>"), each fsync that returned ("fsync <rc> <path>": never held) and each
 * rename as it starts ("rename <from> <to>") is appended to that file, one line each: a trace of
 * their order. Writes and reads are the kernel's own. Built
 * by test/helpers/slow-sync.mjs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* One line appended to $SLOW_SYNC_LOG (one write(2) with O_APPEND: lines of threads never mix). */
static void trace(const char *fmt, const char *a, const char *b)
{
	const char *path = getenv("SLOW_SYNC_LOG");
	if (!path)
		return;
	char line[8300];
	int n = snprintf(line, sizeof line, fmt, a, b);
	if (n <= 0)
		return;
	if (n >= (int)sizeof line)
		n = sizeof line - 1;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	ssize_t w = write(fd, line, n);
	(void)w;
	close(fd);
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
	trace("rename %s %s\n", from, to);
	return real(from, to);
}

int fdatasync(int fd)
{
	static int (*real)(int);
	const char *hold = getenv("SLOW_SYNC_HOLD");
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	char link[64], path[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t len = readlink(link, path, sizeof path - 1);
	path[len > 0 ? len : 0] = '\0';
	const char *match = getenv("SLOW_SYNC_MATCH");
	if (match && !strstr(path, match))
		hold = NULL;
	if (hold && access(hold, F_OK) == 0) {
		char entered[4096];
		snprintf(entered, sizeof entered, "%s.entered", hold);
		held(hold, entered);
		char fail[4096];
		snprintf(fail, sizeof fail, "%s.fail", hold);
		if (access(fail, F_OK) == 0) {
			trace("fdatasync %s %s\n", "EIO", path);
			errno = EIO;
			return -1;
		}
	}
	int rc = real(fd);
	int saved = errno;
	trace("fdatasync %s %s\n", rc == 0 ? "0" : "ERR", path);
	errno = saved;
	return rc;
}

int fsync(int fd)
{
	static int (*real)(int);
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	int rc = real(fd);
	int saved = errno;
	if (getenv("SLOW_SYNC_LOG")) {
		char link[64], path[4096];
		snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
		ssize_t len = readlink(link, path, sizeof path - 1);
		path[len > 0 ? len : 0] = '\0';
		trace("fsync %s %s\n", rc == 0 ? "0" : "ERR", path);
	}
	errno = saved;
	return rc;
}
