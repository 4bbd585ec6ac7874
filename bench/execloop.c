/* execloop: the load of the exec benchmark (bench/exec.py). JOBS workers
 * each fork and exec PROGRAM (no arguments) and wait for it, N/JOBS times in
 * all, then "N execs in S s: R execs/s, CPU C s" on stdout: C is the
 * user+system time of the loop and all it started (the kernel's audit work
 * in their system calls included), which other load on the machine
 * disturbs less than the wall time.
 *
 *   execloop N [JOBS [PROGRAM]]      (defaults: 1 job, /bin/true)
 *
 * Every exec is a fork, an execve and an exit_group: the three kinds of
 * process event a rule pack's process rules audit. Exits 1 if any child
 * failed, so that a rate of failing execs is never reported as a rate. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Runs PROGRAM n times, one after another; returns how many failed. */
static long worker(long n, char *program)
{
    char *argv[] = {program, NULL};
    long failed = 0;
    for (long i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return failed + n - i;
        }
        if (pid == 0) {
            execv(program, argv);
            _exit(127);
        }
        int st;
        if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
            failed++;
    }
    return failed;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: execloop N [JOBS [PROGRAM]]\n");
        return 2;
    }
    long n = atol(argv[1]);
    long jobs = argc > 2 ? atol(argv[2]) : 1;
    char *program = argc > 3 ? argv[3] : "/bin/true";
    if (n < 1 || jobs < 1 || jobs > n) {
        fprintf(stderr, "execloop: N and JOBS must be at least 1, JOBS at most N\n");
        return 2;
    }
    double start = now();
    long failed = 0;
    if (jobs == 1) {
        failed = worker(n, program);
    } else {
        for (long j = 0; j < jobs; j++) {
            /* The first workers take the remainder, so that N execs are made. */
            long share = n / jobs + (j < n % jobs);
            pid_t pid = fork();
            if (pid < 0) {
                perror("fork");
                return 1;
            }
            if (pid == 0)
                _exit(worker(share, program) ? 1 : 0);
        }
        int st;
        while (wait(&st) > 0)
            if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                failed++;
    }
    double t = now() - start;
    if (failed) {
        fprintf(stderr, "execloop: %ld %s failed\n", failed, jobs == 1 ? "execs" : "workers");
        return 1;
    }
    struct rusage self, kids;
    getrusage(RUSAGE_SELF, &self);
    getrusage(RUSAGE_CHILDREN, &kids);
    double cpu = self.ru_utime.tv_sec + self.ru_stime.tv_sec + kids.ru_utime.tv_sec + kids.ru_stime.tv_sec +
                 (self.ru_utime.tv_usec + self.ru_stime.tv_usec + kids.ru_utime.tv_usec + kids.ru_stime.tv_usec) / 1e6;
    printf("%ld execs in %.3f s: %.0f execs/s, CPU %.3f s\n", n, t, n / t, cpu);
    return 0;
}
