/* flood: the load of the live benchmark. A loop of TCP connect() calls to a
 * closed loopback port (refused at once, each one a connection attempt to
 * audit) for SECONDS, then "N calls in S s: R calls/s" on stdout.
 *
 *   flood PORT SECONDS [drop-root]
 *
 * drop-root switches to uid/gid 65534 first: the same loop, not audited by
 * audetect's rules (they filter euid=0 in the kernel), shows what the rules
 * cost a process they do not match. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: flood PORT SECONDS [drop-root]\n");
        return 2;
    }
    if (argc > 3 && !strcmp(argv[3], "drop-root")) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) {
            perror("drop-root");
            return 1;
        }
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    double seconds = atof(argv[2]);
    double start = now(), end = start + seconds, t = start;
    unsigned long calls = 0;
    while (t < end) {
        /* The clock is read every 256 calls: reading it each time would be a
         * noticeable part of a loop this tight. */
        for (int i = 0; i < 256; i++) {
            int fd = socket(AF_INET, SOCK_STREAM, 0);
            if (fd < 0) {
                perror("socket");
                return 1;
            }
            connect(fd, (struct sockaddr *)&sa, sizeof sa);
            close(fd);
        }
        calls += 256;
        t = now();
    }
    printf("%lu calls in %.2f s: %.0f calls/s\n", calls, t - start, calls / (t - start));
    return 0;
}
