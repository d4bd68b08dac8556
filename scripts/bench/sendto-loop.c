/* A process that is not a target making the hooked syscall: N sendto calls of
 * 64 bytes on a UNIX socketpair (the reader drains in a thread). Prints the
 * mean nanoseconds per call. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fds[2];

static void *drain(void *arg)
{
	char buf[65536];
	(void)arg;
	while (read(fds[1], buf, sizeof(buf)) > 0)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	char msg[64] = "global update-keepalive {\"id\":1}";
	struct timespec a, b;
	pthread_t th;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
		return 1;
	pthread_create(&th, NULL, drain, NULL);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (long i = 0; i < n; i++)
		if (sendto(fds[0], msg, sizeof(msg), 0, NULL, 0) < 0)
			return 1;
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%.1f\n", ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n);
	shutdown(fds[0], SHUT_RDWR);
	return 0;
}
