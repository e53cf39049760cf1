/* SPDX-License-Identifier: Apache-2.0 */
/*
 * cli.h - the `duet` command line: subcommand entry points and the text
 * renderer of inspection results.  Subcommands parse arguments and call the
 * layers below; exit statuses follow each command's documented contract.
 * One file per command, named after it (`duet cert renew` is
 * cmd_cert_renew.c); cmd_<family>.c holds a family's usage and dispatch.  The
 * certificate commands share one option table (cli_opts.c) and what they show
 * of the inventory (cli_inventory.c).
 */
#ifndef DUET_CLI_H
#define DUET_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "ca/ca.h"
#include "lib/err.h"

/* Exit statuses shared by the subcommands. */
enum { EXIT_OK = 0, EXIT_INVALID = 1, EXIT_USAGE = 2 };

int cmd_cert(int argc, char **argv);
int cmd_cert_inspect(int argc, char **argv);
int cmd_cert_verify(int argc, char **argv);
int cmd_ca(int argc, char **argv);
int cmd_ca_init(int argc, char **argv);
int cmd_ca_roots(int argc, char **argv);
int cmd_ca_token(int argc, char **argv);
int cmd_ca_rekey(int argc, char **argv);
int cmd_ca_import_key(int argc, char **argv);
int cmd_ca_serve(int argc, char **argv);
int cmd_ca_migrate(int argc, char **argv);
/* The usage of `duet ca init`, `roots`, `token`, `rekey-storage`, `migrate` and `serve`. */
void cli_ca_usage(FILE *out);
int cmd_crl(int argc, char **argv);
int cmd_ocsp(int argc, char **argv);
int cmd_proxy(int argc, char **argv);
int cmd_tunnel(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_ticket_keys(int argc, char **argv);
int cmd_agent(int argc, char **argv);
int cmd_probe(int argc, char **argv);
int cmd_doctor(int argc, char **argv);
int cmd_cert_issue(int argc, char **argv);
int cmd_cert_sign(int argc, char **argv);
int cmd_cert_list(int argc, char **argv);
int cmd_cert_show(int argc, char **argv);
int cmd_cert_renew(int argc, char **argv);
int cmd_cert_revoke(int argc, char **argv);
int cmd_cert_export(int argc, char **argv);
int cmd_cert_expiring(int argc, char **argv);
int cmd_completion(int argc, char **argv);

/* A top-level command: its name, its subcommands (NULL-terminated; NULL for none), its entry. */
struct cli_command {
    const char *name;
    const char *const *subs;
    int (*fn)(int argc, char **argv);
};
/* Every top-level command, ending with a NULL name (main.c); help and completion walk it. */
extern const struct cli_command cli_commands[];

/* The CA passphrase from --passphrase-file (first line), else DUET_CA_PASSPHRASE. */
int cli_passphrase(const char *file, char **out, struct duet_err *err);
/*
 * Open a CA directory; with `signing`, first cli_protect_secrets(), then
 * decrypt its issuing key with the passphrase.
 */
int cli_open_ca(const char *dir, bool signing, const char *passphrase_file, struct ca **out,
                struct duet_err *err);
/*
 * Parse a duration option that must be positive; on error print "CMD: NAME
 * \"TEXT\": expected a positive duration such as EXAMPLES" and return false.
 */
bool cli_positive_duration(const char *cmd, const char *name, const char *text,
                           const char *examples, int64_t *out);
/*
 * Parse --format: NULL or "text" sets *json false, "json" true; anything else
 * prints "CMD: --format \"TEXT\": expected text or json" (escaped) and returns false.
 */
bool cli_format(const char *cmd, const char *text, bool *json);
/* Print "cmd: message" on stderr, escaped (cli_put_text); returns 1 (failed or refused). */
int cli_fail(const char *cmd, const struct duet_err *err);
/*
 * The refusal of an option getopt_long (with ":" first in its optstring) did
 * not take, argv[optind - 1]: "CMD: --NAME needs a value" when c is ':', else
 * "CMD: --NAME is not an option of this command", on stderr.  Only the name
 * is printed, never an "=value" after it (a value may be a URL with a
 * password), escaped as cli_put_text() does.  The caller prints its usage.
 */
void cli_bad_option(const char *cmd, int c, char *const *argv);

/*
 * Text from certificates, CSRs and the inventory for a terminal: visible ASCII
 * and spaces as they are, every other byte (ESC, CR, LF, bytes of UTF-8) as
 * \xNN, so no escape sequence in a name ever reaches the terminal.  NULL
 * prints nothing.
 */
void cli_put_text(FILE *out, const char *s);
/* The same escaping into a new string (the caller frees it); NULL when out of memory. */
char *cli_text(const char *s);
/*
 * A JSON string for inventory text (owner, location, names): as it is when it
 * is UTF-8, else escaped as cli_text() does, so a row is never dropped; NULL
 * text is JSON null.
 */
json_t *cli_json_text(const char *s);

/*
 * Called before a command reads the CA passphrase or decrypts a CA key: no
 * core dump (RLIMIT_CORE 0) and not dumpable (PR_SET_DUMPABLE 0, which also
 * keeps other processes of the same user from reading its memory).  Fails
 * when either cannot be set; the command must then stop.
 */
int cli_protect_secrets(struct duet_err *err);

/*
 * Whether a command's argument names a live endpoint (`https://HOST:PORT`, or
 * `HOST:PORT` / `[IPV6]:PORT` when no file has that name) instead of a file.
 */
bool cli_is_endpoint(const char *arg);
/*
 * The chain a TLS server sends (leaf first), fetched the way `duet probe`
 * connects: TCP within timeout_ms, a handshake offering TLS 1.2 and 1.3 with
 * SNI and no verification (the caller shows or verifies what came).  *chain
 * (OSSL_STACK_OF_X509_free) and *host (free) are the caller's.  Fails with
 * one sentence naming HOST:PORT: no connection (as `duet probe` words it),
 * no TLS answer, an alert before the server's certificate.
 */
int cli_fetch_chain(const char *target, int64_t timeout_ms, STACK_OF(X509) **chain, char **host,
                    struct duet_err *err);

/* Print one inspected file (the model of inspect_bundle()) for a human. */
void render_inspect_text(FILE *out, const json_t *file);

/* --- every command's flags (cli_flags.c) --- */

/*
 * One flag of a command: its getopt_long entry, the placeholder of its value
 * (NULL for a switch) and its one-line description.  A command's table is
 * the single source of what it parses and of what its --help lists.
 */
struct cli_flag {
    struct option o;
    const char *arg;
    const char *help;
};
#define CLI_NFLAGS(t) (sizeof(t) / sizeof((t)[0]))
/* Fill lo (room for n + 1 entries) with the table's options and the terminating zero entry. */
void cli_flags_longopts(const struct cli_flag *f, size_t n, struct option *lo);
/* Print the synopsis, then "options:" and one line per flag ("  --name ARG   help"). */
void cli_flags_help(FILE *out, const char *synopsis, const struct cli_flag *f, size_t n);
/* One such flag line. */
void cli_flag_line(FILE *out, const char *name, const char *arg, const char *help);
/*
 * Report the error getopt_long returned (`c`: ':' or '?', parsed with
 * optstring ":" and opterr 0 from the table `f`, whose values are 256 and
 * up) for command `cmd`: "CMD: --flag needs a value", "CMD: --flag takes no
 * value" or "CMD: --flag is not an option of this command" (cli_bad_option's
 * words) on stderr, then usage(stderr).  Returns EXIT_USAGE.
 */
int cli_flags_error(const char *cmd, int c, char *const *argv, const struct cli_flag *f, size_t n,
                    void (*usage)(FILE *out));

/* --- the certificate commands' shared options (cli_opts.c) --- */

/* The options of the cert commands, as bits: each command names those it accepts. */
enum cli_opt_bit {
    OB_CA_DIR = 1u << 0, OB_OUT = 1u << 1, OB_PROFILE = 1u << 2, OB_SAN = 1u << 3,
    OB_TTL = 1u << 4, OB_OWNER = 1u << 5, OB_LOCATION = 1u << 6, OB_KEY_TYPE = 1u << 7,
    OB_PASS = 1u << 8, OB_FORMAT = 1u << 9, OB_EXPIRING = 1u << 10, OB_STATUS = 1u << 11,
    OB_REASON = 1u << 12, OB_REUSE_KEY = 1u << 13, OB_CERT = 1u << 14, OB_KEY = 1u << 15,
    OB_LEGACY = 1u << 16, OB_PASSWORD_FILE = 1u << 17, OB_WITHIN = 1u << 18, OB_NAME = 1u << 19,
    OB_FORCE = 1u << 20, OB_TOKEN = 1u << 21, OB_LIST = 1u << 22, OB_FROM_P12 = 1u << 23,
};

/* cli_parse_opts() result for --help: the usage was printed, exit 0. */
#define CLI_PARSE_HELP 1

/* What cli_parse_opts() read; strings point into argv. */
struct cli_opts {
    /* set by the caller: the command, for messages ("duet cert issue") */
    const char *cmd;
    const char *ca_dir, *out, *profile, *owner, *location, *key_type, *pass_file, *format;
    const char *status, *reason, *cert, *key, *password_file, *name, *token, *from_p12;
    const char **sans;
    size_t nsans;
    int64_t ttl, expiring, within;
    const char *within_text;
    bool has_expiring, has_within, reuse_key, legacy, force, list;
    char **args;
    int nargs;
};

/*
 * Parse argv with the one option table, accepting only the options whose bits
 * are in `allowed`; positional arguments go to o->args.  --help prints usage
 * on stdout and returns CLI_PARSE_HELP; an unknown, misplaced or valueless
 * option, or a bad duration, is reported on stderr (naming o->cmd and the
 * option) and returns -1.  Free with cli_opts_free() in every case.
 */
int cli_parse_opts(int argc, char **argv, unsigned allowed, const char *usage,
                   struct cli_opts *o);
void cli_opts_free(struct cli_opts *o);
/* What --help prints: the usage, then one line per option in `allowed`. */
void cli_opts_help(FILE *out, const char *usage, unsigned allowed);
/* Whether NAME can name files: 1-64 letters, digits, '.', '-', '_', '@', no leading '.'. */
bool cli_safe_name(const char *name);
/* A new string "DIR/NAME.EXT" (ext with its dot); NULL when out of memory. */
char *cli_path_in(const char *dir, const char *name, const char *ext);
/*
 * The --out DIR of a command that writes keys: created (with its missing
 * parents, 0755; DIR itself 0700, as keys go there) when it does not exist;
 * refused when it is not a directory or not writable.
 */
int cli_check_out_dir(const char *dir, struct duet_err *err);
/*
 * Refuse a password or passphrase file that group or others can read, naming
 * it (`what`: "the password file") with the chmod that fixes it, as key files are.
 */
int cli_check_secret_mode(const char *file, const char *what, struct duet_err *err);
/*
 * Refuse (as --out FILE) a file whose directory is missing or not writable,
 * or that exists already unless `force`: checked before anything is issued.
 */
int cli_check_out_file(const char *path, bool force, struct duet_err *err);

/* --- the inventory and what is issued, for the certificate commands (cli_inventory.c) --- */

/*
 * Find the inventory row of ARG: a certificate file (its first certificate's
 * serial) or a serial number in any form openssl prints.  *row is owned by
 * the caller; refused: an unreadable file, a text that is no serial, a serial
 * the inventory does not hold.
 */
int cli_find_row(struct ca *ca, const char *arg, struct store_cert **row, struct duet_err *err);
/*
 * An inventory row as a JSON object (serial, name, subject, SANs read from
 * the certificate, profile, owner, location, validity, days left, status,
 * and who revoked it when revoked); `full` adds issuer, key fingerprint,
 * issue and revocation data and the renewal links.  Text that is not UTF-8
 * is escaped, never dropped.
 */
json_t *cli_row_json(const struct store_cert *c, int64_t now, bool full);
/*
 * Print "WHAT SUBJECT (serial S), profile P, valid until T", the note when the
 * validity was cut to the issuing CA's, and the key and certificate paths
 * and the serial renewed when not NULL; with `json`, one JSON object of the
 * same facts ("action" is WHAT's first word; docs/cli/cert-issue.md).
 */
void cli_report_issued(const char *what, X509 *cert, const char *profile, bool clamped,
                       const char *key_path, const char *crt_path, const char *renews, bool json);
/*
 * What was issued as a new JSON object (NULL when out of memory): action
 * (WHAT's first word), serial, subject, profile, not_before, not_after
 * (RFC 3339), clamped, key, certificate, renews (paths and serial, or null).
 */
json_t *cli_issued_json(const char *what, X509 *cert, const char *profile, bool clamped,
                        const char *key_path, const char *crt_path, const char *renews);
/*
 * Whether a row expires within `within` seconds of now (or has expired) and
 * still matters: not revoked, not renewed, not an OCSP signer the CA server
 * renews itself (until it has expired).  The one meaning of "expiring" for
 * `cert expiring --within D` and `cert list --expiring D`.
 */
bool cli_row_expiring(const struct store_cert *c, int64_t now, int64_t within);
/* Write leaf then issuing CA as PEM to path (0644, atomically). */
int cli_write_chain(const char *path, X509 *leaf, X509 *issuing, struct duet_err *err);

#endif
