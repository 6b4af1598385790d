/*
 * score_cli: `warden score`, the scorer without SMTP.
 *
 *   warden [-c CONFIG] score [--rules PATH]... [options] FILE|DIR...
 *
 * Scores message files (a directory: each file in it) with the rules of
 * the config's scoring section, or with --rules, and prints one line per
 * message and a summary: how many reach the threshold, and how fast. For
 * testing rules before a reload, for tuning on a corpus
 * (contrib/spam-corpus.py) and for measuring speed.
 */
#ifndef WARDEN_SCORE_CLI_H
#define WARDEN_SCORE_CLI_H

/* argv[0] is "score". Returns the exit status: 0, 1 (an error), 2
 * (usage). */
int score_cli(const char *config_path, int argc, char **argv);

#endif
