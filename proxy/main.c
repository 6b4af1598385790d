/*
 * warden: an anti-spam SMTP proxy in front of a backend MTA.
 *
 *   warden [-c FILE]      run (embedded defaults without -c)
 *   warden -t [-c FILE]   check the configuration and policies, then exit
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>
#include <event2/thread.h>

#include "config.h"
#include "errors.h"
#include "runtime.h"
#include "server.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: warden [-t] [-c config.yaml]\n"
                 "  -c FILE  configuration (default: embedded defaults)\n"
                 "  -t       check the configuration and policy files, "
                 "then exit\n"
                 "  -V       print the version\n");
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

int main(int argc, char **argv)
{
    const char *path = NULL;
    int test = 0, c;

    while ((c = getopt(argc, argv, "c:thV")) != -1) {
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
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (test)
        return check_config(path);
    return server_run(path);
}
