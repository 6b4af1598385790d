/*
 * control: admin commands over a Unix socket (see control.h).
 */
#include "control.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"
#include "limit_stats.h"
#include "limits_admin.h"
#include "log.h"
#include "runtime.h"
#include "store.h"

#define MAX_LINE 2048
#define MAX_WORDS 16

struct control {
    int fd;
    char path[108];
    pthread_t thread;
    struct store *st;
    struct runtime *(*current)(void *arg);
    void *arg;
};

struct io_ctx {
    struct store *st;
    const struct config *cfg;
};

static int io_show(void *arg, const char *key, struct store_key_info *out)
{
    struct io_ctx *x = arg;
    return store_show(x->st, x->cfg, key, out);
}

static int io_reset(void *arg, const char *key)
{
    struct io_ctx *x = arg;
    return store_reset(x->st, x->cfg, key);
}

int control_run(const char *line, const struct runtime *rt, struct store *st,
                FILE *out)
{
    char buf[MAX_LINE], *words[MAX_WORDS], err[200], *save = NULL;
    int n = 0;
    struct who w;
    struct io_ctx x = {st, rt->cfg};
    struct counter_io io = {io_show, io_reset, &x};

    snprintf(buf, sizeof(buf), "%s", line);
    for (char *t = strtok_r(buf, " \t\r\n", &save); t && n < MAX_WORDS;
         t = strtok_r(NULL, " \t\r\n", &save))
        words[n++] = t;
    if (n == 2 && strcmp(words[0], "limits") == 0 &&
        strcmp(words[1], "stats") == 0) {
        limit_stats_print(out); /* this process's counts */
        return 0;
    }
    if (n < 2 || !((strcmp(words[0], "limits") == 0 &&
                    (strcmp(words[1], "show") == 0 ||
                     strcmp(words[1], "reset") == 0)) ||
                   (strcmp(words[0], "policy") == 0 &&
                    strcmp(words[1], "test") == 0))) {
        fprintf(out, "error: commands: limits show WHO, limits reset WHO, "
                     "limits stats, policy test WHO\n");
        return 2;
    }
    if (who_parse(n - 2, words + 2, &w, err, sizeof(err)) != 0) {
        fprintf(out, "error: %s\n", err);
        return 2;
    }
    if (words[0][0] == 'p')
        return policy_test(rt->cfg, &w, &io, out);
    return limits_report(rt->cfg, &w, words[1][0] == 'r', &io, out);
}

static void serve(struct control *c, int fd)
{
    char line[MAX_LINE];
    size_t used = 0;
    ssize_t r;
    FILE *out;
    struct runtime *rt;

    while (used + 1 < sizeof(line) &&
           (r = read(fd, line + used, sizeof(line) - 1 - used)) > 0) {
        used += (size_t)r;
        if (memchr(line, '\n', used))
            break;
    }
    line[used] = '\0';
    if (!(out = fdopen(fd, "w"))) {
        close(fd);
        return;
    }
    rt = c->current(c->arg);
    /* the last line carries the command's exit status for `warden` */
    fprintf(out, "exit=%d\n", control_run(line, rt, c->st, out));
    runtime_unref(rt);
    fclose(out); /* closes fd */
}

static void *control_main(void *arg)
{
    struct control *c = arg;

    for (;;) {
        int fd = accept(c->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down by control_stop */
        }
        struct timeval tv = {5, 0}; /* an admin client that stalls */
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        serve(c, fd);
    }
    return NULL;
}

static int listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd;
    char dir[sizeof(sun.sun_path)];

    if (strlen(path) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0750); /* /run/warden on first start */
    }
    strcpy(sun.sun_path, path);
    unlink(path); /* a socket left by an earlier run */
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc != 0 || listen(fd, 8) != 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

struct control *control_start(const char *path, struct store *st,
                              struct runtime *(*current)(void *arg),
                              void *arg)
{
    struct control *c;

    if (!path)
        return NULL;
    if (!(c = calloc(1, sizeof(*c))))
        return NULL;
    c->st = st;
    c->current = current;
    c->arg = arg;
    snprintf(c->path, sizeof(c->path), "%s", path);
    c->fd = listen_unix(path);
    if (c->fd < 0) {
        log_warn("control socket %s: %s (admin commands unavailable)", path,
                 strerror(errno));
        free(c);
        return NULL;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        close(c->fd);
        unlink(c->path);
        free(c);
        return NULL;
    }
    log_info("control socket %s", path);
    return c;
}

void control_stop(struct control *c)
{
    if (!c)
        return;
    shutdown(c->fd, SHUT_RDWR); /* wakes the blocked accept() */
    pthread_join(c->thread, NULL);
    close(c->fd);
    unlink(c->path);
    free(c);
}
