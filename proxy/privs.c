/*
 * privs: give up root once the ports are bound, as Postfix's master and
 * OpenSMTPD do. Everything after (sessions, spool files, reloads of the
 * config, policy and TLS files) runs as the configured account.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"

int privs_drop(const char *user, char *err, size_t len)
{
    struct passwd *pw;

    if (geteuid() != 0) {
        /* Started unprivileged (systemd User=, a test): nothing to drop. */
        pw = user ? getpwnam(user) : NULL;
        if (user && (!pw || pw->pw_uid != geteuid()))
            log_info("not started as root: running as uid %u, user %s "
                     "not applied",
                     (unsigned)geteuid(), user);
        return 0;
    }
    errno = 0;
    pw = user ? getpwnam(user) : NULL;
    if (!pw) {
        snprintf(err, len,
                 "user %s: no such account (create it with: useradd --system "
                 "--home-dir /nonexistent --shell /usr/sbin/nologin %s), or "
                 "name another one with user: in the config",
                 user ? user : "(none)", user ? user : "warden");
        return -1;
    }
    if (pw->pw_uid == 0 || pw->pw_gid == 0) {
        snprintf(err, len,
                 "user %s has uid or gid 0: Warden does not run as root; "
                 "name an unprivileged account",
                 user);
        return -1;
    }
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
        setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
        snprintf(err, len, "cannot switch to user %s: %s", user,
                 strerror(errno));
        return -1;
    }
    /* a setuid that only half worked must not go unnoticed */
    if (setuid(0) == 0 || geteuid() == 0) {
        snprintf(err, len, "still root after switching to user %s", user);
        return -1;
    }
    log_info("running as user %s (uid %u, gid %u)", pw->pw_name,
             (unsigned)pw->pw_uid, (unsigned)pw->pw_gid);
    return 0;
}
