/*
 * spf_eval: check SPF through Warden's own path (spf_evaluate: libspf2,
 * the limits of spf_dns.c, dnsq to the given server), for test suites.
 *
 *   spf_eval --dns 127.0.0.1:5353 [--timeout MS] [--budget MS] IP HELO FROM
 *   spf_eval --dns 127.0.0.1:5353 < cases
 *
 * With no case on the command line, each stdin line is one case: IP, HELO
 * and MAIL FROM separated by tabs (an empty FROM is the null sender). Each
 * answer is one line: the result, then a tab and the reason (maybe empty).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "spf.h"

static void usage(void)
{
    fprintf(stderr, "usage: spf_eval --dns HOST:PORT [--timeout MS] "
                    "[--budget MS] [IP HELO FROM]\n");
    exit(2);
}

static void check(const struct dns_conf *dns, unsigned budget, const char *ip,
                  const char *helo, const char *from)
{
    struct spf_query q;
    struct spf_outcome out;

    memset(&q, 0, sizeof(q));
    snprintf(q.ip, sizeof(q.ip), "%s", ip);
    snprintf(q.helo, sizeof(q.helo), "%s", helo);
    snprintf(q.sender, sizeof(q.sender), "%s", from);
    spf_evaluate(&q, dns, budget, &out);
    printf("%s\t%s\n", spf_result_name(out.result), out.why);
    fflush(stdout);
}

static void from_stdin(const struct dns_conf *dns, unsigned budget)
{
    char line[2048];

    while (fgets(line, sizeof(line), stdin)) {
        char *ip = line, *helo, *from;

        line[strcspn(line, "\r\n")] = '\0';
        if (!(helo = strchr(ip, '\t')) || !(from = strchr(helo + 1, '\t'))) {
            printf("error\tbad input line\n");
            fflush(stdout);
            continue;
        }
        *helo++ = '\0';
        *from++ = '\0';
        check(dns, budget, ip, helo, from);
    }
}

int main(int argc, char **argv)
{
    struct dns_conf dns = {.timeout = 2000};
    unsigned budget = SPF_BUDGET_MS;
    char err[128];
    int i = 1;

    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--dns") == 0) {
            if (dns.nservers == 4 ||
                netaddr_parse(argv[i + 1], 53, &dns.servers[dns.nservers],
                              err, sizeof(err)) != 0) {
                fprintf(stderr, "spf_eval: %s: %s\n", argv[i + 1], err);
                return 2;
            }
            dns.nservers++;
        } else if (strcmp(argv[i], "--timeout") == 0) {
            dns.timeout = (unsigned)atoi(argv[i + 1]);
        } else if (strcmp(argv[i], "--budget") == 0) {
            budget = (unsigned)atoi(argv[i + 1]);
        } else {
            usage();
        }
    }
    if (dns.nservers == 0)
        usage();
    if (argc - i == 3)
        check(&dns, budget, argv[i], argv[i + 1], argv[i + 2]);
    else if (argc == i)
        from_stdin(&dns, budget);
    else
        usage();
    return 0;
}
