#define _GNU_SOURCE
/* bench/sink.c — a fast local HTTP/1.1 receiver for the delivery benchmark.
 * epoll, non-blocking, keep-alive; answers every POST with 200 and an empty
 * body; counts them; when a body carries "emittedAt":<epoch microseconds> it
 * records receive-time minus that as a latency sample.
 *   GET /count  -> number of POSTs received
 *   GET /stats  -> "n p50_us p99_us max_us" of the samples since the last /stats
 * usage: sink PORT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUF (256 * 1024)
#define MAX_SAMPLES 2000000

typedef struct { int fd; size_t len; char buf[BUF]; } conn_t;

static unsigned long long posts;
static long long *samples;
static size_t nsamples;

static long long now_us(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (long long)tv.tv_sec * 1000000 + tv.tv_usec;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static void reply(int fd, const char *body)
{
    char out[256];
    int n = snprintf(out, sizeof(out), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s", strlen(body), body);
    if (write(fd, out, n) < 0) { /* the client went away */ }
}

/* Handles every complete request in c->buf; returns 0 to keep the connection. */
static int serve(conn_t *c)
{
    for (;;) {
        char *end, *cl, *p;
        size_t head, body = 0, total;
        c->buf[c->len] = '\0';
        if (!(end = strstr(c->buf, "\r\n\r\n"))) return c->len >= BUF - 1 ? -1 : 0;
        head = (size_t)(end - c->buf) + 4;
        for (cl = c->buf; (cl = strchr(cl, '\n')) && cl < end; ++cl)
            if (!strncasecmp(cl + 1, "content-length:", 15)) { body = strtoul(cl + 16, NULL, 10); break; }
        total = head + body;
        if (total >= BUF) return -1;
        if (c->len < total) return 0;
        if (!strncmp(c->buf, "POST", 4)) {
            long long t = now_us();
            char saved = c->buf[total];
            posts++;
            c->buf[total] = '\0';
            if ((p = strstr(c->buf + head, "\"emittedAt\":")) && nsamples < MAX_SAMPLES)
                samples[nsamples++] = t - strtoll(p + 12, NULL, 10);
            c->buf[total] = saved;
            reply(c->fd, "");
        }
        else if (!strncmp(c->buf, "GET /count", 10)) {
            char b[64];
            snprintf(b, sizeof(b), "%llu", posts);
            reply(c->fd, b);
        }
        else if (!strncmp(c->buf, "GET /stats", 10)) {
            char b[128];
            long long p50 = 0, p99 = 0, max = 0;
            if (nsamples) {
                qsort(samples, nsamples, sizeof(*samples), cmp_ll);
                p50 = samples[nsamples / 2];
                p99 = samples[(size_t)(nsamples * 0.99)];
                max = samples[nsamples - 1];
            }
            snprintf(b, sizeof(b), "%zu %lld %lld %lld", nsamples, p50, p99, max);
            nsamples = 0;
            reply(c->fd, b);
        }
        else reply(c->fd, "");
        memmove(c->buf, c->buf + total, c->len - total);
        c->len -= total;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in a;
    struct epoll_event ev, evs[256];
    int one = 1, lfd, ep;
    if (argc < 2) { fprintf(stderr, "usage: sink PORT\n"); return 2; }
    samples = malloc(sizeof(*samples) * MAX_SAMPLES);
    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)atoi(argv[1]));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 1024)) { perror("bind/listen"); return 1; }
    ep = epoll_create1(0);
    ev.events = EPOLLIN;
    ev.data.ptr = NULL;
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1), i;
        for (i = 0; i < n; ++i) {
            conn_t *c = evs[i].data.ptr;
            if (!c) {
                int fd;
                while ((fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    conn_t *nc = calloc(1, sizeof(*nc));
                    nc->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    ev.events = EPOLLIN;
                    ev.data.ptr = nc;
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            for (;;) {
                ssize_t r = read(c->fd, c->buf + c->len, BUF - 1 - c->len);
                if (r > 0) { c->len += (size_t)r; if (serve(c) < 0) { r = 0; } else continue; }
                if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
                close(c->fd);
                free(c);
                break;
            }
        }
    }
}
