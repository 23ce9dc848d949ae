/* octo_webhooks.c — `octo-webhooks`, the operator's command line: tokens,
 * migrations, the queue's state, one object's deliveries, replay, prune.
 *
 * C over the module's own store (src/owh_store*.c), not a script over psql:
 * `migrate` must run exactly the migrations compiled into the module, and
 * every statement goes through the same parametrized owh_store_query(). The
 * SQL lives in owh_store_admin.c (prune: owh_store_ops.c, the dispatchers'
 * own prune()); this file parses arguments and prints. A little over 500
 * lines: one command table with each command's parsing and printing beside
 * it, which reads best whole (split by command, the option specs and the
 * help text would sit away from the code they describe).
 *
 * Nothing secret on the command line (argv is visible in ps): the conninfo
 * comes from OCTO_WEBHOOKS_DB or libpq's environment (PGHOST, PGPASSFILE,
 * ...), a token to revoke from stdin, and a new token is printed once. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_strings.h>
#include <apr_tables.h>
#include <apr_lib.h>

#include "owh_store.h"
#include "owh_store_ops.h"

#ifndef OWH_VERSION
#define OWH_VERSION "unknown"
#endif

#define EX_OK    0
#define EX_FAIL  1
#define EX_USAGE 2

/* ---- options ------------------------------------------------------------- */
typedef struct {
    const char *name;           /* without the leading "--" */
    int has_arg;
} opt_spec_t;

typedef struct {
    apr_table_t *opts;          /* name -> value ("" for flags) */
    apr_pool_t *pool;
    owh_db_t *db;
} cli_t;

typedef int cmd_fn(cli_t *c);

typedef struct {
    const char *name;           /* "token create", "status", ... */
    cmd_fn *fn;
    const opt_spec_t *opts;     /* ends with a NULL name */
    const char *usage;          /* synopsis and help, shown by --help */
    int needs_schema;           /* refuse before `migrate` created the schema */
} cmd_t;

static const char *prog = "octo-webhooks";

static void err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *opt(cli_t *c, const char *name) { return apr_table_get(c->opts, name); }

/* Parses argv against the command's options: "--name value", "--name=value"
 * or a flag. Returns 0, or EX_USAGE after saying why. */
static int parse_opts(cli_t *c, const cmd_t *cmd, int argc, const char *const *argv)
{
    int i;
    for (i = 0; i < argc; ++i) {
        const char *a = argv[i], *eq, *val = NULL;
        const opt_spec_t *o;
        char *name;
        if (strncmp(a, "--", 2) || !a[2]) {
            err("%s: unexpected argument \"%s\" (see %s %s --help)", cmd->name, a, prog, cmd->name);
            return EX_USAGE;
        }
        a += 2;
        eq = strchr(a, '=');
        name = eq ? apr_pstrndup(c->pool, a, eq - a) : apr_pstrdup(c->pool, a);
        for (o = cmd->opts; o && o->name; ++o) if (!strcmp(o->name, name)) break;
        if (!o || !o->name) {
            err("%s: unknown option --%s (see %s %s --help)", cmd->name, name, prog, cmd->name);
            return EX_USAGE;
        }
        if (o->has_arg) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else { err("%s: --%s needs a value", cmd->name, name); return EX_USAGE; }
        }
        else if (eq) { err("%s: --%s takes no value", cmd->name, name); return EX_USAGE; }
        apr_table_set(c->opts, name, val ? val : "");
    }
    return 0;
}

/* "30d", "12h", "90m", "45s" -> an interval; 0 if malformed. */
static int duration_parse(const char *s, apr_interval_time_t *pt)
{
    char *end;
    apr_int64_t n = apr_strtoi64(s, &end, 10), unit;
    if (end == s || n < 0 || n > 100000) return 0;
    if (!strcmp(end, "d")) unit = 86400;
    else if (!strcmp(end, "h")) unit = 3600;
    else if (!strcmp(end, "m")) unit = 60;
    else if (!strcmp(end, "s")) unit = 1;
    else return 0;
    *pt = apr_time_from_sec(n * unit);
    return 1;
}

/* "booking:<uuid>" -> event type and object key as emit() records them. */
static int parse_object(const char *spec, const char **ptype, const char **pkey, apr_pool_t *p)
{
    static const struct { const char *prefix, *type; } kinds[] = {
        { "booking:", "booking_update" }, { "order:", "order_update" },
        { "product:", "product_update" }, { "availability:", "availability_update" }, { NULL, NULL } };
    int i;
    for (i = 0; kinds[i].prefix; ++i) {
        apr_size_t n = strlen(kinds[i].prefix);
        if (!strncmp(spec, kinds[i].prefix, n) && spec[n]) {
            *ptype = kinds[i].type;
            *pkey = apr_pstrdup(p, spec + n);
            return 1;
        }
    }
    err("--object must be booking:<uuid>, order:<id>, product:<id> or"
        " availability:<productId>/<optionId>/<id>");
    return 0;
}

/* ---- output -------------------------------------------------------------- */
#define CELL(t, r, c) ((t)->cells[(r) * (t)->ncols + (c)])

/* A result as aligned columns under a header (the header alone when empty). */
static void print_table(const owh_admin_table_t *t, const char *indent)
{
    int nf = t->ncols, nt = t->nrows, i, j;
    int *w = calloc(nf ? nf : 1, sizeof(int));
    for (j = 0; j < nf; ++j) w[j] = (int)strlen(t->names[j]);
    for (i = 0; i < nt; ++i)
        for (j = 0; j < nf; ++j)
            if ((int)strlen(CELL(t, i, j)) > w[j]) w[j] = (int)strlen(CELL(t, i, j));
    for (i = -1; i < nt; ++i) {
        fputs(indent, stdout);
        for (j = 0; j < nf; ++j) {
            const char *v = i < 0 ? t->names[j] : CELL(t, i, j);
            if (j == nf - 1) fputs(v, stdout);
            else printf("%-*s  ", w[j], v);
        }
        fputc('\n', stdout);
    }
    free(w);
}

static int db_failed(cli_t *c, const char *what)
{
    err("%s failed: %s%s%s%s", what, c->db->errmsg ? c->db->errmsg : "unknown error",
        c->db->sqlstate ? " [" : "", c->db->sqlstate ? c->db->sqlstate : "", c->db->sqlstate ? "]" : "");
    return EX_FAIL;
}

static int run(cli_t *c, owh_admin_table_t **ptab, owh_admin_e which, const char *const *params,
               const char *what)
{
    if (owh_store_admin(ptab, c->db, which, params, c->pool) != APR_SUCCESS) return db_failed(c, what);
    return 0;
}

/* ---- the database -------------------------------------------------------- */
/* A standalone connection that leaves the schema alone: only `migrate`
 * changes it, and only when asked. */
static int connect_db(cli_t *c)
{
    const char *conninfo = getenv("OCTO_WEBHOOKS_DB");
    if (owh_store_connect_schema(&c->db, conninfo ? conninfo : "", 10, OWH_SCHEMA_LEAVE, c->pool)
        != APR_SUCCESS) {
        err("cannot connect to PostgreSQL: %s\n  (set OCTO_WEBHOOKS_DB to a libpq conninfo, or PGHOST,"
            " PGDATABASE, PGUSER and a ~/.pgpass; never a password on the command line)",
            c->db && c->db->errmsg ? c->db->errmsg : "unknown error");
        return EX_FAIL;
    }
    owh_store_set_application_name(c->db, "octo-webhooks cli", c->pool);
    return 0;
}

static int check_schema(cli_t *c)
{
    owh_admin_table_t *res;
    int have, rc;
    if ((rc = run(c, &res, OWH_ADMIN_SCHEMA_EXISTS, NULL, "reading the schema version"))) return rc;
    have = 0;
    if (!strcmp(owh_admin_cell(res, 0, "present"), "t")) {
        if ((rc = run(c, &res, OWH_ADMIN_SCHEMA_VERSION, NULL, "reading the schema version"))) return rc;
        have = atoi(owh_admin_cell(res, 0, "version"));
    }
    if (have == 0) {
        err("schema octo_webhooks does not exist in this database: run `%s migrate` as its owner role"
            " (or start httpd with the module)", prog);
        return EX_FAIL;
    }
    if (have > owh_store_schema_version())
        err("warning: schema version %d is newer than this build knows (%d): upgrade the package",
            have, owh_store_schema_version());
    else if (have < owh_store_schema_version())
        err("warning: schema version %d is older than this build's (%d): run `%s migrate`",
            have, owh_store_schema_version(), prog);
    return 0;
}

/* ---- token --------------------------------------------------------------- */
static int cmd_token_create(cli_t *c)
{
    const char *conn = opt(c, "connection"), *ab = opt(c, "abilities"), *label = opt(c, "label");
    const char *params[3];
    owh_admin_table_t *res;
    int rc;
    if (!conn || !*conn) { err("token create needs --connection ID"); return EX_USAGE; }
    if (!ab || !*ab) {
        err("token create needs --abilities (e.g. octo:read.webhooks,octo:write.webhooks)");
        return EX_USAGE;
    }
    if (strpbrk(ab, "{}\"\\ ")) { err("--abilities: a comma-separated list of ability names"); return EX_USAGE; }
    params[0] = conn;
    params[1] = apr_pstrcat(c->pool, "{", ab, "}", NULL);
    params[2] = label ? label : "";
    if ((rc = run(c, &res, OWH_ADMIN_TOKEN_CREATE, params, "token create"))) return rc;
    /* The plaintext exists only here: stdout, alone, once. */
    printf("%s\n", owh_admin_cell(res, 0, "token"));
    return EX_OK;
}

static int cmd_token_revoke(cli_t *c)
{
    const char *id = opt(c, "id"), *params[1];
    owh_admin_table_t *res;
    int rc;
    if (id) {
        char *end;
        if (!*id || (apr_strtoi64(id, &end, 10), *end)) { err("--id takes a token's id (see token list)"); return EX_USAGE; }
        params[0] = id;
        if ((rc = run(c, &res, OWH_ADMIN_TOKEN_REVOKE_ID, params, "token revoke"))) return rc;
    }
    else {
        /* The token itself only from stdin: argv shows in ps. */
        char buf[512];
        apr_size_t n;
        if (isatty(STDIN_FILENO)) fprintf(stderr, "token to revoke: ");
        if (!fgets(buf, sizeof(buf), stdin)) { err("token revoke: no token on stdin (or use --id N)"); return EX_USAGE; }
        n = strlen(buf);
        while (n && apr_isspace(buf[n - 1])) buf[--n] = '\0';
        params[0] = buf;
        rc = run(c, &res, OWH_ADMIN_TOKEN_REVOKE, params, "token revoke");
        memset(buf, 0, sizeof(buf));
        if (rc) return rc;
    }
    if (res->nrows != 1) { err("no such active token"); return EX_FAIL; }
    printf("revoked token %s\n", owh_admin_cell(res, 0, "id"));
    return EX_OK;
}

static int cmd_token_list(cli_t *c)
{
    const char *params[] = { opt(c, "connection") };
    owh_admin_table_t *res;
    int rc;
    if ((rc = run(c, &res, OWH_ADMIN_TOKEN_LIST, params, "token list"))) return rc;
    print_table(res, "");
    return EX_OK;
}

/* ---- migrate ------------------------------------------------------------- */
static int cmd_migrate(cli_t *c)
{
    int status = opt(c, "status") != NULL, dry = opt(c, "dry-run") != NULL;
    const char *report = NULL;
    apr_status_t rv;
    if (status && dry) { err("migrate: --status or --dry-run, not both"); return EX_USAGE; }
    rv = owh_store_migrate_status(c->db, !status, dry, &report, c->pool);
    if (report) fputs(report, stdout);
    if (rv != APR_SUCCESS) {
        if (!report || !*report) return db_failed(c, "migrate");
        return EX_FAIL;
    }
    return EX_OK;
}

/* ---- status -------------------------------------------------------------- */
static int cmd_status(cli_t *c)
{
    owh_admin_table_t *q, *d, *x;
    int rc, j;
    if ((rc = run(c, &q, OWH_ADMIN_STATUS_QUEUE, NULL, "status"))
        || (rc = run(c, &d, OWH_ADMIN_STATUS_DISPATCHERS, NULL, "status"))
        || (rc = run(c, &x, OWH_ADMIN_STATUS_DISABLED, NULL, "status")))
        return rc;
    printf("queue\n");
    for (j = 0; j < q->ncols; ++j)
        printf("  %-16s %s\n", q->names[j], CELL(q, 0, j));
    printf("  %-16s %d\n", "module_schema", owh_store_schema_version());
    printf("dispatchers: %d\n", d->nrows);
    if (d->nrows) print_table(d, "  ");
    printf("disabled webhooks: %d\n", x->nrows);
    if (x->nrows) print_table(x, "  ");
    return EX_OK;
}

/* ---- deliveries ---------------------------------------------------------- */
static int cmd_deliveries(cli_t *c)
{
    const char *type, *key, *limit = opt(c, "limit"), *params[4], *ids;
    owh_admin_table_t *res, *att;
    int rc, i, k = 0;
    if (!opt(c, "object")) { err("deliveries needs --object booking:<uuid> (or order:, product:, availability:)"); return EX_USAGE; }
    if (!parse_object(opt(c, "object"), &type, &key, c->pool)) return EX_USAGE;
    if (limit) {
        char *end;
        apr_int64_t n = apr_strtoi64(limit, &end, 10);
        if (!*limit || *end || n < 1 || n > 100000) { err("--limit: a number from 1 to 100000"); return EX_USAGE; }
    }
    params[0] = type; params[1] = key; params[2] = opt(c, "connection"); params[3] = limit ? limit : "100";
    if ((rc = run(c, &res, OWH_ADMIN_OBJECT_DELIVERIES, params, "deliveries"))) return rc;
    if (res->nrows == 0) {
        printf("no deliveries of %s\n", opt(c, "object"));
        return EX_OK;
    }
    ids = "{";
    for (i = 0; i < res->nrows; ++i)
        ids = apr_pstrcat(c->pool, ids, i ? "," : "", owh_admin_cell(res, i, "id"), NULL);
    params[0] = apr_pstrcat(c->pool, ids, "}", NULL);
    if ((rc = run(c, &att, OWH_ADMIN_ATTEMPTS, params, "deliveries"))) return rc;
    /* Newest event first; each delivery with its attempts under it. */
    for (i = 0; i < res->nrows; ++i) {
        const char *id = owh_admin_cell(res, i, "id");
        int j;
        printf("%sdelivery %s\n", i ? "\n" : "", id);
        for (j = 0; j < res->ncols; ++j)
            if (strcmp(res->names[j], "id") && *CELL(res, i, j))
                printf("  %-12s %s\n", res->names[j], CELL(res, i, j));
        for (k = 0; k < att->nrows; ++k) {
            const char *e = owh_admin_cell(att, k, "error"), *by = owh_admin_cell(att, k, "dispatcher");
            if (strcmp(owh_admin_cell(att, k, "delivery_id"), id)) continue;
            printf("  attempt %s  %s  status %s  %s ms%s%s%s%s\n", owh_admin_cell(att, k, "attempt"),
                   owh_admin_cell(att, k, "started"), owh_admin_cell(att, k, "status"),
                   owh_admin_cell(att, k, "ms"), *e ? "  error: " : "", e, *by ? "  by " : "", by);
        }
    }
    return EX_OK;
}

/* ---- replay -------------------------------------------------------------- */
static int cmd_replay(cli_t *c)
{
    const char *type = NULL, *key = NULL, *wh = opt(c, "webhook"), *params[6];
    owh_admin_table_t *res;
    int rc, dry = opt(c, "dry-run") != NULL;
    if (!opt(c, "object") && !wh) { err("replay needs --object TYPE:ID, or --webhook ID --since TIME"); return EX_USAGE; }
    if (opt(c, "object") && !parse_object(opt(c, "object"), &type, &key, c->pool)) return EX_USAGE;
    if (!opt(c, "object") && !opt(c, "since")) { err("replay --webhook needs --since TIME (and optionally --until)"); return EX_USAGE; }
    if (wh && !owh_uuid_valid(wh)) { err("--webhook takes a webhook's id (a UUID)"); return EX_USAGE; }
    params[0] = type; params[1] = key; params[2] = wh;
    params[3] = opt(c, "since"); params[4] = opt(c, "until"); params[5] = dry ? "true" : "false";
    if ((rc = run(c, &res, OWH_ADMIN_REPLAY, params, "replay"))) return rc;
    printf("%s ended deliveries matched, %s to active webhooks, %s requeued%s\n",
           owh_admin_cell(res, 0, "matched"), owh_admin_cell(res, 0, "replayable"),
           owh_admin_cell(res, 0, "requeued"), dry ? " (dry run: nothing changed)" : "");
    return EX_OK;
}

/* ---- prune --------------------------------------------------------------- */
/* The dispatchers' own batch, octo_webhooks.prune() (the one copy of the
 * logic), called until it has nothing more to do: each call is its own short
 * transaction, under the lock the dispatchers take (a dispatcher's batch in
 * progress is waited for, not raced). */
static int cmd_prune(cli_t *c)
{
    const char *older = opt(c, "older-than");
    apr_interval_time_t retention;
    owh_prune_result_t r;
    apr_int64_t events = 0, deliveries = 0, attempts = 0;
    int busy = 0;
    if (!older) older = "30d";
    if (!duration_parse(older, &retention)) {
        err("--older-than: a duration such as 30d, 12h, 90m or 3600s");
        return EX_USAGE;
    }
    if (opt(c, "dry-run")) {
        if (owh_store_prune_preview(c->db, retention, &r, c->pool) != APR_SUCCESS) return db_failed(c, "prune");
        printf("would delete %" APR_INT64_T_FMT " events, %" APR_INT64_T_FMT " deliveries, %" APR_INT64_T_FMT
               " attempts ended more than %s ago (dry run)\n", r.events, r.deliveries, r.attempts, older);
        return EX_OK;
    }
    for (;;) {
        if (owh_store_prune(c->db, retention, 0, 2000, "octo-webhooks cli", &r, c->pool) != APR_SUCCESS)
            return db_failed(c, "prune");
        if (!r.ran) {                   /* a dispatcher's batch holds the lock */
            if (++busy > 600) { err("prune: another session kept the pruning lock for a minute"); return EX_FAIL; }
            apr_sleep(apr_time_from_msec(100));
            continue;
        }
        events += r.events;
        deliveries += r.deliveries;
        attempts += r.attempts;
        if (!r.more) break;
    }
    printf("deleted %" APR_INT64_T_FMT " events, %" APR_INT64_T_FMT " deliveries, %" APR_INT64_T_FMT
           " attempts ended more than %s ago\n", events, deliveries, attempts, older);
    return EX_OK;
}

/* ---- the command table --------------------------------------------------- */
static const opt_spec_t o_help[] = { { "help", 0 }, { NULL, 0 } };
static const opt_spec_t o_token_create[] = { { "help", 0 }, { "connection", 1 }, { "abilities", 1 },
                                             { "label", 1 }, { NULL, 0 } };
static const opt_spec_t o_token_revoke[] = { { "help", 0 }, { "id", 1 }, { NULL, 0 } };
static const opt_spec_t o_token_list[] = { { "help", 0 }, { "connection", 1 }, { NULL, 0 } };
static const opt_spec_t o_migrate[] = { { "help", 0 }, { "status", 0 }, { "dry-run", 0 }, { NULL, 0 } };
static const opt_spec_t o_deliveries[] = { { "help", 0 }, { "object", 1 }, { "connection", 1 },
                                           { "limit", 1 }, { NULL, 0 } };
static const opt_spec_t o_replay[] = { { "help", 0 }, { "object", 1 }, { "webhook", 1 }, { "since", 1 },
                                       { "until", 1 }, { "dry-run", 0 }, { NULL, 0 } };
static const opt_spec_t o_prune[] = { { "help", 0 }, { "older-than", 1 }, { "dry-run", 0 }, { NULL, 0 } };

static const cmd_t commands[] = {
    { "token create", cmd_token_create, o_token_create,
      "token create --connection ID --abilities A[,A...] [--label TEXT]\n"
      "  Creates an API token for the connection (reseller) ID and prints it once, alone on\n"
      "  stdout; only its SHA-256 is stored. Abilities: octo:read.webhooks, octo:write.webhooks,\n"
      "  octo:read.notifications, octo:write.notifications.\n", 1 },
    { "token revoke", cmd_token_revoke, o_token_revoke,
      "token revoke [--id N]\n"
      "  Revokes a token: the one read from stdin (never from the command line), or the token\n"
      "  with id N as `token list` shows it.\n", 1 },
    { "token list", cmd_token_list, o_token_list,
      "token list [--connection ID]\n"
      "  Lists tokens (id, connection, label, abilities, created, state); never the token itself.\n", 1 },
    { "migrate", cmd_migrate, o_migrate,
      "migrate [--status | --dry-run]\n"
      "  Applies the schema migrations compiled into this build (the module's own), under the\n"
      "  same advisory lock the module takes. Run it as the schema's owner role. --status only\n"
      "  reports applied and pending migrations; --dry-run reports what would be applied.\n", 0 },
    { "status", cmd_status, o_help,
      "status\n"
      "  The queue (pending, due, in flight, waiting to retry, parked behind an earlier delivery\n"
      "  of the same object, the oldest due and how long it has waited, events not yet routed to\n"
      "  their webhooks and the oldest one's age), the dispatchers\n"
      "  connected and the claims they hold, and the webhooks the module disabled (410 Gone,\n"
      "  auto-disable) with the reason.\n", 1 },
    { "deliveries", cmd_deliveries, o_deliveries,
      "deliveries --object TYPE:ID [--connection ID] [--limit N]\n"
      "  Every delivery of one object across connections, newest event first: which webhook\n"
      "  and URL, its status, and each attempt (time, HTTP status, latency, error). TYPE is\n"
      "  booking, order, product or availability (availability:PRODUCT/OPTION/ID).\n"
      "  --limit: deliveries shown (default 100).\n", 1 },
    { "replay", cmd_replay, o_replay,
      "replay --object TYPE:ID [--webhook ID] [--since TIME] [--until TIME] [--dry-run]\n"
      "replay --webhook ID --since TIME [--until TIME] [--dry-run]\n"
      "  Queues ended (succeeded or failed) deliveries again, with the same webhook-id, in event\n"
      "  order per object and webhook: the first of each goes now (unless one is pending), the\n"
      "  rest wait behind it. Only deliveries to webhooks that still exist and are active.\n"
      "  TIME is a PostgreSQL timestamp (2026-11-20T08:00:00Z); --until is exclusive.\n", 1 },
    { "prune", cmd_prune, o_prune,
      "prune [--older-than DURATION] [--dry-run]\n"
      "  Deletes events whose deliveries all ended more than DURATION ago (default 30d; units\n"
      "  d, h, m, s), with their deliveries and attempts, in batches. Pending deliveries and\n"
      "  their events are never deleted. --dry-run counts instead.\n", 1 },
    { NULL, NULL, NULL, NULL, 0 }
};

static void usage(FILE *f)
{
    const cmd_t *cmd;
    fprintf(f, "usage: %s COMMAND [OPTIONS]   (%s COMMAND --help for one command)\n\n", prog, prog);
    for (cmd = commands; cmd->name; ++cmd) {
        const char *nl = strchr(cmd->usage, '\n');
        fprintf(f, "  %s %.*s\n", prog, (int)(nl - cmd->usage), cmd->usage);
    }
    fprintf(f, "\nThe database: OCTO_WEBHOOKS_DB (a libpq conninfo), else libpq's environment\n"
               "(PGHOST, PGDATABASE, PGUSER, PGPASSFILE, ...). Version %s, schema %d.\n",
            OWH_VERSION, owh_store_schema_version());
}

int main(int argc, const char *const *argv)
{
    apr_pool_t *pool;
    const cmd_t *cmd = NULL;
    cli_t c;
    int rc, used = 1;

    if (apr_app_initialize(&argc, &argv, NULL) != APR_SUCCESS) return EX_FAIL;
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    if (getenv("OCTO_WEBHOOKS_PROG")) prog = getenv("OCTO_WEBHOOKS_PROG");     /* the old name's wrapper */

    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? EX_USAGE : EX_OK;
    }
    if (!strcmp(argv[1], "--version")) { printf("octo-webhooks %s (schema %d)\n", OWH_VERSION, owh_store_schema_version()); return EX_OK; }
    /* one word ("status") or two ("token create") */
    for (cmd = commands; cmd->name; ++cmd) {
        if (!strcmp(cmd->name, argv[1])) { used = 2; break; }
        if (argc > 2 && !strcmp(cmd->name, apr_pstrcat(pool, argv[1], " ", argv[2], NULL))) { used = 3; break; }
    }
    if (!cmd->name) {
        if (!strcmp(argv[1], "token"))
            err("token: create, revoke or list (see %s token create --help)", prog);
        else
            err("unknown command \"%s\" (see %s --help)", argv[1], prog);
        return EX_USAGE;
    }
    memset(&c, 0, sizeof(c));
    c.pool = pool;
    c.opts = apr_table_make(pool, 8);
    if ((rc = parse_opts(&c, cmd, argc - used, argv + used))) return rc;
    if (opt(&c, "help")) { printf("usage: %s %s", prog, cmd->usage); return EX_OK; }
    if ((rc = connect_db(&c))) return rc;
    if (cmd->needs_schema && (rc = check_schema(&c))) return rc;
    rc = cmd->fn(&c);
    fflush(stdout);
    apr_pool_destroy(pool);
    return rc;
}
