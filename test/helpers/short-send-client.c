/* A 5.x-style wdb client (non-blocking socket, sendto with MSG_NOSIGNAL, no NUL, sorted keys) whose
 * sends the kernel cuts short: the smallest send buffer and ~6 KB update-agent-data frames, so a
 * sendto returns a short count, the next EAGAIN, and the unsent tail is sent again after poll(POLLOUT),
 * as the real 5.x remoted does (WAZUH-PROTOCOL §1). One request a round trip, as Wazuh. Run with cwd =
 * the Wazuh home, as <home>/bin/wazuh-manager-remoted (a target). Prints
 * `sent K short=N eagain=M replies_ok=R`. Usage: short-send-client <K> <first_id> */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int recv_all(int fd, void *b, size_t n) {
    size_t got = 0;
    for (int tries = 0; got < n && tries < 1000; tries++) {
        ssize_t r = recv(fd, (char *)b + got, n - got, 0);
        if (r > 0) { got += (size_t)r; continue; }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) { struct pollfd p = {fd, POLLIN, 0}; poll(&p, 1, 5000); continue; }
        return -1;
    }
    return got == n ? 0 : -1;
}

int main(int argc, char **argv) {
    int k = argc > 1 ? atoi(argv[1]) : 6, first = argc > 2 ? atoi(argv[2]) : 101, sndbuf = 1, ok = 0;
    long shorts = 0, eagains = 0;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, "queue/db/wdb");
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("connect"); return 1; }
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf); /* the kernel's minimum */
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    static char pad[1001];
    memset(pad, 'u', 1000);
    for (int i = 0; i < k; i++) {
        static char q[8192];
        static unsigned char buf[8200];
        int n = snprintf(q, sizeof q, "global update-agent-data {\"agent_ip\":\"10.3.0.%d\",\"connection_status\":\"active\",\"id\":%d,"
            "\"os_arch\":\"A%s\",\"os_codename\":\"C%s\",\"os_major\":\"M%s\",\"os_name\":\"N%s\",\"os_platform\":\"debian\","
            "\"os_uname\":\"U%s\",\"os_version\":\"V%s\",\"sync_status\":\"synced\",\"version\":\"Wazuh v5.0.0\"}",
            first + i, first + i, pad, pad, pad, pad, pad, pad);
        buf[0] = n & 255; buf[1] = (n >> 8) & 255; buf[2] = (n >> 16) & 255; buf[3] = 0;
        memcpy(buf + 4, q, (size_t)n);
        size_t left = (size_t)n + 4, at = 0;
        for (int tries = 0; left && tries < 1000; tries++) {
            ssize_t r = sendto(fd, buf + at, left, MSG_NOSIGNAL, NULL, 0);
            if (r > 0) { if ((size_t)r < left) shorts++; at += (size_t)r; left -= (size_t)r; continue; }
            if (r < 0 && errno == EAGAIN) { eagains++; struct pollfd p = {fd, POLLOUT, 0}; poll(&p, 1, 5000); continue; }
            perror("sendto");
            return 1;
        }
        unsigned char h[4];
        static char reply[65537];
        if (recv_all(fd, h, 4)) break;
        unsigned len = h[0] | h[1] << 8 | h[2] << 16 | (unsigned)h[3] << 24;
        if (len > 65536 || recv_all(fd, reply, len)) break;
        if (!strncmp(reply, "ok", 2)) ok++;
    }
    printf("sent %d short=%ld eagain=%ld replies_ok=%d\n", k, shorts, eagains, ok);
    return 0;
}
