/*
 * warden: an anti-spam SMTP proxy in front of a backend MTA.
 *
 *   warden [-c FILE]      run (embedded defaults without -c)
 *   warden -t [-c FILE]   check the configuration and policies, then exit
 *   warden [-c FILE] limits show|reset WHO...   counters of a client/user
 *   warden [-c FILE] policy test WHO...         what would happen to it
 *   warden [-c FILE] score [--rules P] FILE...  content scores, no SMTP
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "control.h"
#include "errors.h"
#include "runtime.h"
#include "score_cli.h"
#include "server.h"
#include "store.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: warden [-t] [-c config.yaml]\n"
                 "  -c FILE  configuration (default: embedded defaults)\n"
                 "  -t       check the configuration and policy files, "
                 "then exit\n"
                 "  -V       print the version\n"
                 "       warden [-c config.yaml] limits show|reset WHO...\n"
                 "       warden [-c config.yaml] limits stats\n"
                 "       warden [-c config.yaml] policy test WHO...\n"
                 "       warden [-c config.yaml] score [--rules PATH]... "
                 "FILE|DIR...\n"
                 "  WHO: ip=ADDRESS user=NAME sender=ADDRESS helo=NAME "
                 "rcpt=ADDRESS listener=NAME\n");
}

/* -t: load everything a start would load, report every error. */
static int check_config(const char *path)
{
    struct errors errs = {0};
    struct config *cfg = path ? config_load(path, &errs) : config_defaults();
    struct runtime *rt = cfg ? runtime_new(cfg, &errs) : NULL;
    int rc = rt ? 0 : 1;

    if (rt)
        printf("%s: configuration ok\n", path ? path : "(defaults)");
    errors_print(&errs, stderr);
    errors_free(&errs);
    runtime_unref(rt);
    return rc;
}

/* Ask the running daemon (its counters live in its memory). */
static int via_socket(const char *path, const char *line)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char buf[4096], *all = NULL, *status;
    size_t len = 0;
    ssize_t n;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0), rc = 1;

    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "warden: cannot reach the daemon at %s: %m\n"
                        "(the memory store lives inside the running warden)\n",
                path);
        if (fd >= 0)
            close(fd);
        return 1;
    }
    if (write(fd, line, strlen(line)) >= 0 && write(fd, "\n", 1) >= 0) {
        while ((n = read(fd, buf, sizeof(buf))) > 0) {
            char *p = realloc(all, len + (size_t)n + 1);
            if (!p)
                break;
            all = p;
            memcpy(all + len, buf, (size_t)n);
            len += (size_t)n;
            all[len] = '\0';
        }
    }
    close(fd);
    /* the daemon ends with "exit=N": our status, not part of the report */
    status = NULL;
    for (char *p = all; p && (p = strstr(p, "exit=")); p += 5)
        if (p == all || p[-1] == '\n')
            status = p;
    if (status) {
        rc = atoi(status + 5);
        *status = '\0';
    }
    if (all)
        fputs(all, stdout);
    free(all);
    return rc;
}

/* limits show|reset, policy test: Redis is read directly, the memory
 * store through the daemon's control socket. */
static int admin_command(const char *path, int argc, char **argv)
{
    struct errors errs = {0};
    struct config *cfg = path ? config_load(path, &errs) : config_defaults();
    struct runtime *rt = cfg ? runtime_new(cfg, &errs) : NULL;
    char line[2048] = "";
    int rc;

    if (!rt) {
        errors_print(&errs, stderr);
        errors_free(&errs);
        return 1;
    }
    for (int i = 0; i < argc; i++)
        snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s",
                 i ? " " : "", argv[i]);
    /* stats are the daemon's own counts, whatever the store */
    bool stats = argc >= 2 && strcmp(argv[1], "stats") == 0;
    if (rt->cfg->store.type == STORE_REDIS && !stats) {
        struct store *st = store_new(rt->cfg);
        rc = st ? control_run(line, rt, st, stdout) : 1;
        store_free(st);
    } else if (!rt->cfg->control_socket) {
        fprintf(stderr, "warden: control_socket is \"none\": the memory "
                        "store cannot be reached\n");
        rc = 1;
    } else {
        rc = via_socket(rt->cfg->control_socket, line);
    }
    runtime_unref(rt);
    return rc;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    int test = 0, c;

    while ((c = getopt(argc, argv, "+c:thV")) != -1) {
        switch (c) {
        case 'c':
            path = optarg;
            break;
        case 't':
            test = 1;
            break;
        case 'V':
            printf("warden %s\n", WARDEN_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc && (strcmp(argv[optind], "limits") == 0 ||
                          strcmp(argv[optind], "policy") == 0))
        return admin_command(path, argc - optind, argv + optind);
    if (optind < argc && strcmp(argv[optind], "score") == 0)
        return score_cli(path, argc - optind, argv + optind);
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (test)
        return check_config(path);
    return server_run(path);
}
