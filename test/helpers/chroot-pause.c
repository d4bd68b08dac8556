/* A process whose root is another directory, as a container's: /proc/<pid>/root then leads there,
 * and the kernel resolves that process's absolute links inside it. chroot(2) itself, so nothing
 * needs to be installed in the directory. Prints `ready` once inside and waits for its signal.
 * Usage: chroot-pause <dir> */
#include <stdio.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2 || chroot(argv[1]) != 0 || chdir("/") != 0) {
        perror("chroot-pause");
        return 1;
    }
    printf("ready\n");
    fflush(stdout);
    for (;;) pause();
}
