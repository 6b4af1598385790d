/*
 * privs: switch from root to the configured account after binding.
 */
#ifndef WARDEN_PRIVS_H
#define WARDEN_PRIVS_H

#include <stddef.h>

/*
 * As root: become user (supplementary groups, gid, uid), or fail with a
 * reason in err when the account is missing or is root itself. Not root:
 * nothing changes (logged when user names someone else). 0 or -1.
 */
int privs_drop(const char *user, char *err, size_t len);

#endif
