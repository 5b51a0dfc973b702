/*
 * The floor in C: bench/floor.mjs's workload (a fixed query, its ID bumped,
 * one reply -> one new query, IN_FLIGHT outstanding over SOCKETS connected
 * sockets) with no runtime in between, two ways:
 *
 *   plain: send() and recv() per datagram, as dnsperf and Node's UDP handle do;
 *   mmsg:  recvmmsg() up to 64 replies per call into reused buffers, and one
 *          sendmmsg() for the queries that replace them: what a native addon
 *          for dnsbench could do.
 *
 * So that `npm run bench` can show what Node itself costs per query (Node
 * floor / C plain) and what batching would buy (C mmsg / C plain), measured,
 * not guessed (issue #11).
 *
 *   cc -O2 -o floor bench/floor.c
 *   IN_FLIGHT=100 ./floor PORT SOCKETS SECONDS plain|mmsg
 *
 * Prints one JSON line, as floor.mjs does: qps and CPU (user + system) per query.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

/* bench.test A, ID 0: the query floor.mjs sends. */
static const unsigned char QUERY[] = {0x00, 0x00, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 'b', 'e', 'n',
                                      'c', 'h', 0x04, 't', 'e', 's', 't', 0x00, 0x00, 0x01, 0x00, 0x01};

static unsigned id;

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void next_query(unsigned char *q) {
  memcpy(q, QUERY, sizeof QUERY);
  id = (id + 1) & 0xffff;
  q[0] = id >> 8;
  q[1] = id & 255;
}

static void die(const char *what) {
  perror(what);
  exit(2);
}

int main(int argc, char **argv) {
  if (argc != 5 || (strcmp(argv[4], "plain") != 0 && strcmp(argv[4], "mmsg") != 0)) {
    fprintf(stderr, "usage: floor PORT SOCKETS SECONDS plain|mmsg\n");
    return 2;
  }
  int port = atoi(argv[1]);
  int nsock = atoi(argv[2]);
  double secs = atof(argv[3]);
  int mmsg = strcmp(argv[4], "mmsg") == 0;
  int in_flight = getenv("IN_FLIGHT") ? atoi(getenv("IN_FLIGHT")) : 100;
  if (port <= 0 || nsock <= 0 || secs <= 0 || in_flight <= 0) {
    fprintf(stderr, "floor: bad arguments\n");
    return 2;
  }

  struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  int ep = epoll_create1(0);
  if (ep < 0) die("epoll_create1");
  int *fds = calloc(nsock, sizeof *fds);
  for (int i = 0; i < nsock; i++) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int rcv = 1 << 20;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
    if (connect(fd, (struct sockaddr *)&to, sizeof to) < 0) die("connect");
    struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    fds[i] = fd;
  }

  static unsigned char rx[BATCH][512];
  static unsigned char tx[BATCH][sizeof QUERY];
  struct iovec rxv[BATCH], txv[BATCH];
  struct mmsghdr rxm[BATCH], txm[BATCH];
  for (int k = 0; k < BATCH; k++) {
    rxv[k] = (struct iovec){rx[k], sizeof rx[k]};
    txv[k] = (struct iovec){tx[k], sizeof QUERY};
    rxm[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = &rxv[k], .msg_iovlen = 1}};
    txm[k] = (struct mmsghdr){.msg_hdr = {.msg_iov = &txv[k], .msg_iovlen = 1}};
  }

  /* The first IN_FLIGHT queries, round-robin over the sockets, as floor.mjs does. */
  for (int k = 0; k < in_flight; k++) {
    next_query(tx[0]);
    if (send(fds[k % nsock], tx[0], sizeof QUERY, 0) < 0) die("send");
  }

  long answered = 0;
  struct epoll_event evs[256];
  double t0 = now(), end = t0 + secs;
  while (now() < end) {
    int n = epoll_wait(ep, evs, 256, 100);
    if (n < 0 && errno != EINTR) die("epoll_wait");
    for (int e = 0; e < n; e++) {
      int fd = fds[evs[e].data.u32];
      if (mmsg) {
        for (;;) {
          int got = recvmmsg(fd, rxm, BATCH, MSG_DONTWAIT, NULL);
          if (got < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            die("recvmmsg");
          }
          answered += got;
          for (int k = 0; k < got; k++) next_query(tx[k]);
          for (int sent = 0; sent < got;) {
            int s = sendmmsg(fd, txm + sent, got - sent, 0);
            if (s < 0) die("sendmmsg");
            sent += s;
          }
          if (got < BATCH) break;
        }
      } else {
        for (;;) {
          ssize_t r = recv(fd, rx[0], sizeof rx[0], MSG_DONTWAIT);
          if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            die("recv");
          }
          answered++;
          next_query(tx[0]);
          if (send(fd, tx[0], sizeof QUERY, 0) < 0) die("send");
        }
      }
    }
  }
  double s = now() - t0;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  double cpu = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  double user = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  printf("{\"path\":\"%s\",\"sockets\":%d,\"qps\":%.0f,\"cpuUs\":%.2f,\"userUs\":%.2f}\n", mmsg ? "c-mmsg" : "c-plain", nsock, answered / s,
         answered ? cpu * 1e6 / answered : 0.0, answered ? user * 1e6 / answered : 0.0);
  for (int i = 0; i < nsock; i++) close(fds[i]);
  close(ep);
  free(fds);
  return 0;
}
