/* The processes bench/scale.py measures audetect against: many live ones
 * for the process table, or many short ones that connect for the pending
 * sequences.
 *
 *   scale sleepers N      N processes that pause() until killed; prints
 *                         "ready" when all exist, then waits for stdin to
 *                         close and kills them (they share one process group)
 *   scale connect N PORT  N processes one after another, each connects over
 *                         TCP to 127.0.0.1:PORT and exits; prints "done"
 *   scale setsid N        N processes one after another, each calls setsid()
 *                         and exits (the records and process entries of the
 *                         connects, and no sequence); prints "done"
 *
 * Sleepers are clone(CLONE_VM) children: each is its own process in /proc
 * (its own pid, status, cmdline) but they share the parent's memory, so
 * 100,000 of them cost the host kernel task structures, not page tables. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STACK 16384

static int sleeper(void *arg) {
  (void)arg;
  /* Raw syscalls only: the children share the parent's libc state. */
  for (;;) syscall(SYS_pause);
  return 0;
}

static int sleepers(long n) {
  struct rlimit unlimited = {RLIM_INFINITY, RLIM_INFINITY};
  setrlimit(RLIMIT_NPROC, &unlimited);
  setpgid(0, 0);
  char *stacks = mmap(NULL, (size_t)n * STACK, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (stacks == MAP_FAILED) {
    perror("mmap");
    return 1;
  }
  for (long i = 0; i < n; i++) {
    if (clone(sleeper, stacks + (i + 1) * STACK, CLONE_VM | SIGCHLD, NULL) < 0) {
      fprintf(stderr, "clone %ld: ", i);
      perror("");
      kill(0, SIGKILL);
      return 1;
    }
  }
  printf("ready\n");
  fflush(stdout);
  char buf[64];
  while (read(0, buf, sizeof buf) > 0) {
  }
  signal(SIGTERM, SIG_IGN);
  kill(0, SIGTERM);
  while (wait(NULL) > 0) {
  }
  return 0;
}

/* port 0: setsid() instead of a connect. */
static int children(long n, int port) {
  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  for (long i = 0; i < n; i++) {
    pid_t pid = fork();
    if (pid < 0) {
      perror("fork");
      return 1;
    }
    if (pid == 0) {
      if (!port) _exit(setsid() < 0);
      int s = socket(AF_INET, SOCK_STREAM, 0);
      _exit(connect(s, (struct sockaddr *)&to, sizeof to) == 0 ? 0 : 1);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status)) {
      fprintf(stderr, "child %ld failed\n", i);
      return 1;
    }
  }
  printf("done\n");
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "sleepers")) return sleepers(atol(argv[2]));
  if (argc == 4 && !strcmp(argv[1], "connect")) return children(atol(argv[2]), atoi(argv[3]));
  if (argc == 3 && !strcmp(argv[1], "setsid")) return children(atol(argv[2]), 0);
  fprintf(stderr, "usage: scale sleepers N | scale connect N PORT | scale setsid N\n");
  return 2;
}
