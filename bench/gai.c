/*
 * The reference for dnsbench's resolver mode: real glibc getaddrinfo() in
 * threads, on whatever /etc/resolv.conf the process sees (bench/run.mjs runs
 * it under `ip netns exec`, which mounts the namespace's resolv.conf).
 *
 *   gai THREADS SECONDS NAME
 *
 * Prints "lookups=N ok=N failed=N seconds=S". Each thread starts lookups until
 * SECONDS have passed, then the run waits for those in flight (as dnsbench
 * --duration does); S is the whole time. AF_UNSPEC + SOCK_DGRAM, as a program
 * that connects to a name does (glibc sends A and AAAA together).
 */
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_long ok, failed;
static struct timespec until;
static const char *name;

static void *worker(void *arg) {
  (void)arg;
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_DGRAM;
  for (;;) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec)) break;
    struct addrinfo *res = NULL;
    if (getaddrinfo(name, NULL, &hints, &res) == 0) {
      atomic_fetch_add(&ok, 1);
      freeaddrinfo(res);
    } else {
      atomic_fetch_add(&failed, 1);
    }
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: gai THREADS SECONDS NAME\n");
    return 2;
  }
  int threads = atoi(argv[1]);
  double seconds = atof(argv[2]);
  name = argv[3];
  if (threads < 1 || threads > 4096 || !(seconds > 0 && seconds <= 600)) return 2;
  pthread_t *t = calloc((size_t)threads, sizeof *t);
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  until = a;
  until.tv_sec += (time_t)seconds;
  until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  clock_gettime(CLOCK_MONOTONIC, &b);
  double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
  printf("lookups=%ld ok=%ld failed=%ld seconds=%.6f\n", (long)(ok + failed), (long)ok, (long)failed, s);
  free(t);
  return 0;
}
