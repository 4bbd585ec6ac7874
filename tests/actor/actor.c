/* actor: a test program that performs system calls in the order its
 * arguments say, so kernel tests can stage real reverse-shell shapes.
 *
 * Steps (each one argument):
 *   tcp4:PORT  tcp6:PORT   blocking TCP connect to 127.0.0.1 / ::1 (refused is fine)
 *   tcp4nb:PORT            non-blocking TCP connect to 127.0.0.1 (EINPROGRESS)
 *   udp4:PORT              UDP connect to 127.0.0.1
 *   socketcall-tcp4:PORT   tcp4 through socketcall(SYS_CONNECT, ...) (32-bit build only)
 *   socketcall-udp4:PORT   udp4 through socketcall(SYS_CONNECT, ...) (32-bit build only)
 *   fastopen4:PORT         TCP fast open to 127.0.0.1: sendto(MSG_FASTOPEN), no connect()
 *   fastopen-msg4:PORT     the same through sendmsg(MSG_FASTOPEN)
 *   uring4:PORT            TCP connect to 127.0.0.1 as an io_uring IORING_OP_CONNECT
 *   uring4-async:PORT      the same with IOSQE_ASYNC: an io_uring worker runs it
 *   unix:PATH              AF_UNIX stream connect
 *   dup-stdio              dup2 the last connected socket onto fds 0, 1 and 2
 *                          (a reverse shell's stdio; later output goes to the peer)
 *   open:PATH              open PATH read-only and keep it, for swapfd
 *   swapfd:PATH            open PATH and dup2 it onto the last connected socket's
 *                          fd, so that the fd no longer holds the socket when
 *                          audetect looks (the socket itself is closed)
 *   swapfd                 the same with the file of the last open step: one
 *                          dup2 right after the connect
 *   argv-in:PATH           map a page of PATH and point this process's command
 *                          line at it (prctl PR_SET_MM_MAP, which needs no
 *                          privilege): reading /proc/PID/cmdline then reads PATH
 *   setsid                 setsid() in this thread
 *   blocked-connect-setsid:MS
 *                          a TCP connect to a loopback listener of its own whose
 *                          accept queue is full, so that it blocks (SYNs dropped)
 *                          for MS ms (SO_SNDTIMEO, then EINPROGRESS), while a
 *                          second thread calls setsid() 50 ms in: the connect's
 *                          record is written after the setsid's
 *   clock-step:SECONDS     step CLOCK_REALTIME by SECONDS (+120, -120: what
 *                          `date -s` does); the test puts the clock back
 *   thread-setsid          setsid() from a second thread
 *   child-setsid           fork; the child calls setsid(); the parent waits
 *   fork-reap-after:MS     fork; the child does the remaining steps, the parent
 *                          prints "child N", sleeps MS ms (the exited child stays
 *                          a zombie meanwhile), then reaps it and exits
 *   sleep:MS               sleep
 *   drop-root              setresuid/setresgid to 65534
 *   seteuid:UID            seteuid(UID) only: the real and saved uids stay
 *   exec:PATH              execv PATH with the remaining steps as arguments
 *   exit                   _exit(0) at once
 *   pad:TEXT               nothing (makes a command line as long as a test needs)
 * It prints "pid N" first and one line per step to stdout.
 *
 * Built with -m32, every plain connect step calls the i386 connect syscall
 * (362) itself: glibc's connect() there may go through socketcall (102), and
 * glibc 2.36 does. The socketcall-* steps take the other path on purpose.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <linux/io_uring.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* connect(), by the path a step asks for. */
static int do_connect(int fd, const struct sockaddr *a, socklen_t len, int via_socketcall)
{
#if defined(__i386__)
    if (via_socketcall) {
        unsigned long args[3] = { (unsigned long)fd, (unsigned long)a, (unsigned long)len };
        return syscall(SYS_socketcall, 3 /* SYS_CONNECT */, args);
    }
    return syscall(SYS_connect, fd, a, len);
#else
    if (via_socketcall) {
        fprintf(stderr, "socketcall steps need the 32-bit build (cc -m32)\n");
        exit(2);
    }
    return connect(fd, a, len);
#endif
}

/* The socket of the last connect step, for dup-stdio and swapfd; the file
 * of the last open step, for swapfd. */
static int last_socket = -1;
static int last_file = -1;

static void tcp_connect(int family, const char *port, int nonblocking, int type, int via_socketcall)
{
    int fd = socket(family, type | (nonblocking ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) { perror("socket"); exit(2); }
    int rc;
    if (family == AF_INET) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
        inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
        rc = do_connect(fd, (struct sockaddr *)&a, sizeof a, via_socketcall);
    } else {
        struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(atoi(port)) };
        inet_pton(AF_INET6, "::1", &a.sin6_addr);
        rc = do_connect(fd, (struct sockaddr *)&a, sizeof a, via_socketcall);
    }
    printf("connect %s -> %d (%s)\n", port, rc, rc ? strerror(errno) : "ok");
    last_socket = fd;
    /* The socket stays open: the daemon looks at it in /proc. */
}

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

/* A connect with no connect(): TCP fast open sends the first bytes with
 * the SYN (with no cookie cached, the kernel sends a plain SYN and the data
 * after the handshake). */
static void fast_open(const char *port, int via_sendmsg)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) { perror("socket"); exit(2); }
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(port)) };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    char hello[] = "hello\n";
    long rc;
    if (via_sendmsg) {
        struct iovec iov = { .iov_base = hello, .iov_len = sizeof hello - 1 };
        struct msghdr m = { .msg_name = &a, .msg_namelen = sizeof a, .msg_iov = &iov, .msg_iovlen = 1 };
        rc = sendmsg(fd, &m, MSG_FASTOPEN);
    } else {
        rc = sendto(fd, hello, sizeof hello - 1, MSG_FASTOPEN, (struct sockaddr *)&a, sizeof a);
    }
    printf("fastopen %s -> %ld (%s)\n", port, rc, rc < 0 ? strerror(errno) : "ok");
    last_socket = fd;
}

/* A connect that io_uring performs: set up a ring, submit one
 * IORING_OP_CONNECT and wait for it (no liburing: the raw calls). */
static void uring_connect(const char *port, int async)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    int ring = syscall(__NR_io_uring_setup, 4, &p);
    if (ring < 0) { perror("io_uring_setup"); exit(2); }
    char *sq = mmap(0, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(0, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    char *cq = mmap(0, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe), PROT_READ | PROT_WRITE,
                    MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_CQ_RING);
    if (sq == MAP_FAILED || sqes == MAP_FAILED || cq == MAP_FAILED) { perror("mmap"); exit(2); }
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    static struct sockaddr_in a;
    a.sin_family = AF_INET;
    a.sin_port = htons(atoi(port));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    struct io_uring_sqe *e = &sqes[0];
    memset(e, 0, sizeof *e);
    e->opcode = IORING_OP_CONNECT;
    e->fd = fd;
    e->addr = (unsigned long)&a;
    e->off = sizeof a;
    if (async) e->flags = IOSQE_ASYNC;
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail), *mask = (unsigned *)(sq + p.sq_off.ring_mask);
    ((unsigned *)(sq + p.sq_off.array))[*tail & *mask] = 0;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    int n = syscall(__NR_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    struct io_uring_cqe *c = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
    printf("uring connect %s -> %d (enter %d)\n", port, c[0].res, n);
    if (n != 1) exit(2);
    last_socket = fd;
}

/* struct prctl_mm_map (linux/prctl.h, which clashes with sys/prctl.h). */
struct mm_map {
    unsigned long long start_code, end_code, start_data, end_data, start_brk, brk,
        start_stack, arg_start, arg_end, env_start, env_end;
    unsigned long long *auxv;
    unsigned int auxv_size, exe_fd;
};

/* Points the command line at [start, end): the memory map as it is
 * (from /proc/self/stat), with only the arguments moved. */
static int set_args(char *start, char *end)
{
    char buf[2048];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f || !fgets(buf, sizeof buf, f)) return -1;
    fclose(f);
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long v[64] = { 0 };
    int n = 3; /* the first field after the name is field 3 */
    for (char *t = strtok(p + 2, " "); t && n < 64; t = strtok(NULL, " ")) v[n++] = strtoull(t, NULL, 10);
    struct mm_map m = {
        .start_code = v[26], .end_code = v[27], .start_stack = v[28],
        .start_data = v[45], .end_data = v[46], .start_brk = v[47],
        .brk = (unsigned long long)(unsigned long)sbrk(0),
        .arg_start = (unsigned long)start, .arg_end = (unsigned long)end,
        .env_start = v[50], .env_end = v[51], .auxv = NULL, .auxv_size = 0, .exe_fd = -1,
    };
    return prctl(PR_SET_MM, 14 /* PR_SET_MM_MAP */, (unsigned long)&m, sizeof m, 0);
}

static void *late_setsid_thread(void *arg)
{
    (void)arg;
    usleep(50 * 1000);
    pid_t s = setsid();
    printf("thread setsid during the connect -> %d\n", (int)s);
    if (s < 0) exit(3);
    return NULL;
}

static void blocked_connect_setsid(int ms)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = { .sin_family = AF_INET };
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    if (bind(l, (struct sockaddr *)&a, sizeof a) || listen(l, 0) || getsockname(l, (struct sockaddr *)&a, &len)) {
        perror("listener"); exit(2);
    }
    /* One connection fills an accept queue of backlog 0; later SYNs are
     * dropped. It comes from a child running as nobody, so that the only
     * root connect of this process is the blocked one. */
    int ready[2];
    if (pipe(ready)) { perror("pipe"); exit(2); }
    pid_t filler = fork();
    if (filler == 0) {
        if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) _exit(2);
        int f = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(f, (struct sockaddr *)&a, sizeof a)) _exit(2);
        if (write(ready[1], "x", 1) != 1) _exit(2);
        pause();
        _exit(0);
    }
    char c;
    if (read(ready[0], &c, 1) != 1) { fprintf(stderr, "filler failed\n"); exit(2); }
    usleep(20 * 1000);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    pthread_t t;
    pthread_create(&t, NULL, late_setsid_thread, NULL);
    int rc = connect(fd, (struct sockaddr *)&a, sizeof a);
    printf("blocked connect %d -> %d (%s)\n", ntohs(a.sin_port), rc, rc ? strerror(errno) : "ok");
    pthread_join(t, NULL);
    kill(filler, SIGKILL);
    waitpid(filler, NULL, 0);
    last_socket = fd;
}

static void *setsid_thread(void *arg)
{
    (void)arg;
    pid_t s = setsid();
    printf("thread setsid -> %d\n", (int)s);
    if (s < 0) exit(3);
    return NULL;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    printf("pid %d\n", (int)getpid());
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        if (!strncmp(s, "tcp4:", 5)) tcp_connect(AF_INET, s + 5, 0, SOCK_STREAM, 0);
        else if (!strncmp(s, "tcp6:", 5)) tcp_connect(AF_INET6, s + 5, 0, SOCK_STREAM, 0);
        else if (!strncmp(s, "tcp4nb:", 7)) tcp_connect(AF_INET, s + 7, 1, SOCK_STREAM, 0);
        else if (!strncmp(s, "udp4:", 5)) tcp_connect(AF_INET, s + 5, 0, SOCK_DGRAM, 0);
        else if (!strncmp(s, "socketcall-tcp4:", 16)) tcp_connect(AF_INET, s + 16, 0, SOCK_STREAM, 1);
        else if (!strncmp(s, "socketcall-udp4:", 16)) tcp_connect(AF_INET, s + 16, 0, SOCK_DGRAM, 1);
        else if (!strncmp(s, "fastopen4:", 10)) fast_open(s + 10, 0);
        else if (!strncmp(s, "fastopen-msg4:", 14)) fast_open(s + 14, 1);
        else if (!strncmp(s, "uring4:", 7)) uring_connect(s + 7, 0);
        else if (!strncmp(s, "uring4-async:", 13)) uring_connect(s + 13, 1);
        else if (!strncmp(s, "clock-step:", 11)) {
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            now.tv_sec += atol(s + 11);
            int rc = clock_settime(CLOCK_REALTIME, &now);
            printf("clock-step %s -> %d\n", s + 11, rc);
            if (rc < 0) exit(3);
        }
        else if (!strncmp(s, "seteuid:", 8)) {
            int rc = seteuid(atoi(s + 8));
            printf("seteuid %s -> %d\n", s + 8, rc);
            if (rc < 0) exit(3);
        }
        else if (!strncmp(s, "unix:", 5)) {
            int fd = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un a = { .sun_family = AF_UNIX };
            strncpy(a.sun_path, s + 5, sizeof a.sun_path - 1);
            int rc = do_connect(fd, (struct sockaddr *)&a, sizeof a, 0);
            printf("unix connect -> %d\n", rc);
            if (rc < 0 && strcmp(s + 5, "/nonexistent")) exit(3);
        } else if (!strcmp(s, "dup-stdio")) {
            if (last_socket < 0) { fprintf(stderr, "dup-stdio: no socket yet\n"); exit(2); }
            for (int fd = 0; fd <= 2; fd++)
                if (dup2(last_socket, fd) < 0) { perror("dup2"); exit(2); }
            printf("stdio now socket %d\n", last_socket);
        } else if (!strncmp(s, "open:", 5)) {
            last_file = open(s + 5, O_RDONLY | O_CLOEXEC);
            if (last_file < 0) { perror("open"); exit(2); }
            printf("opened %s\n", s + 5);
        } else if (!strcmp(s, "swapfd") || !strncmp(s, "swapfd:", 7)) {
            if (last_socket < 0) { fprintf(stderr, "swapfd: no socket yet\n"); exit(2); }
            int f = s[6] ? open(s + 7, O_RDONLY | O_CLOEXEC) : last_file;
            if (f < 0) { perror("swapfd open"); exit(2); }
            if (dup2(f, last_socket) < 0) { perror("swapfd dup2"); exit(2); }
            printf("fd %d now the file\n", last_socket);
        } else if (!strncmp(s, "argv-in:", 8)) {
            int f = open(s + 8, O_RDONLY | O_CLOEXEC);
            if (f < 0) { perror("argv-in open"); exit(2); }
            char *page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, f, 0);
            if (page == MAP_FAILED) { perror("argv-in mmap"); exit(2); }
            if (set_args(page, page + 4096)) { perror("argv-in prctl"); exit(2); }
            printf("argv now in %s\n", s + 8);
        } else if (!strncmp(s, "fork-reap-after:", 16)) {
            long ms = atol(s + 16);
            pid_t c = fork();
            if (c < 0) { perror("fork"); exit(2); }
            if (c > 0) {
                printf("child %d\n", (int)c);
                struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
                nanosleep(&ts, NULL);
                int st;
                waitpid(c, &st, 0);
                printf("child %d reaped\n", (int)c);
                return 0;
            }
        } else if (!strncmp(s, "blocked-connect-setsid:", 23)) {
            blocked_connect_setsid(atoi(s + 23));
        } else if (!strcmp(s, "setsid")) {
            pid_t r = setsid();
            struct timespec now;
            clock_gettime(CLOCK_REALTIME, &now);
            printf("setsid -> %d at %lld.%09ld\n", (int)r, (long long)now.tv_sec, now.tv_nsec);
            if (r < 0) exit(3);
        } else if (!strcmp(s, "thread-setsid")) {
            pthread_t t;
            pthread_create(&t, NULL, setsid_thread, NULL);
            pthread_join(t, NULL);
        } else if (!strcmp(s, "child-setsid")) {
            pid_t c = fork();
            if (c == 0) _exit(setsid() < 0 ? 3 : 0);
            int st;
            waitpid(c, &st, 0);
            printf("child %d setsid -> exit %d\n", (int)c, WEXITSTATUS(st));
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) exit(3);
        } else if (!strncmp(s, "sleep:", 6)) {
            long ms = atol(s + 6);
            struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
            nanosleep(&ts, NULL);
        } else if (!strcmp(s, "drop-root")) {
            if (setresgid(65534, 65534, 65534) || setresuid(65534, 65534, 65534)) { perror("drop"); exit(2); }
            printf("uid now %d\n", (int)geteuid());
        } else if (!strncmp(s, "exec:", 5)) {
            char **args = calloc(argc - i + 1, sizeof *args);
            args[0] = (char *)(s + 5);
            for (int j = i + 1; j < argc; j++) args[j - i] = argv[j];
            execv(s + 5, args);
            perror("execv");
            exit(2);
        } else if (!strncmp(s, "pad:", 4)) {
            /* nothing */
        } else if (!strcmp(s, "exit")) {
            _exit(0);
        } else {
            fprintf(stderr, "unknown step %s\n", s);
            exit(2);
        }
    }
    return 0;
}
