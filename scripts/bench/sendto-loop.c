/* A process that is not a target: N calls of 64 bytes on a UNIX socketpair (a
 * thread drains the other end), with `sendto` (the hooked syscall) or `write`
 * (not hooked); or N `recvfrom` of 64 bytes (hooked at its exit: wazuh-db's
 * reads), a thread keeping the other end full with `write`. Prints two numbers: wall-clock ns per call, and the sending
 * thread's CPU time (CLOCK_THREAD_CPUTIME_ID: user + kernel, including the BPF
 * programs run in the syscall) per call. The CPU time does not grow while the
 * thread waits for a core, so it is far less noisy on a shared machine. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fds[2];

static void *feed(void *arg)
{
	static char buf[65536];
	(void)arg;
	memset(buf, 'x', sizeof(buf));
	while (write(fds[1], buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static void *drain(void *arg)
{
	char buf[65536];
	(void)arg;
	while (read(fds[1], buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static double ns(clockid_t c)
{
	struct timespec t;
	clock_gettime(c, &t);
	return t.tv_sec * 1e9 + t.tv_nsec;
}

int main(int argc, char **argv)
{
	int use_write = argc > 1 && !strcmp(argv[1], "write");
	int use_recv = argc > 1 && !strcmp(argv[1], "recvfrom");
	long n = argc > 2 ? atol(argv[2]) : 1000000;
	char msg[64] = "global update-keepalive {\"id\":1}";
	pthread_t th;

	if (argc > 1 && !use_write && !use_recv && strcmp(argv[1], "sendto")) {
		fprintf(stderr, "usage: sendto-loop sendto|write|recvfrom N\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN); /* the feeder's write once this end is shut */
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds))
		return 1;
	pthread_create(&th, NULL, use_recv ? feed : drain, NULL);
	double w0 = ns(CLOCK_MONOTONIC), c0 = ns(CLOCK_THREAD_CPUTIME_ID);
	for (long i = 0; i < n; i++)
		if ((use_recv ? recvfrom(fds[0], msg, sizeof(msg), 0, NULL, NULL)
			      : use_write ? write(fds[0], msg, sizeof(msg)) : sendto(fds[0], msg, sizeof(msg), 0, NULL, 0)) <= 0)
			return 1;
	double c1 = ns(CLOCK_THREAD_CPUTIME_ID), w1 = ns(CLOCK_MONOTONIC);
	printf("%.1f %.1f\n", (w1 - w0) / n, (c1 - c0) / n);
	shutdown(fds[0], SHUT_RDWR);
	return 0;
}
