/* snpctl end to end: the real binary ($SNPCTL_BINARY), run with fork/exec
 * against the real snpd on a throwaway database (tests/support/fixture.h),
 * as each role would use it.  Scripted output (--json) is parsed with
 * jansson and checked against the database; human output is checked for
 * its French headings; exit codes are checked everywhere.
 *
 * Every run gets an empty HOME, so that no configuration file of the
 * machine leaks in, and only the environment the test gives it.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "base/timeutil.h"
#include "base/validate.h"
#include "clients/cli/labels.h"
#include "clients/cli/table.h"
#include "protocol/codec.h"
#include "protocol/snp_decl.h"
#include "tests/support/fixture.h"
#include "tests/support/wait.h"

/* ---- running snpctl ------------------------------------------------------ */

struct run {
    int status; /* exit code, 128 + signal when killed, -1 on a time-out */
    char *out;
    char *err;
};

static char server[64];
static char home[128];

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

/* A child being run: its pid and the read ends of its output pipes. */
struct child {
    pid_t pid;
    int out, err;
};

/* Starts snpctl with `args` (NULL-terminated, without the program name),
 * the token `token` (NULL: none) and the extra environment `env`
 * (NULL-terminated "NAME=value" strings, may be NULL); standard input reads
 * `input` (NULL: nothing). */
static struct child spawn(const char *token, const char *const *env, const char *input,
                          const char *const *args)
{
    int po[2], pe[2], pi[2];
    cr_assert(pipe(po) == 0 && pipe(pe) == 0 && pipe(pi) == 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        dup2(pi[0], 0);
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(pi[0]), close(pi[1]), close(po[0]), close(po[1]), close(pe[0]), close(pe[1]);
        char *envp[32];
        int n = 0;
        static char e_server[128], e_token[128], e_home[160], e_path[1024];
        snprintf(e_server, sizeof(e_server), "SNPCTL_SERVER=%s", server);
        envp[n++] = e_server;
        if (token) {
            snprintf(e_token, sizeof(e_token), "SNPCTL_TOKEN=%s", token);
            envp[n++] = e_token;
        }
        snprintf(e_home, sizeof(e_home), "HOME=%s", home);
        envp[n++] = e_home;
        snprintf(e_path, sizeof(e_path), "PATH=%s", getenv("PATH") ? getenv("PATH") : "/usr/bin");
        envp[n++] = e_path;
        for (int i = 0; env && env[i] && n < 30; i++) {
            /* An entry replaces the default of the same name. */
            size_t len = strcspn(env[i], "=");
            int k;
            for (k = 0; k < n; k++)
                if (strncmp(envp[k], env[i], len + 1) == 0)
                    break;
            envp[k == n ? n++ : k] = (char *)env[i];
        }
        envp[n] = NULL;
        char *argv[64];
        int a = 0;
        argv[a++] = (char *)"snpctl";
        for (int i = 0; args[i] && a < 63; i++)
            argv[a++] = (char *)args[i];
        argv[a] = NULL;
        execve(getenv("SNPCTL_BINARY"), argv, envp);
        _exit(127);
    }
    close(pi[0]);
    close(po[1]);
    close(pe[1]);
    if (input) {
        ssize_t w = write(pi[1], input, strlen(input));
        (void)w;
    }
    close(pi[1]);
    return (struct child){pid, po[0], pe[0]};
}

/* Appends what is readable on `fd` to `*buf`; returns false at its end. */
static bool drain(int fd, char **buf, size_t *len)
{
    char chunk[4096];
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n <= 0)
        return false;
    *buf = realloc(*buf, *len + (size_t)n + 1);
    memcpy(*buf + *len, chunk, (size_t)n);
    *len += (size_t)n;
    (*buf)[*len] = '\0';
    return true;
}

/* Waits for the child to end (killing it after `timeout_ms`) and collects
 * its output. */
static struct run finish(struct child c, int timeout_ms)
{
    struct run r = {0};
    size_t olen = 0, elen = 0;
    r.out = calloc(1, 1);
    r.err = calloc(1, 1);
    bool oo = true, eo = true;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    bool timed_out = false;
    while (oo || eo) {
        struct pollfd p[2] = {{.fd = oo ? c.out : -1, .events = POLLIN},
                              {.fd = eo ? c.err : -1, .events = POLLIN}};
        int n = poll(p, 2, 200);
        if (n > 0) {
            if (p[0].revents && !drain(c.out, &r.out, &olen))
                oo = false;
            if (p[1].revents && !drain(c.err, &r.err, &elen))
                eo = false;
        }
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        if ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000 > timeout_ms) {
            kill(c.pid, SIGKILL);
            timed_out = true;
            break;
        }
    }
    close(c.out);
    close(c.err);
    int st;
    waitpid(c.pid, &st, 0);
    r.status = timed_out ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    return r;
}

static struct run run_env(const char *token, const char *const *env, const char *input,
                          const char *const *args)
{
    return finish(spawn(token, env, input, args), 60000);
}

/* snpctl with a token (or NULL) and arguments. */
#define CTL(token, ...) run_env(token, NULL, NULL, (const char *const[]){__VA_ARGS__, NULL})

/* Parses line `n` (from 0) of `text` as JSON; fails the test if it is not. */
static json_t *json_line(const char *text, int n)
{
    const char *p = text;
    for (int i = 0; i < n && p; i++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    cr_assert(p && *p, "no line %d in: %s", n, text);
    size_t len = strcspn(p, "\n");
    json_error_t e;
    json_t *j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &e);
    cr_assert(j, "line %d is not JSON (%s): %.*s", n, e.text, (int)len, p);
    return j;
}

/* The answer did not break the protocol: snpctl checks every answer with the
 * codec and warns when it does not conform. */
static void assert_conforming(const struct run *r)
{
    cr_expect_null(strstr(r->err, "non conforme"), "a server answer broke snp.v1: %s", r->err);
}

static const char *tok(enum fix_role role);

/* ---- the local day after tomorrow, for publications ---------------------- */

/* Writes the local date `days` from today in Europe/Paris, "YYYY-MM-DD". */
static void local_day(int days, char *buf, size_t n)
{
    const struct timeutil_zone *z = timeutil_zone_find("Europe/Paris");
    struct tm tm;
    cr_assert(timeutil_to_local(z, timeutil_now() + 86400 * (int64_t)days, &tm));
    snprintf(buf, n, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

/* ---- offline: usage, errors that need no server, import ------------------ */

static void offline_setup(void)
{
    snprintf(home, sizeof(home), "%s/snpctl-test-home-%ld", proc_scratch_dir(), (long)getpid());
    mkdir(home, 0700);
    /* Nothing listens there: a port that was free a moment ago. */
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", proc_free_port());
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the test's HOME and what the test wrote there. */
static void offline_teardown(void)
{
    nftw(home, remove_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(offline, .init = offline_setup, .fini = offline_teardown, .timeout = 60);

Test(offline, help_on_every_command)
{
    static const char *const commands[][3] = {
        {"slots", "publish", "usage : snpctl slots"},
        {"slots", "shift", "usage : snpctl slots"},
        {"slots", "list", "usage : snpctl slots"},
        {"slots", "withdraw", "usage : snpctl slots"},
        {"bookings", "list", "usage : snpctl bookings"},
        {"bookings", "cancel", "usage : snpctl bookings"},
        {"request", "create", "usage : snpctl request"},
        {"request", "show", "usage : snpctl request"},
        {"request", "list", "usage : snpctl request"},
        {"request", "accept", "usage : snpctl request"},
        {"request", "decline", "usage : snpctl request"},
        {"request", "cancel", "usage : snpctl request"},
        {"request", "confirmation", "usage : snpctl request"},
        {"territory", "show", "usage : snpctl territory"},
        {"territory", "set", "usage : snpctl territory"},
        {"token", "create", "usage : snpctl token"},
        {"token", "list", "usage : snpctl token"},
        {"token", "revoke", "usage : snpctl token"},
        {"call", "record", "usage : snpctl call"},
        {"call", "list", "usage : snpctl call"},
        {"push", "list", "usage : snpctl push"},
        {"push", "resend", "usage : snpctl push"},
        {"shift", "list", "usage : snpctl shift"},
        {"shift", "assign", "usage : snpctl shift"},
        {"request", "send-confirmation", "usage : snpctl request"},
        {"bookings", "mt-handover", "usage : snpctl bookings"},
        {"message", "list", "usage : snpctl message"},
    };
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        struct run r = CTL(NULL, commands[i][0], commands[i][1], "--help");
        cr_expect_eq(r.status, 0, "%s %s --help: %d", commands[i][0], commands[i][1], r.status);
        cr_expect(strstr(r.out, commands[i][2]), "%s %s --help: %s", commands[i][0], commands[i][1],
                  r.out);
        run_free(&r);
    }
    static const char *const single[] = {"outcome",    "slip",   "capacity", "watch",
                                         "indicators", "import", "whoami"};
    for (size_t i = 0; i < sizeof(single) / sizeof(single[0]); i++) {
        struct run r = CTL(NULL, single[i], "--help");
        char want[64];
        snprintf(want, sizeof(want), "usage : snpctl %s", single[i]);
        cr_expect_eq(r.status, 0, "%s --help: %d", single[i], r.status);
        cr_expect(strstr(r.out, want), "%s --help: %s", single[i], r.out);
        run_free(&r);
    }
    struct run r = CTL(NULL, "--help");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Codes de sortie"));
    run_free(&r);
    r = CTL(NULL, "help", "capacity");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "usage : snpctl capacity"));
    run_free(&r);
}

Test(offline, bad_command_lines_exit_2_with_usage)
{
    struct run r = CTL("snp_x", "slots", "publish", "--bogus");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "option inconnue"), "%s", r.err);
    cr_expect(strstr(r.err, "usage : snpctl slots"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "frobnicate");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "commande inconnue"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "slots", "publish", "--site", "1", "--from", "2026-12-01T14:00", "--to",
            "18:00", "--every", "20m");
    cr_expect_eq(r.status, 2, "no --audience: %d", r.status);
    cr_expect(strstr(r.err, "--audience"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "slots", "publish", "--site", "1", "--from", "demain", "--to", "18:00",
            "--every", "20m", "--audience", "sas");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "--from"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "slots", "publish", "--site", "1", "--from", "2026-12-01T14:00", "--to",
            "18:00", "--every", "20m", "--audience", "sas,martians");
    cr_expect_eq(r.status, 2);
    cr_expect(strstr(r.err, "martians"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "outcome", "12", "maybe");
    cr_expect_eq(r.status, 2);
    run_free(&r);

    /* Checked by the codec before anything is sent: the bad INSEE code is
     * named by its option. */
    r = CTL("snp_x", "request", "create", "--ref", "x", "--initials", "J. D.", "--birth-year",
            "1950", "--sex", "F", "--commune", "123", "--no-mt", "--motif", "ent", "--urgency",
            "24h", "--no-wait");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--commune"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "request", "create", "--initials", "J. D.");
    cr_expect_eq(r.status, 2, "missing options without a terminal: %d", r.status);
    cr_expect(strstr(r.err, "--sex"), "%s", r.err);
    run_free(&r);

    r = CTL("snp_x", "territory", "set", "hold_seconds=5");
    cr_expect_eq(r.status, 2, "below the declared minimum: %d", r.status);
    const struct snp_setting_decl *hold = snp_setting_bounds(SNP_SETTING_HOLD_SECONDS);
    char bounds[64];
    snprintf(bounds, sizeof(bounds), "hold_seconds : de %g à %g", hold->min, hold->max);
    cr_expect(strstr(r.err, bounds), "\"%s\" not in %s", bounds, r.err);
    run_free(&r);
    r = CTL("snp_x", "territory", "--help");
    const struct snp_setting_decl *scarcity = snp_setting_bounds(SNP_SETTING_WEIGHTS_SCARCITY);
    snprintf(bounds, sizeof(bounds), "weights.scarcity (%g-%g)", scarcity->min, scarcity->max);
    cr_expect(strstr(r.out, bounds), "\"%s\" not in the help: %s", bounds, r.out);
    run_free(&r);

    /* Protocol 1.6.0: refused before anything is sent (nothing listens at
     * the server's address: exit 3 would mean it was tried), saying what to
     * fix. */
    static const struct {
        const char *args[8];
        const char *says;
    } refused[] = {
        {{"request", "send-confirmation", "12"}, "--sms NUMÉRO ou --email ADRESSE"},
        {{"request", "send-confirmation", "12", "--sms", "0612345678", "--email", "a@example.fr"},
         "l'un des deux"},
        {{"request", "send-confirmation", "12", "--sms", "06"}, "--sms"},
        {{"request", "send-confirmation", "--sms", "0612345678"}, "numéro de demande"},
        {{"bookings", "mt-handover"}, "numéro de la réservation"},
        {{"bookings", "mt-handover", "12", "13"}, "numéro de la réservation"},
        {{"message", "list", "--state", "lost"}, "pending, sent, dead"},
        {{"message", "list", "--limit", "0"}, "--limit"},
        {{"territory", "set", "mt_summary=maybe"}, "on ou off"},
        {{"territory", "set", "new_patient_gps=10999900011,12345678901"}, "new_patient_gps"},
    };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        r = run_env("snp_x", NULL, NULL, refused[i].args);
        cr_expect_eq(r.status, 2, "%s %s (%zu): %d %s", refused[i].args[0], refused[i].args[1], i,
                     r.status, r.err);
        cr_expect(strstr(r.err, refused[i].says), "%zu: \"%s\" not in %s", i, refused[i].says,
                  r.err);
        run_free(&r);
    }
}

Test(offline, no_token_exits_4)
{
    struct run r = CTL(NULL, "slots", "list");
    cr_expect_eq(r.status, 4, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "jeton"), "%s", r.err);
    run_free(&r);
}

Test(offline, unreachable_server_exits_3)
{
    struct run r = CTL("snp_x", "slots", "list");
    cr_expect_eq(r.status, 3, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "injoignable"), "%s", r.err);
    run_free(&r);
    r = CTL("snp_x", "--json", "capacity");
    cr_expect_eq(r.status, 3);
    run_free(&r);
    r = CTL("snp_x", "whoami");
    cr_expect_eq(r.status, 3, "%d %s", r.status, r.err);
    run_free(&r);
}

Test(offline, config_file_with_a_token_must_not_be_world_readable)
{
    char dir[256], path[300];
    snprintf(dir, sizeof(dir), "%s/.config", home);
    mkdir(dir, 0700);
    snprintf(dir, sizeof(dir), "%s/.config/snpctl", home);
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/config", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    fprintf(f, "# test\nserver = %s\ntoken = snp_from_the_file\n", server);
    fclose(f);
    chmod(path, 0644);
    struct run r = CTL(NULL, "slots", "list");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "lisible par tous"), "%s", r.err);
    cr_expect(strstr(r.err, "chmod 600"), "%s", r.err);
    run_free(&r);
    /* With mode 600 the token is used: the (absent) server is tried. */
    chmod(path, 0600);
    r = CTL(NULL, "slots", "list");
    cr_expect_eq(r.status, 3, "%d %s", r.status, r.err);
    run_free(&r);
    /* A key it does not know is a mistake worth saying. */
    f = fopen(path, "w");
    fprintf(f, "sever = %s\n", server);
    fclose(f);
    r = CTL(NULL, "slots", "list");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "clé inconnue"), "%s", r.err);
    run_free(&r);
    unlink(path);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

Test(offline, import_dry_run_accepts_clean_files)
{
    char c[256], p[256], o[256];
    snprintf(c, sizeof(c), "%s/communes.csv", home);
    snprintf(p, sizeof(p), "%s/practitioners.csv", home);
    snprintf(o, sizeof(o), "%s/organisations.csv", home);
    write_file(c, "\xEF\xBB\xBFinsee,name,postal_code,latitude,longitude\r\n"
                  "35236,Redon,35600,47.6514,-2.0848\r\n"
                  "56001,Allaire,56350,47.6375,-2.1632\r\n"
                  "2A004,Ajaccio,20000,41.9192,8.7386\r\n");
    /* Semicolons and decimal commas, as a French spreadsheet writes them. */
    write_file(p, "rpps;family_name;given_name;site_name;site_kind;address;commune_insee;"
                  "latitude;longitude;phone\n"
                  "10999900011;Le Guen;Anne;Cabinet du Port;practice;\"12 quai \"\"Surcouf\"\"\";"
                  "35236;47,6497;-2,0829;02 99 71 00 00\n"
                  "10999900029;Morvan;Yann;Cabinet du Port;practice;\"12 quai \"\"Surcouf\"\"\";"
                  "35236;47,6497;-2,0829;02 99 71 00 00\n"
                  "10999900029;Morvan;Yann;CSNP;csnp;8 avenue Gascon;35236;47.6561;-2.0791;\n");
    write_file(o, "kind,name,finess,rpps,commune_insee\n"
                  "pharmacy,Pharmacie du Pont,350990016,,35236\n"
                  "professional,Cabinet infirmier,,10999900037,56001\n");
    struct run r = CTL(NULL, "import", "--communes", c, "--practitioners", p, "--organisations", o,
                       "--dry-run");
    cr_expect_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "Fichiers valides"), "%s", r.out);
    run_free(&r);
    r = CTL(NULL, "import", "--communes", c, "--dry-run", "--json");
    cr_expect_eq(r.status, 0);
    json_t *j = json_line(r.out, 0);
    cr_expect(json_is_true(json_object_get(j, "valid")));
    cr_expect_eq(json_integer_value(json_object_get(j, "lines")), 3);
    json_decref(j);
    run_free(&r);
    /* Without --dry-run, valid files go to the server: here none answers. */
    r = CTL("snp_x", "import", "--communes", c, "--practitioners", p, "--organisations", o);
    cr_expect_eq(r.status, 3, "%d\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.err, "injoignable"), "%s", r.err);
    cr_expect(strstr(r.err, "rien n'a été importé") || strstr(r.err, "peut-être"), "%s", r.err);
    run_free(&r);
    r = CTL(NULL, "import", "--communes", c);
    cr_expect_eq(r.status, 4, "no token: %d %s", r.status, r.err);
    run_free(&r);
}

/* strtod() reads "nan", "inf" and hex too; a NaN latitude used to pass every
 * range check, and its record then lacked the latitude (fuzz/fuzz_csv). */
Test(offline, import_refuses_coordinates_not_in_decimal)
{
    char c[256];
    snprintf(c, sizeof(c), "%s/odd_numbers.csv", home);
    write_file(c, "insee,name,latitude,longitude\n"
                  "35236,Redon,nan,-2.08\n"       /* 2 */
                  "35049,Bains,47.70,NAN\n"       /* 3 */
                  "56001,Allaire,inf,-2.16\n"     /* 4 */
                  "56194,Rieux,0x2F,-2.1\n"       /* 5 */
                  "35057,Brain,47,6833,-1,9167\n" /* 6: fields, not a decimal comma */
                  "35058,Sixt,\"47,8\",-2.1\n");  /* ok: decimal comma */
    struct run r = CTL(NULL, "import", "--communes", c, "--dry-run");
    cr_expect_eq(r.status, 1, "%d\n%s", r.status, r.out);
    static const char *const expected[] = {
        "odd_numbers.csv:2: latitude « nan » : nombre attendu",
        "odd_numbers.csv:3: longitude « NAN » : nombre attendu",
        "odd_numbers.csv:4: latitude « inf » : nombre attendu",
        "odd_numbers.csv:5: latitude « 0x2F » : nombre attendu",
        "odd_numbers.csv:6: 6 champs au lieu de 4",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_expect(strstr(r.out, expected[i]), "missing \"%s\" in:\n%s", expected[i], r.out);
    cr_expect_null(strstr(r.out, "odd_numbers.csv:7:"), "a valid line was reported:\n%s", r.out);
    run_free(&r);
}

/* A reason that quotes a long value is cut to fit; cut inside a character,
 * it was not UTF-8 and the --json report lost its line (fuzz/fuzz_csv). */
Test(offline, import_json_report_keeps_reasons_cut_inside_a_character)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/long_site.csv", home);
    /* The reason "praticien 10999900011 déjà rattaché au lieu « SITE »..."
     * has 50 bytes before SITE: after 460 a's, the first é straddles the
     * 511th byte, where the reason is cut. */
    char site[1200];
    size_t n = 460;
    memset(site, 'a', n);
    for (int i = 0; i < 200; i++, n += 2)
        memcpy(site + n, "\xC3\xA9", 2);
    site[n] = '\0';
    char line[1400], text[4096];
    snprintf(line, sizeof(line), "10999900011,Le Guen,Anne,%s,practice,1 quai,35236,47.65,-2.08\n",
             site);
    snprintf(text, sizeof(text),
             "rpps,family_name,given_name,site_name,site_kind,address,commune_insee,latitude,"
             "longitude\n%s%s",
             line, line);
    write_file(p, text);
    struct run r = CTL(NULL, "--json", "import", "--practitioners", p, "--dry-run");
    cr_expect_eq(r.status, 1, "%d\n%s", r.status, r.out);
    json_t *j = json_line(r.out, 0);
    json_t *inv = json_object_get(j, "invalid");
    /* Two names over 200 characters, then the second line repeats the first. */
    cr_expect_eq(json_integer_value(json_object_get(j, "errors")), 3, "%s", r.out);
    cr_expect_eq(json_array_size(inv), 3, "%s", r.out);
    const char *reason = json_string_value(json_object_get(json_array_get(inv, 2), "reason"));
    cr_expect(reason && strstr(reason, "déjà rattaché"), "%s", r.out);
    json_decref(j);
    run_free(&r);
}

Test(offline, import_dry_run_reports_every_invalid_line)
{
    char c[256], p[256], o[256];
    snprintf(c, sizeof(c), "%s/bad_communes.csv", home);
    snprintf(p, sizeof(p), "%s/bad_practitioners.csv", home);
    snprintf(o, sizeof(o), "%s/bad_organisations.csv", home);
    write_file(c, "insee,name,postal_code,latitude,longitude\n"
                  "35236,Redon,35600,47.6514,-2.0848\n"
                  "3523,Trop court,35600,47.6,-2.0\n"       /* 3: INSEE */
                  "35236,Redon bis,35600,47.6514,-2.0848\n" /* 4: duplicate */
                  "56001,Allaire,56350,-2.1632,47.6375\n"   /* 5: swapped */
                  "56194,Rieux,56350,91,-2.1\n");           /* 6: latitude */
    write_file(p, "rpps,family_name,given_name,site_name,site_kind,address,commune_insee,"
                  "latitude,longitude,phone\n"
                  "10999900012,Le Guen,Anne,Cabinet,practice,1 quai,35236,47.65,-2.08,\n"    /* 2 */
                  "10999900029,Morvan,Yann,Cabinet,clinic,1 quai,35236,47.65,-2.08,\n"       /* 3 */
                  "10999900037,Guillou,Claire,Autre,practice,1 rue,35236,47.65,-2.08,0299\n" /* 4 */
                  "10999900045,Rouxel,Thomas,Rieux,practice,1 rue,56001,47.59,-2.10,\n"     /* ok */
                  "10999900052,Le Bihan\n"                                                  /* 6 */
                  "10999900060,Jégou,Pierre,Ailleurs,practice,1 rue,44185,47.64,-2.06,\n"); /* 7 */
    write_file(o, "kind,name,finess,rpps,commune_insee\n"
                  "pharmacy,Pharmacie du Pont,350990017,,35236\n" /* 2: FINESS key */
                  "hospital,Urgences,350990024,,35236\n"          /* 3: kind */
                  "desk,Guichet,,,35236\n");                      /* 4: no identifier */
    struct run r = CTL(NULL, "import", "--communes", c, "--practitioners", p, "--organisations", o,
                       "--dry-run");
    cr_expect_eq(r.status, 1, "%d\n%s", r.status, r.out);
    static const char *const expected[] = {
        "bad_communes.csv:3: insee « 3523 »",
        "bad_communes.csv:4: insee « 35236 » : commune déjà décrite ligne 2",
        "bad_communes.csv:5: latitude/longitude",
        "inversées",
        "bad_communes.csv:6: latitude « 91 »",
        "bad_practitioners.csv:2: rpps « 10999900012 » : RPPS invalide : clé de contrôle",
        "bad_practitioners.csv:3: site_kind « clinic »",
        "bad_practitioners.csv:4: phone « 0299 »",
        "bad_practitioners.csv:6: 2 champs au lieu de 10 (ligne incomplète)",
        "bad_practitioners.csv:7: commune_insee « 44185 » : commune absente du fichier",
        "bad_organisations.csv:2: finess « 350990017 »",
        "bad_organisations.csv:3: kind « hospital »",
        "bad_organisations.csv:4: finess/rpps",
    };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_expect(strstr(r.out, expected[i]), "missing \"%s\" in:\n%s", expected[i], r.out);
    cr_expect_null(strstr(r.out, "bad_practitioners.csv:5:"), "a valid line was reported:\n%s",
                   r.out);
    run_free(&r);

    r = CTL(NULL, "--json", "import", "--organisations", o, "--dry-run");
    cr_expect_eq(r.status, 1);
    json_t *j = json_line(r.out, 0);
    cr_expect(json_is_false(json_object_get(j, "valid")));
    json_t *inv = json_object_get(j, "invalid");
    cr_expect_eq(json_array_size(inv), 3, "%s", r.out);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(inv, 0), "line")), 2);
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(inv, 0), "column")),
                     "finess");
    json_decref(j);
    run_free(&r);

    r = CTL(NULL, "import", "--communes", "/nonexistent/communes.csv", "--dry-run");
    cr_expect_eq(r.status, 2);
    run_free(&r);

    /* Without --dry-run the same checks come first: an invalid line stops
     * everything before the (unreachable) server is tried. */
    r = CTL("snp_x", "import", "--communes", c, "--practitioners", p, "--organisations", o);
    cr_expect_eq(r.status, 1, "%d\n%s\n%s", r.status, r.out, r.err);
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++)
        cr_expect(strstr(r.out, expected[i]), "missing \"%s\" in:\n%s", expected[i], r.out);
    cr_expect(strstr(r.out, "Rien n'a été importé"), "%s", r.out);
    cr_expect_null(strstr(r.err, "injoignable"), "the server was contacted: %s", r.err);
    run_free(&r);
    r = CTL("snp_x", "--json", "import", "--organisations", o);
    cr_expect_eq(r.status, 1);
    j = json_line(r.out, 0);
    cr_expect(json_is_false(json_object_get(j, "valid")), "%s", r.out);
    cr_expect_eq(json_array_size(json_object_get(j, "invalid")), 3, "%s", r.out);
    json_decref(j);
    run_free(&r);
}

Test(offline, import_limits_the_sites_of_a_practitioner)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/many_sites.csv", home);
    FILE *fp = fopen(p, "w");
    cr_assert(fp);
    fprintf(fp, "rpps,family_name,given_name,site_name,site_kind,address,commune_insee,latitude,"
                "longitude\n");
    for (int i = 1; i <= 21; i++)
        fprintf(fp, "10999900037,Guillou,Claire,Lieu %d,practice,%d rue,35236,47.65,-2.08\n", i, i);
    fclose(fp);
    struct run r = CTL(NULL, "import", "--practitioners", p, "--dry-run");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.out);
    cr_expect(strstr(r.out, "many_sites.csv:22: site_name « Lieu 21 » : praticien 10999900037 "
                            "rattaché à plus de 20 lieux"),
              "%s", r.out);
    run_free(&r);
}

Test(offline, token_arguments_are_checked_before_sending)
{
    /* Exit 2 and not 3: the (unreachable) server was never tried. */
    static const struct {
        const char *args[8];
        const char *says;
    } cases[] = {
        {{"token", "create", "--role", "pharmacist", "--organisation", "7"}, "--role"},
        {{"token", "create", "--role", "gp", "--rpps", "10999900012"}, "clé de Luhn"},
        {{"token", "create", "--role", "gp", "--rpps", "1099990001"}, "RPPS invalide"},
        {{"token", "create", "--role", "gp"}, "donnez --rpps"},
        {{"token", "create", "--role", "pharmacy"}, "donnez --organisation"},
        {{"token", "create", "--role", "pharmacy", "--organisation", "sept"}, "--organisation"},
        {{"token", "create", "--role", "sas", "--organisation", "3", "--rpps", "10999900011"},
         "--rpps ne va qu'avec --role gp"},
        {{"token", "create", "--role", "coordinator", "--organisation", "3"},
         "--organisation ne va qu'avec"},
        {{"token", "create", "--role", "desk", "--organisation", "3", "--expires-days", "0"},
         "--expires-days"},
        {{"token", "create", "--role", "desk", "--organisation", "3", "--expires-days", "9999"},
         "--expires-days"},
        {{"token", "create", "--organisation", "3"}, "--role manquant"},
        {{"token", "create", "--role", "reception"}, "donnez --site"},
        {{"push", "resend"}, "numéro de l'envoi"},
        {{"push", "resend", "dix-sept"}, "numéro d'envoi invalide"},
        {{"token", "create", "--role", "desk", "--organisation", "3", "--site", "4"},
         "--site ne va qu'avec"},
        {{"token", "create", "--role", "reception", "--site", "quatre"}, "--site"},
        {{"token", "list", "--state", "lost"}, "--state"},
        {{"token", "list", "--role", "gp"}, "option inconnue"},
        {{"token", "revoke"}, "manquant"},
        {{"token", "revoke", "douze"}, "numéro de jeton"},
        {{"token", "frobnicate"}, "sous-commande inconnue"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r = run_env("snp_x", NULL, NULL, cases[i].args);
        cr_expect_eq(r.status, 2, "case %zu: %d %s", i, r.status, r.err);
        cr_expect(strstr(r.err, cases[i].says), "case %zu: \"%s\" not in %s", i, cases[i].says,
                  r.err);
        run_free(&r);
    }
}

/* ---- with a server ------------------------------------------------------- */

static struct fixture f;

static const char *tok(enum fix_role role)
{
    return f.token[role];
}

static void setup(void)
{
    offline_setup();
    fixture_setup(&f, "{}");
    fixture_start(&f);
    snprintf(server, sizeof(server), "http://127.0.0.1:%d", f.snpd.port);
}

static void teardown(void)
{
    fixture_teardown(&f);
    offline_teardown();
}

TestSuite(snpctl, .init = setup, .fini = teardown, .timeout = 180);

Test(snpctl, gp_publishes_lists_and_withdraws)
{
    char day[32], from[48], site[16];
    local_day(2, day, sizeof(day));
    snprintf(from, sizeof(from), "%sT14:00", day);
    snprintf(site, sizeof(site), "%lld", (long long)f.site_gp1);
    struct run r =
        CTL(tok(FIX_GP_1), "slots", "publish", "--site", site, "--from", from, "--to", "16:00",
            "--every", "20m", "--audience", "pharmacy,sas", "--release", "2h", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "count")), 6);
    cr_expect_eq(json_array_size(json_object_get(j, "slot_ids")), 6);
    json_decref(j);
    run_free(&r);
    /* Local times: 14:00 to 15:40 in Paris, whatever the machine's zone. */
    char sql[512];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM slot WHERE to_char(starts_at AT TIME ZONE 'Europe/Paris', "
             "'YYYY-MM-DD HH24:MI') BETWEEN '%s 14:00' AND '%s 15:40' AND release_minutes = 120 "
             "AND duration_min = 20",
             day, day);
    cr_expect_eq(pgtest_long(&f.pg, sql), 6);

    /* Publishing again skips what exists. */
    r = CTL(tok(FIX_GP_1), "slots", "publish", "--site", site, "--from", from, "--to", "16:00",
            "--every", "20m", "--audience", "pharmacy,sas");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "6 ignorés"), "%s", r.out);
    run_free(&r);

    /* The list, scripted and for people. */
    char to[32];
    snprintf(to, sizeof(to), "%s", day);
    r = CTL(tok(FIX_GP_1), "slots", "list", "--from", day, "--to", to, "--status", "free",
            "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    j = json_line(r.out, 0);
    json_t *slots = json_object_get(j, "slots");
    cr_expect_eq(json_array_size(slots), 6, "%s", r.out);
    json_int_t first = json_integer_value(json_object_get(json_array_get(slots, 0), "slot_id"));
    json_int_t second = json_integer_value(json_object_get(json_array_get(slots, 1), "slot_id"));
    const char *start = json_string_value(json_object_get(json_array_get(slots, 0), "start"));
    cr_expect(start && strncmp(start, day, 10) == 0 && strstr(start, "T14:00:00"),
              "the first slot starts at 14:00 local: %s", start);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "slots", "list", "--from", day, "--to", to);
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Début") && strstr(r.out, "Statut") && strstr(r.out, "libre"), "%s",
              r.out);
    cr_expect(strstr(r.out, "Cabinet du Port"), "%s", r.out);
    /* The site's number, which publish --site takes, is in the list. */
    char place[64];
    snprintf(place, sizeof(place), "(lieu n° %lld)", (long long)f.site_gp1);
    cr_expect(strstr(r.out, place), "%s not in %s", place, r.out);
    run_free(&r);

    /* Withdraw two; again is a conflict the server explains. */
    char a[24], b[24];
    snprintf(a, sizeof(a), "%lld", (long long)first);
    snprintf(b, sizeof(b), "%lld", (long long)second);
    r = CTL(tok(FIX_GP_1), "slots", "withdraw", a, b, "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "count")), 2);
    json_decref(j);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'withdrawn'"), 2);
    r = CTL(tok(FIX_GP_1), "slots", "withdraw", a);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "conflict"), "%s", r.err);
    run_free(&r);
    /* Another GP's slot is not theirs to withdraw. */
    r = CTL(tok(FIX_GP_2), "slots", "withdraw", "--json", b);
    cr_expect_eq(r.status, 1);
    j = json_line(r.out, 0);
    cr_expect(json_object_get(j, "error"), "--json prints the server's error: %s", r.out);
    json_decref(j);
    run_free(&r);
}

Test(snpctl, gp_publishes_a_weekly_pattern_and_a_csnp_shift)
{
    char from_day[32], until[32], from[48], site[16], csnp[16];
    local_day(1, from_day, sizeof(from_day));
    local_day(7, until, sizeof(until));
    snprintf(from, sizeof(from), "%sT09:00", from_day);
    snprintf(site, sizeof(site), "%lld", (long long)f.site_gp1);
    snprintf(csnp, sizeof(csnp), "%lld", (long long)f.site_csnp);
    struct run r =
        CTL(tok(FIX_GP_1), "slots", "publish", "--site", site, "--from", from, "--to", "10:00",
            "--every", "30m", "--duration", "20m", "--weekly", "mon,tue,wed,thu,fri,sat,sun",
            "--until", until, "--audience", "sas", "--mode", "teleconsultation", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "count")), 14, "%s", r.out);
    json_decref(j);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE to_char(starts_at AT TIME "
                                    "ZONE 'Europe/Paris', 'HH24:MI') IN ('09:00', '09:30') AND "
                                    "duration_min = 20 AND mode = 'teleconsultation'"),
                 14);

    char day[32];
    local_day(2, day, sizeof(day));
    r = CTL(tok(FIX_GP_1), "slots", "shift", "--site", csnp, "--date", day, "--half-day",
            "afternoon", "--every", "15m", "--audience", "sas,emergency", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "count")), 16, "%s", r.out);
    json_decref(j);
    run_free(&r);
    /* A shift is for a CSNP: the server's refusal comes through. */
    r = CTL(tok(FIX_GP_1), "slots", "shift", "--site", site, "--date", day, "--half-day", "morning",
            "--every", "15m", "--audience", "sas");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "csnp"), "%s", r.err);
    run_free(&r);
}

Test(snpctl, wrong_role_and_bad_token)
{
    struct run r = CTL(tok(FIX_PHARMACY), "slots", "list");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    cr_expect(strstr(r.err, "your role may not"), "the server's message: %s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "--json", "capacity");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "forbidden");
    json_decref(j);
    run_free(&r);
    r = CTL("snp_0000000000000000000000000000000000000000000", "slots", "list");
    cr_expect_eq(r.status, 4, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "unauthenticated"), "%s", r.err);
    run_free(&r);
    r = CTL("snp_0000000000000000000000000000000000000000000", "whoami");
    cr_expect_eq(r.status, 4, "WebSocket auth refused: %d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "watch");
    cr_expect_eq(r.status, 1, "a gp may not watch capacity: %d %s", r.status, r.err);
    run_free(&r);
}

Test(snpctl, whoami)
{
    struct run r = CTL(tok(FIX_PHARMACY), "whoami", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "pharmacy");
    cr_expect_str_eq(json_string_value(json_object_get(j, "territory_id")), FIX_TERRITORY);
    cr_expect_eq(json_integer_value(json_object_get(j, "organisation_id")), f.pharmacy_id);
    cr_expect_str_eq(json_string_value(json_object_get(j, "organisation_commune_insee")), "35236");
    cr_expect_null(json_object_get(j, "sites"), "only a gp's session lists sites");
    json_decref(j);
    assert_conforming(&r);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "whoami");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, FIX_GP1), "%s", r.out);
    /* The sites where the GP practises, with the numbers publish takes:
     * Cabinet du Port and the CSNP, not the other GP's Cabinet d'Allaire. */
    char port[64], csnp[64];
    snprintf(port, sizeof(port), "n° %lld — Cabinet du Port", (long long)f.site_gp1);
    snprintf(csnp, sizeof(csnp), "n° %lld — CSNP de Redon", (long long)f.site_csnp);
    cr_expect(strstr(r.out, port) && strstr(r.out, csnp), "%s", r.out);
    cr_expect_null(strstr(r.out, "Allaire"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_GP_2), "whoami", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    j = json_line(r.out, 0);
    json_t *sites = json_object_get(j, "sites");
    cr_assert_eq(json_array_size(sites), 2, "%s", r.out);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(sites, 0), "site_id")),
                 f.site_gp2 < f.site_csnp ? f.site_gp2 : f.site_csnp);
    cr_expect_eq(json_integer_value(json_object_get(json_array_get(sites, 1), "site_id")),
                 f.site_gp2 < f.site_csnp ? f.site_csnp : f.site_gp2);
    json_decref(j);
    run_free(&r);
}

/* The options of a complete pharmacy request, then `extra`. */
#define PHARMACY_REQUEST(ref)                                                                      \
    "request", "create", "--ref", ref, "--initials", "J. D.", "--birth-year", "1950", "--sex",     \
        "F", "--commune", "35236", "--no-mt", "--motif", "ent", "--motif-text", "Angine",          \
        "--urgency", "24h", "--protocol", "sore_throat", "--test-result", "positive",              \
        "--exclusions", "fever"

Test(snpctl, request_create_accept_then_the_gp_sees_the_booking)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 3, 60, 30, "[\"pharmacy\", \"sas\"]"), 3);
    struct run r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-1"), "--accept", "--json");
    cr_assert_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    assert_conforming(&r);
    json_t *req = json_line(r.out, 0), *booking = json_line(r.out, 1);
    cr_expect_str_eq(json_string_value(json_object_get(req, "status")), "offered");
    cr_expect_str_eq(json_string_value(json_object_get(booking, "status")), "booked");
    json_int_t booking_id = json_integer_value(json_object_get(booking, "booking_id"));
    json_int_t request_id = json_integer_value(json_object_get(req, "request_id"));
    cr_expect_eq(json_integer_value(json_object_get(booking, "request_id")), request_id);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'booked'"), 1);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM request WHERE source ? 'pharmacy'"), 1);
    json_decref(req);
    json_decref(booking);
    run_free(&r);

    /* The same reference again: the same request, already booked. */
    r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-1"), "--accept", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    booking = json_line(r.out, 1);
    cr_expect_eq(json_integer_value(json_object_get(booking, "booking_id")), booking_id);
    json_decref(booking);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking"), 1);

    /* The GP's list shows it, with the patient and who asked. */
    r = CTL(tok(FIX_GP_1), "bookings", "list", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    json_t *list = json_object_get(j, "bookings");
    cr_assert_eq(json_array_size(list), 1, "%s", r.out);
    json_t *b = json_array_get(list, 0);
    cr_expect_eq(json_integer_value(json_object_get(b, "booking_id")), booking_id);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(b, "patient"), "initials")),
                     "J. D.");
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(b, "requester"), "name")),
                     "Pharmacie du Pont");
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "bookings", "list");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Rendez-vous") && strstr(r.out, "J. D., femme, 1950") &&
                  strstr(r.out, "Pharmacie du Pont") && strstr(r.out, "ORL"),
              "%s", r.out);
    run_free(&r);
    /* The other GP has none. */
    r = CTL(tok(FIX_GP_2), "bookings", "list");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Aucune réservation"), "%s", r.out);
    run_free(&r);

    /* The requester's views. */
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)request_id);
    r = CTL(tok(FIX_PHARMACY), "request", "show", id);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "rendez-vous pris") && strstr(r.out, "Cabinet du Port"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "list", "--status", "booked", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_array_size(json_object_get(j, "requests")), 1, "%s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "list");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Référence") && strstr(r.out, "ctl-1"), "%s", r.out);
    run_free(&r);
    /* Another organisation does not see it. */
    r = CTL(tok(FIX_OTHER_PHARMACY), "request", "show", id);
    cr_expect_eq(r.status, 1, "%d", r.status);
    cr_expect(strstr(r.err, "not_found"), "%s", r.err);
    run_free(&r);

    /* Outcomes: not before the appointment, at any time for a patient's
     * cancellation. */
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld", (long long)booking_id);
    r = CTL(tok(FIX_GP_1), "outcome", bid, "attended");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "too_late"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "outcome", bid, "cancelled_by_patient", "--note", "Prévenu", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "outcome"), "kind")),
                     "cancelled_by_patient");
    json_decref(j);
    run_free(&r);
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET starts_at = now() - interval '1 hour' WHERE "
                               "status = 'booked'"));
    r = CTL(tok(FIX_GP_1), "outcome", bid, "attended");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "patient vu"), "%s", r.out);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE outcome = 'attended'"), 1);
}

Test(snpctl, request_accept_decline_cancel_by_hand)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 3, 60, 30, "[\"pharmacy\"]"), 3);
    struct run r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-2"), "--no-wait", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *req = json_line(r.out, 0);
    json_int_t id = json_integer_value(json_object_get(req, "request_id"));
    json_int_t held = json_integer_value(
        json_object_get(json_object_get(json_object_get(req, "offer"), "slot"), "slot_id"));
    cr_assert_gt(held, 0);
    json_decref(req);
    run_free(&r);
    char sid[24], slot[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    snprintf(slot, sizeof(slot), "%lld", (long long)held);

    /* Declined: the next slot is offered.  The answer shows no patient
     * (offer.decline's never does), which is not an erased identity. */
    r = CTL(tok(FIX_PHARMACY), "request", "decline", sid, "--slot", slot, "--reason", "too_far");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Proposition refusée"), "%s", r.out);
    cr_expect_not(strstr(r.out, "effacée"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "show", sid, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    req = json_line(r.out, 0);
    json_int_t next = json_integer_value(
        json_object_get(json_object_get(json_object_get(req, "offer"), "slot"), "slot_id"));
    cr_expect(next > 0 && next != held, "next offer %lld after %lld", (long long)next,
              (long long)held);
    json_decref(req);
    run_free(&r);
    /* A bad reason is refused before sending. */
    r = CTL(tok(FIX_PHARMACY), "request", "decline", sid, "--slot", slot, "--reason", "bored");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--reason"), "%s", r.err);
    run_free(&r);

    /* Accepted by hand. */
    snprintf(slot, sizeof(slot), "%lld", (long long)next);
    r = CTL(tok(FIX_PHARMACY), "request", "accept", sid, "--slot", slot);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Rendez-vous confirmé"), "%s", r.out);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'booked'"), 1);

    /* Cancelled: the slot is free again. */
    r = CTL(tok(FIX_PHARMACY), "request", "cancel", sid, "--reason", "patient_seen_elsewhere",
            "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    req = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(req, "status")), "cancelled");
    json_decref(req);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM slot WHERE status = 'free'"), 3);
    r = CTL(tok(FIX_PHARMACY), "request", "cancel", sid, "--reason", "patient_request");
    cr_expect_eq(r.status, 1, "cancelled twice: %d", r.status);
    run_free(&r);
}

Test(snpctl, request_without_slots_waits)
{
    /* --no-wait says the request waits; --accept exits 5. */
    struct run r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-3"), "--no-wait");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "en attente"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-4"), "--accept", "--json");
    cr_expect_eq(r.status, 5, "%d %s", r.status, r.err);
    json_t *req = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(req, "status")), "waiting");
    json_decref(req);
    run_free(&r);
}

Test(snpctl, coordinator_exports_a_month_a_quarter_and_a_year)
{
    PGresult *res = pgtest_exec(&f.pg, "SELECT to_char(now() AT TIME ZONE 'Europe/Paris',"
                                       " 'YYYY-MM'), to_char(now() AT TIME ZONE 'Europe/Paris',"
                                       " 'YYYY-\"T\"Q'), to_char(now() AT TIME ZONE"
                                       " 'Europe/Paris', 'YYYY')");
    char month[8], quarter[8], year[8], path[256];
    snprintf(month, sizeof(month), "%s", PQgetvalue(res, 0, 0));
    snprintf(quarter, sizeof(quarter), "%s", PQgetvalue(res, 0, 1));
    snprintf(year, sizeof(year), "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    snprintf(path, sizeof(path), "%s/mois.csv", home);

    struct run r = CTL(tok(FIX_COORDINATOR), "indicators", "--export", "csv", "--month", month,
                       "--output", path);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "mois.csv écrit"), "%s", r.err);
    assert_conforming(&r);
    run_free(&r);
    FILE *fp = fopen(path, "rb");
    cr_assert_not_null(fp);
    char head[64] = "";
    cr_expect_gt(fread(head, 1, sizeof(head) - 1, fp), 0);
    fclose(fp);
    static const char bom_head[] = "\xEF\xBB\xBFterritoire,periode_type";
    cr_expect(strncmp(head, bom_head, sizeof(bom_head) - 1) == 0, "%s", head);

    /* A quarter as the French write it, the printable report on stdout. */
    r = CTL(tok(FIX_COORDINATOR), "indicators", "--export", "html", "--quarter", quarter);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "<html lang=\"fr\">"), "%.200s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "indicators", "--export", "statement", "--year", year);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);

    /* Usage errors, and a role that may not export. */
    const char *const bad[][7] = {
        {"indicators", "--quarter", quarter, NULL},
        {"indicators", "--export", "csv", NULL},
        {"indicators", "--export", "csv", "--month", month, "--year"},
        {"indicators", "--export", "pdf", "--month", month, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = run_env(tok(FIX_COORDINATOR), NULL, NULL, bad[i]);
        cr_expect_eq(r.status, 2, "case %zu: %d %s", i, r.status, r.err);
        run_free(&r);
    }
    r = CTL(tok(FIX_SAS), "indicators", "--export", "csv", "--month", month);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    run_free(&r);
}

Test(snpctl, sas_records_calls_and_lists_them)
{
    /* The request the regulator created for a patient who needs a slot. */
    char *body = fix_request_body("ctl-sas-1", "24h");
    int st;
    json_t *q = fix_api(&f, "POST", "/api/v1/requests", FIX_SAS, body, &st);
    free(body);
    cr_assert_eq(st, 201);
    char request[24];
    snprintf(request, sizeof(request), "%lld",
             (long long)json_integer_value(json_object_get(q, "request_id")));
    json_decref(q);

    struct run r = CTL(tok(FIX_SAS), "call", "record", "advice");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "enregistré : conseil médical"), "%s", r.out);
    assert_conforming(&r);
    run_free(&r);
    r = CTL(tok(FIX_SAS), "call", "record", "slot_request", "--request", request, "--ref",
            "ctl-call-1", "--regulator-id", "10999900045", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *call = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(call, "outcome")), "slot_request");
    cr_expect_eq(json_integer_value(json_object_get(call, "request_id")), atoll(request));
    cr_expect_str_eq(json_string_value(json_object_get(call, "regulator_id")), "10999900045");
    json_decref(call);
    run_free(&r);
    /* The same call sent again is recorded once. */
    r = CTL(tok(FIX_SAS), "call", "record", "slot_request", "--request", request, "--ref",
            "ctl-call-1", "--regulator-id", "10999900045");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    /* Mistakes are explained before anything is sent. */
    const char *const bad[][6] = {
        {"call", "record", "slot_request", NULL},
        {"call", "record", "advice", "--request", request, NULL},
        {"call", "record", "hospitalised", NULL},
        {"call", "record", NULL},
        {"call", "list", "--limit", "0", NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        r = run_env(tok(FIX_SAS), NULL, NULL, bad[i]);
        cr_expect_eq(r.status, 2, "%s %s %s: %d %s", bad[i][0], bad[i][1], bad[i][2], r.status,
                     r.err);
        run_free(&r);
    }
    /* A pharmacy may not record calls: refused by the server. */
    r = CTL(tok(FIX_PHARMACY), "call", "record", "advice");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    run_free(&r);

    r = CTL(tok(FIX_SAS), "call", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Issue") && strstr(r.out, "conseil médical") &&
                  strstr(r.out, "créneau de soins non programmés") && strstr(r.out, "ctl-call-1"),
              "%s", r.out);
    assert_conforming(&r);
    run_free(&r);
    r = CTL(tok(FIX_SAS), "call", "list", "--outcome", "slot_request", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *list = json_line(r.out, 0);
    cr_expect_eq(json_array_size(json_object_get(list, "calls")), 1);
    json_decref(list);
    run_free(&r);
}

/* Reads one line from `fd` within `timeout_ms`; returns it (malloc'ed) or
 * NULL. */
static char *read_line(int fd, int timeout_ms)
{
    char *buf = NULL;
    size_t len = 0;
    int64_t end = test_now_ms() + timeout_ms;
    for (int64_t left; (left = end - test_now_ms()) > 0;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        char ch;
        if (read(fd, &ch, 1) != 1)
            break;
        if (ch == '\n')
            return buf ? buf : strdup("");
        buf = realloc(buf, len + 2);
        buf[len++] = ch;
        buf[len] = '\0';
    }
    free(buf);
    return NULL;
}

Test(snpctl, request_accept_waits_for_an_offer_over_the_websocket)
{
    struct child c = spawn(tok(FIX_PHARMACY), NULL, NULL,
                           (const char *const[]){PHARMACY_REQUEST("ctl-5"), "--accept", "--wait",
                                                 "1m", "--json", NULL});
    char *line = read_line(c.out, 15000);
    cr_assert(line, "no request printed");
    json_t *req = json_loads(line, 0, NULL);
    cr_expect_str_eq(json_string_value(json_object_get(req, "status")), "waiting", "%s", line);
    json_decref(req);
    free(line);
    /* A slot appears: offer.made comes over the WebSocket, snpctl accepts. */
    cr_assert_eq(fix_publish(&f, FIX_GP_2, 1, 90, 30, "[\"pharmacy\"]"), 1);
    struct run r = finish(c, 30000);
    cr_expect_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    json_t *b = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(b, "status")), "booked", "%s", r.out);
    json_decref(b);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'booked'"), 1);
}

Test(snpctl, emergency_redirection_and_its_slip)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"emergency\"]"), 2);
    struct run r = CTL(tok(FIX_EMERGENCY), "request", "create", "--ref", "urg-1", "--name",
                       "Paul Le Bihan", "--birth-year", "1984", "--sex", "M", "--commune", "35236",
                       "--no-mt", "--motif", "musculoskeletal", "--urgency", "24h", "--triage",
                       "5", "--senior", FIX_GP2, "--accept");
    cr_assert_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.out, "Rendez-vous confirmé") && strstr(r.out, "snpctl slip"), "%s", r.out);
    run_free(&r);
    long id = pgtest_long(&f.pg, "SELECT id FROM request");
    char sid[24];
    snprintf(sid, sizeof(sid), "%ld", id);
    r = CTL(tok(FIX_EMERGENCY), "slip", sid);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    cr_expect(strstr(r.out, "BON DE RÉORIENTATION") && strstr(r.out, "Paul Le Bihan") &&
                  strstr(r.out, FIX_GP2),
              "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_EMERGENCY), "slip", sid, "--json");
    cr_expect_eq(r.status, 0);
    json_t *j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "request_id")), id);
    cr_expect(json_is_false(json_object_get(j, "refused")));
    json_decref(j);
    run_free(&r);
    /* Only the emergency department prints slips. */
    r = CTL(tok(FIX_PHARMACY), "slip", sid);
    cr_expect_eq(r.status, 1);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);
    /* The patient refuses: the booking is cancelled. */
    r = CTL(tok(FIX_EMERGENCY), "slip", sid, "--refuse", "--note", "Rentre chez lui");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Refus"), "%s", r.out);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'cancelled'"), 1);
    r = CTL(tok(FIX_EMERGENCY), "slip", sid);
    cr_expect(strstr(r.out, "REFUSÉ"), "%s", r.out);
    run_free(&r);
}

/* Reads the whole file `path` (NUL-terminated); NULL when it cannot. */
static char *slurp(const char *path)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return NULL;
    char *buf = calloc(1, 65536);
    size_t n = fread(buf, 1, 65535, in);
    buf[n] = '\0';
    fclose(in);
    return buf;
}

Test(snpctl, request_confirmation_for_the_patient)
{
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 2, 60, 30, "[\"pharmacy\"]"), 2);
    struct run r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-conf"), "--accept");
    cr_assert_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    run_free(&r);
    long id = pgtest_long(&f.pg, "SELECT id FROM request");
    char sid[24];
    snprintf(sid, sizeof(sid), "%ld", id);
    /* The appointment's date as the confirmation says it. */
    r = CTL(tok(FIX_PHARMACY), "request", "show", sid, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *req = json_line(r.out, 0);
    char when[80];
    labels_when_long(json_string_value(json_object_get(
                         json_object_get(json_object_get(req, "booking"), "slot"), "start")),
                     when, sizeof(when));
    json_decref(req);
    run_free(&r);
    cr_assert(strstr(when, " à ") && strstr(when, " h "), "%s", when);

    r = CTL(tok(FIX_PHARMACY), "request", "confirmation", sid);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    char line[128], number[64];
    snprintf(line, sizeof(line), "Rendez-vous : %s\n", when);
    snprintf(number, sizeof(number), "Demande n° %ld", id);
    static const char *const says[] = {
        "Territoire de test\nCONFIRMATION DE RENDEZ-VOUS\n",
        "Patient : J. D.\n",
        "Avec : Dr Anne Le Guen\n",
        "Lieu : Cabinet du Port\n       1 quai Surcouf, 35600 Redon\n",
        "À apporter :\n  - votre carte Vitale",
        "  - le carnet de santé, pour un enfant\n",
        "  - une pièce d'identité\n",
        /* The sites of the fixture have no phone: the requester is named. */
        "Si vous ne pouvez pas venir, prévenez Pharmacie du Pont",
        "Adressé par : Pharmacie du Pont\n",
    };
    for (size_t i = 0; i < sizeof(says) / sizeof(says[0]); i++)
        cr_expect(strstr(r.out, says[i]), "\"%s\" not in:\n%s", says[i], r.out);
    cr_expect(strstr(r.out, line), "\"%s\" not in:\n%s", line, r.out);
    cr_expect(strstr(r.out, number), "%s", r.out);
    /* Nothing of the motif: the sheet may be read by others. */
    cr_expect(!strstr(r.out, "ORL") && !strstr(r.out, "Angine") && !strstr(r.out, "fièvre"), "%s",
              r.out);
    /* 72 columns, for a printer. */
    for (const char *p = r.out; *p;) {
        size_t len = strcspn(p, "\n");
        char *one = strndup(p, len);
        cr_expect_leq(table_width(one), 72, "too wide: %s", one);
        free(one);
        p += len + (p[len] == '\n');
    }
    run_free(&r);

    /* --html writes a printable page, for its owner only (it names the
     * patient). */
    char html[256];
    snprintf(html, sizeof(html), "%s/confirmation.html", home);
    r = CTL(tok(FIX_PHARMACY), "request", "confirmation", sid, "--html", html);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "CONFIRMATION DE RENDEZ-VOUS"), "%s", r.out);
    run_free(&r);
    struct stat st;
    cr_assert_eq(stat(html, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "%o", st.st_mode & 0777);
    char *page = slurp(html);
    cr_assert(page);
    cr_expect(strstr(page, "<h1>Confirmation de rendez-vous</h1>") &&
                  strstr(page, "<strong>Patient :</strong> J. D.") &&
                  strstr(page, "<li>votre carte Vitale") && strstr(page, "@page") &&
                  !strstr(page, "Angine") && !strstr(page, "<script"),
              "%s", page);
    free(page);

    /* Another organisation's request is not found; a cancelled one has
     * nothing to confirm. */
    r = CTL(tok(FIX_OTHER_PHARMACY), "request", "confirmation", sid);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "not_found") && !strstr(r.out, "CONFIRMATION"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "cancel", sid, "--reason", "patient_request");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "confirmation", sid);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "pas de rendez-vous confirmé") && r.out[0] == '\0', "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "confirmation");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    run_free(&r);
}

Test(snpctl, gp_cancels_a_booking)
{
    fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]");
    struct run r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-6"), "--accept", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *b = json_line(r.out, 1);
    char bid[24];
    snprintf(bid, sizeof(bid), "%lld",
             (long long)json_integer_value(json_object_get(b, "booking_id")));
    json_decref(b);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "bookings", "cancel", bid, "--reason", "practitioner_unavailable",
            "--note", "Urgence au cabinet.");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "annulée"), "%s", r.out);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM booking WHERE status = 'cancelled'"), 1);
}

Test(snpctl, capacity_by_commune)
{
    fix_publish(&f, FIX_GP_1, 3, 30, 30, "[\"sas\", \"pharmacy\"]");
    fix_publish(&f, FIX_GP_2, 2, 30, 60, "[\"sas\"]");
    struct run r = CTL(tok(FIX_SAS), "capacity", "--horizon", "4h", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 5);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_DESK), "capacity");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    /* Redon 3, Allaire 2, from grouping the listed slots. */
    cr_expect(strstr(r.out, "Commune") && strstr(r.out, "Libres"), "%s", r.out);
    const char *redon = strstr(r.out, "Redon ");
    const char *allaire = strstr(r.out, "Allaire ");
    cr_assert(redon && allaire, "%s", r.out);
    cr_expect(strstr(redon, "35236       3"), "Redon row: %s", r.out);
    cr_expect(strstr(allaire, "56001       2"), "Allaire row: %s", r.out);
    run_free(&r);
    /* Around Allaire within 2 km. */
    r = CTL(tok(FIX_SAS), "capacity", "--commune", "56001", "--radius", "2", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 2);
    json_decref(j);
    run_free(&r);
    /* Other roles get totals only, and are told. */
    r = CTL(tok(FIX_COORDINATOR), "capacity");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Total : 5"), "%s", r.out);
    cr_expect(strstr(r.out, "sas et desk"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_SAS), "capacity", "--horizon", "1h");
    cr_expect_eq(r.status, 2);
    run_free(&r);
}

Test(snpctl, watch_updates_on_capacity_changes_and_exits_on_ctrl_c)
{
    fix_publish(&f, FIX_GP_1, 2, 30, 30, "[\"sas\"]");
    struct child c = spawn(tok(FIX_DESK), NULL, NULL,
                           (const char *const[]){"watch", "--json", "--interval", "600", NULL});
    char *line = read_line(c.out, 15000);
    cr_assert(line, "watch printed nothing");
    json_t *j = json_loads(line, 0, NULL);
    cr_expect_eq(json_integer_value(json_object_get(j, "total")), 2, "%s", line);
    json_decref(j);
    free(line);
    /* More slots: a capacity.changed push, then a fresh line. */
    fix_publish(&f, FIX_GP_2, 3, 30, 30, "[\"sas\"]");
    json_int_t total = 0;
    for (int i = 0; i < 5 && total != 5; i++) {
        line = read_line(c.out, 10000);
        cr_assert(line, "no update after the publication");
        j = json_loads(line, 0, NULL);
        total = json_integer_value(json_object_get(j, "total"));
        json_decref(j);
        free(line);
    }
    cr_expect_eq(total, 5);
    kill(c.pid, SIGINT);
    struct run r = finish(c, 10000);
    cr_expect_eq(r.status, 0, "Ctrl-C ends watch cleanly: %d %s", r.status, r.err);
    run_free(&r);
}

Test(snpctl, coordinator_territory_and_indicators)
{
    struct run r = CTL(tok(FIX_COORDINATOR), "territory", "show", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "territory_id")), FIX_TERRITORY);
    cr_expect_eq(json_array_size(json_object_get(j, "communes")), 2);
    /* Postal codes and the sites with their ids (protocol 1.2.0). */
    json_t *cm;
    size_t k;
    json_array_foreach (json_object_get(j, "communes"), k, cm) {
        const char *insee = json_string_value(json_object_get(cm, "insee"));
        cr_expect_str_eq(json_string_value(json_object_get(cm, "postal_code")),
                         strcmp(insee, "35236") == 0 ? "35600" : "56350");
    }
    json_t *sites = json_object_get(j, "sites");
    cr_assert_eq(json_array_size(sites), 3, "%s", r.out);
    json_t *first = json_array_get(sites, 0);
    cr_expect_eq(json_integer_value(json_object_get(first, "site_id")), f.site_gp1);
    cr_expect_str_eq(json_string_value(json_object_get(first, "name")), "Cabinet du Port");
    cr_expect_str_eq(json_string_value(json_object_get(first, "kind")), "practice");
    cr_expect_str_eq(json_string_value(json_object_get(first, "commune_insee")), "35236");
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(sites, 2), "kind")), "csnp");
    assert_conforming(&r);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "territory", "show");
    cr_expect_eq(r.status, 0);
    cr_expect(strstr(r.out, "Allaire") && strstr(r.out, "hold_seconds"), "%s", r.out);
    cr_expect(strstr(r.out, "56350") && strstr(r.out, "3 lieux de consultation"), "%s", r.out);
    char allaire[64];
    snprintf(allaire, sizeof(allaire), "%lld  Cabinet d'Allaire", (long long)f.site_gp2);
    cr_expect(strstr(r.out, allaire), "%s not in %s", allaire, r.out);
    run_free(&r);

    r = CTL(tok(FIX_COORDINATOR), "territory", "set", "hold_seconds=120",
            "weights.distance_per_km=0.2", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    json_t *s = json_object_get(j, "settings");
    cr_expect_eq(json_integer_value(json_object_get(s, "hold_seconds")), 120);
    cr_expect_float_eq(
        json_number_value(json_object_get(json_object_get(s, "weights"), "distance_per_km")), 0.2,
        1e-9);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "territory", "set", "hold_seconds=60");
    cr_expect_eq(r.status, 1, "%d", r.status);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);

    /* Indicators may not be served yet: either the month's figures, or a
     * plain sentence and exit 1. */
    r = CTL(tok(FIX_COORDINATOR), "indicators", "--month", "2026-10");
    if (r.status == 0) {
        cr_expect(strstr(r.out, "Indicateur"), "%s", r.out);
    } else {
        cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
        cr_expect(strstr(r.err, "pas disponibles"), "%s", r.err);
    }
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "indicators", "--month", "2026-10", "--json");
    j = json_line(r.out, 0);
    cr_expect(json_object_get(j, r.status == 0 ? "indicators" : "error"), "%s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "indicators");
    cr_expect_eq(r.status, 1);
    run_free(&r);

    /* One request this month: "Demandes reçues" describes one patient and is
     * shown masked, "< 5", never dropped; units are French. */
    struct fix_booking bk;
    fix_book(&f, "ind-1", "Jeanne Dupont", "06 12 34 56 78", 90, &bk);
    r = CTL(tok(FIX_COORDINATOR), "indicators", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    j = json_line(r.out, 0);
    json_t *masked = json_object_get(j, "masked");
    bool requests_masked = false;
    size_t mk;
    json_t *m;
    json_array_foreach (masked, mk, m)
        requests_masked |= strcmp(json_string_value(json_object_get(m, "name")), "requests") == 0;
    cr_expect(requests_masked, "%s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "indicators");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    const char *line = strstr(r.out, "\nDemandes reçues ");
    cr_expect(line && strstr(line, "< 5") && strstr(line, "< 5") < strchr(line + 1, '\n') &&
                  strstr(line, "secret statistique") < strchr(line + 1, '\n'),
              "%s", r.out);
    cr_expect_null(strstr(r.out, " hours "), "%s", r.out);
    cr_expect_null(strstr(r.out, " percent "), "%s", r.out);
    run_free(&r);
}

/* ---- import and tokens, as the coordinator -------------------------------- */

/* Writes `text` to the file `name` in the test's HOME and its path to
 * `path`. */
static void home_file(char *path, size_t n, const char *name, const char *text)
{
    snprintf(path, n, "%s/%s", home, name);
    write_file(path, text);
}

/* Rieux, a commune the fixture's territory does not have yet, with a health
 * centre and two GPs (one also at the fixture's Cabinet du Port, described
 * as the fixture has it), a pharmacy and a nurses' practice; Redon as the
 * fixture has it.  Semicolons and decimal commas in the practitioners. */
#define RIEUX_COMMUNES                                                                             \
    "insee,name,postal_code,latitude,longitude\n"                                                  \
    "35236,Redon,35600,47.6514,-2.0840\n"                                                          \
    "56194,Rieux,56350,47.5989,-2.1063\n"
#define RIEUX_PRACTITIONERS                                                                        \
    "rpps;family_name;given_name;site_name;site_kind;address;commune_insee;latitude;longitude;"    \
    "phone\n"                                                                                      \
    "10999900037;Guillou;Claire;Maison de santé de Rieux;practice;2 rue du Port;56194;47,5985;"   \
    "-2,106;02 99 91 00 00\n"                                                                      \
    "10999900045;Rouxel;Thomas;Maison de santé de Rieux;practice;2 rue du Port;56194;47,5985;"    \
    "-2,106;02 99 91 00 00\n"                                                                      \
    "10999900045;Rouxel;Thomas;Cabinet du Port;practice;1 quai Surcouf;35236;47.6510;-2.0830;\n"
#define RIEUX_ORGANISATIONS                                                                        \
    "kind,name,finess,rpps,commune_insee\n"                                                        \
    "pharmacy,Pharmacie de Rieux,560990020,,56194\n"                                               \
    "professional,Cabinet infirmier de Rieux,,10999900052,56194\n"

/* Checks the counts `which` ("created"...) of an import's --json output. */
static void expect_counts(const json_t *j, const char *which, int communes, int sites,
                          int practitioners, int organisations)
{
    const json_t *n = json_object_get(j, which);
    cr_expect_eq(json_integer_value(json_object_get(n, "communes")), communes, "%s.communes",
                 which);
    cr_expect_eq(json_integer_value(json_object_get(n, "sites")), sites, "%s.sites", which);
    cr_expect_eq(json_integer_value(json_object_get(n, "practitioners")), practitioners,
                 "%s.practitioners", which);
    cr_expect_eq(json_integer_value(json_object_get(n, "organisations")), organisations,
                 "%s.organisations", which);
}

/* Returns the member `id_key` of the element of the array `list` of `j`
 * whose "name" is `name`, or 0. */
static json_int_t id_named(const json_t *j, const char *list, const char *name, const char *id_key)
{
    size_t i;
    json_t *v;
    json_array_foreach (json_object_get(j, list), i, v)
        if (strcmp(json_string_value(json_object_get(v, "name")), name) == 0)
            return json_integer_value(json_object_get(v, id_key));
    return 0;
}

/* Imports the Rieux files as the coordinator and returns the --json
 * output. */
static json_t *import_rieux(void)
{
    char c[256], p[256], o[256];
    home_file(c, sizeof(c), "communes.csv", RIEUX_COMMUNES);
    home_file(p, sizeof(p), "practitioners.csv", RIEUX_PRACTITIONERS);
    home_file(o, sizeof(o), "organisations.csv", RIEUX_ORGANISATIONS);
    struct run r = CTL(tok(FIX_COORDINATOR), "import", "--communes", c, "--practitioners", p,
                       "--organisations", o, "--json");
    cr_assert_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    run_free(&r);
    return j;
}

Test(snpctl, import_creates_then_leaves_unchanged_then_updates)
{
    json_t *j = import_rieux();
    expect_counts(j, "created", 1, 1, 2, 2);
    expect_counts(j, "updated", 0, 0, 0, 0);
    expect_counts(j, "unchanged", 1, 1, 0, 0);
    /* One batch per kind, and the ids of what was imported. */
    cr_expect_eq(json_integer_value(json_object_get(j, "batches")), 4);
    cr_expect_eq(json_array_size(json_object_get(j, "sites")), 2);
    cr_expect_eq(id_named(j, "sites", "Cabinet du Port", "site_id"), f.site_gp1);
    cr_expect_gt(id_named(j, "sites", "Maison de santé de Rieux", "site_id"), 0);
    cr_expect_gt(id_named(j, "organisations", "Pharmacie de Rieux", "organisation_id"), 0);
    cr_expect_gt(id_named(j, "organisations", "Cabinet infirmier de Rieux", "organisation_id"), 0);
    json_decref(j);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory_commune WHERE territory_id "
                                    "= '" FIX_TERRITORY "'"),
                 3);
    /* Decimal commas became numbers; the phone is kept as written. */
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM site WHERE name = 'Maison de santé de "
                                    "Rieux' AND latitude = 47.5985 AND longitude = -2.106 AND "
                                    "phone = '02 99 91 00 00' AND commune_insee = '56194'"),
                 1);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner_site WHERE rpps = "
                                    "'10999900045'"),
                 2);

    /* Again: everything as it was. */
    j = import_rieux();
    expect_counts(j, "created", 0, 0, 0, 0);
    expect_counts(j, "updated", 0, 0, 0, 0);
    expect_counts(j, "unchanged", 2, 2, 2, 2);
    json_decref(j);

    /* One line changed: the nurses' practice has another head. */
    char o[256];
    home_file(o, sizeof(o), "organisations.csv",
              "kind,name,finess,rpps,commune_insee\n"
              "pharmacy,Pharmacie de Rieux,560990020,,56194\n"
              "professional,Cabinet infirmier de Rieux,,10999900060,56194\n");
    struct run r = CTL(tok(FIX_COORDINATOR), "import", "--organisations", o, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    expect_counts(j, "updated", 0, 0, 0, 1);
    expect_counts(j, "unchanged", 0, 0, 0, 1);
    json_decref(j);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM organisation WHERE rpps = "
                                    "'10999900060'"),
                 1);

    /* For people: the totals, then the ids that tokens and slots need. */
    r = CTL(tok(FIX_COORDINATOR), "import", "--organisations", o);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Créés") && strstr(r.out, "Mis à jour") && strstr(r.out, "Inchangés"),
              "%s", r.out);
    cr_expect(strstr(r.out, "token create") && strstr(r.out, "Pharmacie de Rieux") &&
                  strstr(r.out, "pharmacie"),
              "%s", r.out);
    run_free(&r);

    /* Only coordinators and admins import. */
    r = CTL(tok(FIX_DESK), "import", "--organisations", o);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);
}

/* Returns the secret that `token create` printed: its only line. */
static char *secret_of(const struct run *r)
{
    size_t len = strcspn(r->out, "\n");
    cr_expect_eq(r->out[len], '\n', "%s", r->out);
    cr_expect_eq(r->out[len + (r->out[len] != 0)], '\0', "the secret alone: %s", r->out);
    cr_expect(strncmp(r->out, "snp_", 4) == 0, "%s", r->out);
    return strndup(r->out, len);
}

Test(snpctl, imported_site_and_organisation_serve_new_tokens)
{
    json_t *j = import_rieux();
    char site[24], org[24];
    snprintf(site, sizeof(site), "%lld",
             (long long)id_named(j, "sites", "Maison de santé de Rieux", "site_id"));
    json_int_t org_id = id_named(j, "organisations", "Pharmacie de Rieux", "organisation_id");
    snprintf(org, sizeof(org), "%lld", (long long)org_id);
    json_decref(j);

    /* A gp token for an imported practitioner, who publishes at the
     * imported site. */
    struct run r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "gp", "--rpps",
                       "10999900037", "--label", "Dr Guillou");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    char *gp = secret_of(&r);
    cr_expect(strstr(r.err, "Jeton n°") && strstr(r.err, "RPPS 10999900037") &&
                  strstr(r.err, "Dr Guillou"),
              "%s", r.err);
    run_free(&r);
    char day[32], from[48];
    local_day(2, day, sizeof(day));
    snprintf(from, sizeof(from), "%sT14:00", day);
    r = CTL(gp, "slots", "publish", "--site", site, "--from", from, "--to", "15:00", "--every",
            "20m", "--audience", "sas", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_integer_value(json_object_get(j, "count")), 3, "%s", r.out);
    json_decref(j);
    run_free(&r);
    free(gp);

    /* A pharmacy token for the imported pharmacy. */
    r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "pharmacy", "--organisation", org,
            "--label", "comptoir 1", "--expires-days", "30", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    j = json_line(r.out, 0);
    char *pharmacy = strdup(json_string_value(json_object_get(j, "secret")));
    json_t *t = json_object_get(j, "token");
    cr_expect_eq(json_integer_value(json_object_get(t, "organisation_id")), org_id);
    cr_expect_str_eq(json_string_value(json_object_get(t, "state")), "active");
    cr_expect(json_is_string(json_object_get(t, "expires_at")), "%s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(pharmacy, "whoami", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(j, "role")), "pharmacy");
    cr_expect_eq(json_integer_value(json_object_get(j, "organisation_id")), org_id);
    json_decref(j);
    run_free(&r);
    free(pharmacy);
}

Test(snpctl, import_refusals_name_the_file_and_line)
{
    /* Without a communes file, a site's commune must be the territory's:
     * Rieux is not yet, which only the server knows. */
    char p[256];
    home_file(p, sizeof(p), "practitioners.csv",
              "rpps,family_name,given_name,site_name,site_kind,address,commune_insee,latitude,"
              "longitude\n"
              "10999900037,Guillou,Claire,Cabinet du Port,practice,1 quai Surcouf,35236,47.6510,"
              "-2.0830\n"
              "10999900037,Guillou,Claire,Maison de santé de Rieux,practice,2 rue du Port,56194,"
              "47.5985,-2.106\n");
    struct run r = CTL(tok(FIX_COORDINATOR), "import", "--practitioners", p);
    cr_expect_eq(r.status, 1, "%d\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.err, "invalid_field") && strstr(r.err, "56194"), "%s", r.err);
    cr_expect(strstr(r.err, "practitioners.csv:3, colonne commune_insee (champ "
                            "sites[1].commune_insee du lot 1)"),
              "%s", r.err);
    cr_expect(strstr(r.err, "rien n'a été importé"), "%s", r.err);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM practitioner WHERE rpps = "
                                    "'10999900037'"),
                 0);
    r = CTL(tok(FIX_COORDINATOR), "--json", "import", "--practitioners", p);
    cr_expect_eq(r.status, 1);
    json_t *j = json_line(r.out, 0);
    json_t *e = json_object_get(j, "error");
    cr_expect_str_eq(json_string_value(json_object_get(e, "code")), "invalid_field");
    cr_expect_str_eq(json_string_value(json_object_get(e, "field")), "sites[1].commune_insee");
    json_decref(j);
    run_free(&r);

    /* The communes go through, then an organisation is refused: the first
     * batch stays, and running again after the fix is safe. */
    char c[256], o[256];
    home_file(c, sizeof(c), "communes.csv", RIEUX_COMMUNES);
    home_file(o, sizeof(o), "organisations.csv",
              "kind,name,finess,rpps,commune_insee\n"
              "desk,Pharmacie du Pont,350990016,,35236\n");
    r = CTL(tok(FIX_COORDINATOR), "import", "--communes", c, "--organisations", o);
    cr_expect_eq(r.status, 1, "%d\n%s\n%s", r.status, r.out, r.err);
    cr_expect(strstr(r.err, "organisations.csv:2, colonne kind"), "%s", r.err);
    cr_expect(strstr(r.err, "le premier lot (sur 2) est importé"), "%s", r.err);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM territory_commune WHERE insee = "
                                    "'56194'"),
                 1);
    home_file(o, sizeof(o), "organisations.csv",
              "kind,name,finess,rpps,commune_insee\n"
              "pharmacy,Pharmacie du Pont,350990016,,35236\n");
    r = CTL(tok(FIX_COORDINATOR), "import", "--communes", c, "--organisations", o, "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    expect_counts(j, "created", 0, 0, 0, 0);
    expect_counts(j, "unchanged", 2, 0, 0, 1);
    json_decref(j);
    run_free(&r);

    /* Invalid files: nothing is sent, the territory is as it was. */
    home_file(o, sizeof(o), "organisations.csv",
              "kind,name,finess,rpps,commune_insee\n"
              "pharmacy,Pharmacie Neuve,350990057,,56194\n"
              "hospital,Urgences,,,56194\n");
    r = CTL(tok(FIX_COORDINATOR), "import", "--organisations", o);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "organisations.csv:3: kind « hospital »"), "%s", r.out);
    cr_expect(strstr(r.out, "Rien n'a été importé"), "%s", r.out);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM organisation WHERE name = 'Pharmacie "
                                    "Neuve'"),
                 0);
}

/* Returns the count of sites among the counts `which` of an import. */
static json_t *sites_counted(const json_t *j, const char *which)
{
    return json_object_get(json_object_get(j, which), "sites");
}

/* Writes the RPPS number `i` of a test series (a Luhn key) into `out`. */
static void test_rpps(int i, char out[12])
{
    snprintf(out, 12, "1099980%03d", i % 1000);
    int sum = 0;
    for (int k = 9, doubled = 1; k >= 0; k--, doubled ^= 1) {
        int d = (out[k] - '0') * (doubled ? 2 : 1);
        sum += d > 9 ? d - 9 : d;
    }
    out[10] = (char)('0' + (10 - sum % 10) % 10);
    out[11] = '\0';
    cr_assert(validate_rpps(out), "%s", out);
}

Test(snpctl, import_in_batches_traces_a_refusal_to_its_line)
{
    /* 1200 communes: more than one message may carry. */
    char c[256], p[256];
    snprintf(c, sizeof(c), "%s/communes_1200.csv", home);
    FILE *fp = fopen(c, "w");
    cr_assert(fp);
    fprintf(fp, "insee,name,postal_code,latitude,longitude\n");
    for (int i = 0; i < 1200; i++) {
        int insee = i < 999 ? 44001 + i : 22001 + (i - 999);
        fprintf(fp, "%05d,Commune %05d,%05d,%.4f,-1.6\n", insee, insee, insee / 1000 * 1000,
                47.0 + i * 0.0001);
    }
    fclose(fp);
    struct run r = CTL(tok(FIX_COORDINATOR), "import", "--communes", c, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    expect_counts(j, "created", 1200, 0, 0, 0);
    cr_expect_geq(json_integer_value(json_object_get(j, "batches")), 2, "%s", r.out);
    json_decref(j);
    run_free(&r);

    /* 20 practitioners at 20 sites each, the last site (line 401) in a
     * commune outside the territory: the second batch of sites. */
    snprintf(p, sizeof(p), "%s/practitioners_400.csv", home);
    for (int pass = 0; pass < 2; pass++) {
        fp = fopen(p, "w");
        cr_assert(fp);
        fprintf(fp, "rpps,family_name,given_name,site_name,site_kind,address,commune_insee,"
                    "latitude,longitude\n");
        for (int i = 0; i < 400; i++) {
            char rpps[12];
            test_rpps(i / 20, rpps);
            fprintf(fp,
                    "%s,Nom %d,Prénom,Lieu %03d,practice,%d rue de la maison de santé "
                    "pluriprofessionnelle du pays de Redon et de la vallée de la Vilaine et de "
                    "l'Oust bâtiment B,%d,47.1,-1.6\n",
                    rpps, i / 20, i, i, pass == 0 && i == 399 ? 29019 : 44001 + i);
        }
        fclose(fp);
        r = CTL(tok(FIX_COORDINATOR), "import", "--practitioners", p, "--json");
        if (pass == 0) {
            cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
            cr_expect(strstr(r.err, "practitioners_400.csv:401, colonne commune_insee"), "%s",
                      r.err);
            cr_expect(strstr(r.err, "le premier lot (sur 3) est importé"), "%s", r.err);
            long sites = pgtest_long(&f.pg, "SELECT count(*) FROM site WHERE name LIKE 'Lieu %'");
            cr_expect(sites > 0 && sites < 400, "the first batch of sites stays: %ld", sites);
        } else {
            cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
            j = json_line(r.out, 0);
            json_int_t created = json_integer_value(sites_counted(j, "created"));
            json_int_t unchanged = json_integer_value(sites_counted(j, "unchanged"));
            cr_expect(created > 0 && unchanged > 0 && created + unchanged == 400,
                      "created %lld, unchanged %lld", (long long)created, (long long)unchanged);
            expect_counts(j, "created", 0, (int)created, 20, 0);
            cr_expect_eq(json_integer_value(json_object_get(j, "batches")), 3, "%s", r.out);
            json_decref(j);
        }
        run_free(&r);
    }
}

Test(snpctl, token_list_and_revoke)
{
    char pid[24];
    snprintf(pid, sizeof(pid), "%lld", (long long)f.pharmacy_id);
    struct run r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "pharmacy",
                       "--organisation", pid, "--label", "comptoir 1", "--expires-days", "30");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    char *secret = secret_of(&r);
    cr_expect(strstr(r.err, "Pharmacie du Pont") && strstr(r.err, "expire le"), "%s", r.err);
    run_free(&r);
    r = CTL(secret, "whoami");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);

    /* A reception token names its site, which whoami shows. */
    char site[24];
    snprintf(site, sizeof(site), "%lld", (long long)f.site_csnp);
    r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "reception", "--site", site,
            "--label", "accueil");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "CSNP de Redon (lieu n°"), "%s", r.err);
    char *desk = secret_of(&r);
    run_free(&r);
    r = CTL(desk, "whoami");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Lieu") && strstr(r.out, "CSNP de Redon"), "%s", r.out);
    run_free(&r);
    r = CTL(desk, "bookings", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    free(desk);

    /* Listed, active. */
    r = CTL(tok(FIX_COORDINATOR), "token", "list", "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    json_int_t id = 0;
    size_t i;
    json_t *t;
    json_array_foreach (json_object_get(j, "tokens"), i, t) {
        const char *label = json_string_value(json_object_get(t, "label"));
        if (label && strcmp(label, "comptoir 1") == 0) {
            id = json_integer_value(json_object_get(t, "token_id"));
            cr_expect_str_eq(json_string_value(json_object_get(t, "state")), "active");
            cr_expect_str_eq(json_string_value(json_object_get(t, "role")), "pharmacy");
            cr_expect_eq(json_integer_value(json_object_get(t, "organisation_id")), f.pharmacy_id);
        }
    }
    cr_assert_gt(id, 0, "the new token is not listed: %s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "token", "list", "--state", "active");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Libellé") && strstr(r.out, "comptoir 1") && strstr(r.out, "actif") &&
                  strstr(r.out, "Pharmacie du Pont"),
              "%s", r.out);
    run_free(&r);

    /* Revoked: refused from now on, with the authentication exit code. */
    char sid[24];
    snprintf(sid, sizeof(sid), "%lld", (long long)id);
    r = CTL(tok(FIX_COORDINATOR), "token", "revoke", sid);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "révoqué") && strstr(r.out, "comptoir 1"), "%s", r.out);
    run_free(&r);
    r = CTL(secret, "request", "list");
    cr_expect_eq(r.status, 4, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(secret, "whoami");
    cr_expect_eq(r.status, 4, "%d %s", r.status, r.err);
    run_free(&r);
    free(secret);
    r = CTL(tok(FIX_COORDINATOR), "token", "list", "--state", "revoked", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_array_size(json_object_get(j, "tokens")), 1, "%s", r.out);
    t = json_array_get(json_object_get(j, "tokens"), 0);
    cr_expect_eq(json_integer_value(json_object_get(t, "token_id")), id);
    cr_expect(json_is_string(json_object_get(t, "revoked_at")), "%s", r.out);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "token", "revoke", sid);
    cr_expect_eq(r.status, 1, "revoked twice: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "conflict"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "token", "revoke", "999999");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "not_found"), "%s", r.err);
    run_free(&r);

    /* What a coordinator may not do. */
    r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "admin");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    cr_expect_eq(r.out[0], '\0', "no secret: %s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "--json", "token", "create", "--role", "admin");
    cr_expect_eq(r.status, 1);
    j = json_line(r.out, 0);
    cr_expect_str_eq(json_string_value(json_object_get(json_object_get(j, "error"), "code")),
                     "forbidden");
    json_decref(j);
    run_free(&r);
    /* A practitioner of no territory of the caller's: the server names the field. */
    r = CTL(tok(FIX_COORDINATOR), "token", "create", "--role", "gp", "--rpps", "10999900078");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--rpps"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "token", "list");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);
}

/* ---- one French name per value -------------------------------------------- */

/* Copies LABEL with its first character in lower case (ASCII, or the
 * capitals the labels start with: "Œ", "À" and "Â"), unless it starts an
 * acronym ("ORL", "C2S"), so that snpctl's lower-case labels compare with the
 * declaration's and the catalogue's. */
static void first_lower(const char *label, char *out, size_t n)
{
    if (strncmp(label, "Œ", strlen("Œ")) == 0)
        snprintf(out, n, "œ%s", label + strlen("Œ"));
    else if (strncmp(label, "À", strlen("À")) == 0)
        snprintf(out, n, "à%s", label + strlen("À"));
    else if (strncmp(label, "Â", strlen("Â")) == 0)
        snprintf(out, n, "â%s", label + strlen("Â"));
    else {
        snprintf(out, n, "%s", label);
        if (out[0] >= 'A' && out[0] <= 'Z' && !(out[1] >= 'A' && out[1] <= 'Z') &&
            !(out[1] >= '0' && out[1] <= '9'))
            out[0] = (char)(out[0] - 'A' + 'a');
    }
}

/* The motif and urgency a request is made with are named alike on the
 * request form, in snpctl and in the indicator catalogue that the
 * coordinator's figures show (a pharmacist once chose "Maux de tête" and found
 * "Céphalée" in the figures).  The form's words are the declaration's
 * ("labels_fr" of protocol/snp.v1.json, generated into clients/web/labels.js:
 * test_codec checks that file), and so are snpctl's. */
Test(snpctl, labels_match_the_catalogue)
{
    cr_assert_eq(snp_proto_init(), 0);
    static const struct {
        const char *breakdown, *type;
        enum labels_kind kind;
    } tables[] = {
        {"motif", "motif_code", LABELS_MOTIF},
        {"urgency", "urgency", LABELS_URGENCY},
        {"call_outcome", "call_outcome", LABELS_CALL_OUTCOME},
        {"duty_status", "duty_status", LABELS_DUTY_STATUS},
    };
    for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
        char sql[256];
        snprintf(sql, sizeof(sql),
                 "SELECT key, label_fr FROM indicator_key_label WHERE breakdown = '%s' "
                 "ORDER BY position",
                 tables[t].breakdown);
        PGresult *res = pgtest_exec(&f.pg, sql);
        cr_assert_gt(PQntuples(res), 2, "no %s labels in the catalogue", tables[t].breakdown);
        int declared = 0;
        for (int i = 0; i < PQntuples(res); i++) {
            const char *key = PQgetvalue(res, i, 0);
            const char *fr = snp_proto_enum_label_fr(tables[t].type, key);
            /* The catalogue may break down by more than the enumeration
             * (duty_status: not_stated, unfilled). */
            if (fr == NULL && strcmp(tables[t].breakdown, "duty_status") == 0)
                continue;
            cr_expect_not_null(fr, "the declaration has no %s label for %s", tables[t].type, key);
            if (fr == NULL)
                continue;
            declared++;
            char catalogue[128], decl_lower[128];
            first_lower(PQgetvalue(res, i, 1), catalogue, sizeof(catalogue));
            first_lower(fr, decl_lower, sizeof(decl_lower));
            cr_expect_str_eq(decl_lower, catalogue, "%s %s: declared \"%s\", catalogue \"%s\"",
                             tables[t].breakdown, key, fr, PQgetvalue(res, i, 1));
            cr_expect_str_eq(labels_get(tables[t].kind, key), catalogue,
                             "%s %s: snpctl \"%s\", catalogue \"%s\"", tables[t].breakdown, key,
                             labels_get(tables[t].kind, key), PQgetvalue(res, i, 1));
        }
        cr_expect_gt(declared, 2, "%s: too few keys compared", tables[t].breakdown);
        PQclear(res);
    }
}

/* snpctl shows the declaration's label of every value it knows, its first
 * letter in lower case, in the declaration's order. */
Test(snpctl, labels_are_the_declarations)
{
    cr_assert_eq(snp_proto_init(), 0);
    static const struct {
        const char *type;
        enum labels_kind kind;
    } kinds[] = {
        {"slot_status", LABELS_SLOT_STATUS},
        {"request_status", LABELS_REQUEST_STATUS},
        {"slot_mode", LABELS_MODE},
        {"motif_code", LABELS_MOTIF},
        {"outcome_kind", LABELS_OUTCOME},
        {"pharmacy_exclusion", LABELS_EXCLUSION},
        {"role", LABELS_ROLE},
        {"message_channel", LABELS_MESSAGE_CHANNEL},
        {"half_day", LABELS_HALF_DAY},
        {"appointment_status", LABELS_APPOINTMENT_STATUS},
        {"priority_group", LABELS_PRIORITY_GROUP},
    };
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        const char *const *declared, *const *values;
        size_t n = snp_proto_enum_values(kinds[k].type, &declared);
        cr_assert_gt(n, 1, "%s", kinds[k].type);
        cr_assert_eq(labels_values(kinds[k].kind, &values), n, "%s", kinds[k].type);
        for (size_t i = 0; i < n; i++) {
            char want[128];
            cr_expect_str_eq(values[i], declared[i]);
            first_lower(snp_proto_enum_label_fr(kinds[k].type, declared[i]), want, sizeof(want));
            cr_expect_str_eq(labels_get(kinds[k].kind, declared[i]), want, "%s %s", kinds[k].type,
                             declared[i]);
        }
    }
    cr_expect_str_eq(labels_get(LABELS_MODE, "home"), "à domicile");
    cr_expect_str_eq(labels_get(LABELS_MOTIF, "eye"), "œil");
    cr_expect_str_eq(labels_get(LABELS_EXCLUSION, "age"), "âge hors protocole");
    cr_expect_str_eq(labels_get(LABELS_PRIORITY_GROUP, "c2s"), "C2S");
    cr_expect_str_eq(labels_get(LABELS_MESSAGE_CHANNEL, "sms"), "SMS");
    cr_expect_str_eq(labels_get(LABELS_INDICATOR_UNIT, "percent"), "%");
    cr_expect_str_eq(labels_get(LABELS_SLOT_STATUS, "lost"), "lost", "unknown values as they are");
    cr_expect_str_eq(labels_get(LABELS_SLOT_STATUS, NULL), "—");
}

Test(snpctl, participation_weeks_bookings_attestation_and_preconditions)
{
    /* One booking on GP1's slot two hours from now, asked by a pharmacy:
     * 20 minutes open that week, no supplement (not_sas). */
    struct fix_booking b;
    fix_book(&f, "ctl-part-1", "Patient Participation", "0611223344", 120, &b);
    char year[16];
    int64_t start = timeutil_now() + 120 * 60;
    struct tm tm;
    cr_assert(timeutil_to_local(timeutil_zone_find("Europe/Paris"), start, &tm));
    snprintf(year, sizeof(year), "%04d", tm.tm_year + 1900);

    /* The coordinator records the SAS registration. */
    struct run r = CTL(tok(FIX_COORDINATOR), "participation", "precondition", "set", "--rpps",
                       FIX_GP1, "--kind", "sas_registered", "--from", "2026-01-01");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "inscription au SAS"), "%s", r.out);
    cr_expect(strstr(r.out, "en cours"), "%s", r.out);
    assert_conforming(&r);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "participation", "precondition", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "2026-01-01"), "%s", r.out);
    run_free(&r);

    /* The GP's weeks and bookings, in French and as JSON. */
    r = CTL(tok(FIX_GP_1), "participation", "--year", year);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Participation de Dr Anne Le Guen (RPPS " FIX_GP1 ")"), "%s", r.out);
    cr_expect(strstr(r.out, "pas adressé par la régulation du SAS"), "%s", r.out);
    cr_expect(strstr(r.out, "0/20"), "%s", r.out);
    assert_conforming(&r);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "participation", "--year", year, "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    json_t *j = json_line(r.out, 0);
    json_t *rows = json_object_get(j, "bookings");
    cr_assert_eq(json_array_size(rows), 1);
    json_t *row = json_array_get(rows, 0);
    cr_expect_eq(json_integer_value(json_object_get(row, "booking_id")), b.booking_id);
    cr_expect(!json_is_true(json_object_get(row, "qualifies")));
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(row, "reasons"), 0)),
                     "not_sas");
    double hours = 0;
    size_t i;
    json_t *w;
    json_array_foreach (json_object_get(j, "weeks"), i, w)
        hours += json_number_value(json_object_get(w, "hours"));
    cr_expect_float_eq(hours, 0.33, 0.001, "one slot of 20 minutes: %g", hours);
    json_decref(j);
    run_free(&r);

    /* The attestation, as files. */
    char html[256], csv[256];
    snprintf(html, sizeof(html), "%s/attestation.html", home);
    snprintf(csv, sizeof(csv), "%s/attestation.csv", home);
    r = CTL(tok(FIX_GP_1), "participation", "--year", year, "--format", "html", "--output", html);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "participation", "--year", year, "--rpps", FIX_GP1, "--format",
            "csv", "--output", csv);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    char text[65536];
    FILE *fp = fopen(html, "r");
    cr_assert_not_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    cr_expect(strstr(text, "Attestation de participation"));
    cr_expect(strstr(text, "RPPS <strong>" FIX_GP1 "</strong>"));
    cr_expect_null(strstr(text, "Patient Participation"));
    fp = fopen(csv, "r");
    cr_assert_not_null(fp);
    n = fread(text, 1, sizeof(text) - 1, fp);
    text[n] = '\0';
    fclose(fp);
    cr_expect(strncmp(text, "\xef\xbb\xbfrpps,nom,prenom", 18) == 0, "%.40s", text);
    cr_expect(strstr(text, ",total,,,0.33,0,0,0,20\r\n"), "%s", text);

    /* Refusals: another GP's, a requester, usage mistakes. */
    r = CTL(tok(FIX_GP_2), "participation", "--rpps", FIX_GP1);
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "participation", "precondition", "set", "--rpps", FIX_GP1, "--kind",
            "cpts_member", "--from", "2026-01-01");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    run_free(&r);
    const char *const bad[][8] = {
        {"participation", "--output", "x.csv", NULL},
        {"participation", "--format", "pdf", NULL},
        {"participation", "--year", "26", NULL},
        {"participation", "--format", "csv", "--from", "2026-01-01", NULL},
        {"participation", "precondition", "set", "--rpps", FIX_GP1, NULL},
        {"participation", "precondition", "set", "--rpps", FIX_GP1, "--kind", "member"},
        {"participation", "precondition", "drop", NULL},
    };
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        r = run_env(tok(FIX_COORDINATOR), NULL, NULL, bad[k]);
        cr_expect_eq(r.status, 2, "case %zu: %d %s", k, r.status, r.err);
        run_free(&r);
    }
}

/* The rota of the CSNP (protocol 1.5.0): a shift published before anyone
 * is named is booked; the coordinator sees it unfilled with the patient
 * nobody will see, names GP2 on duty as a retired GP, and GP2 gets the
 * booking and lists the shift; freeing it brings the warning back. */
Test(snpctl, coordinator_names_the_practitioner_on_duty_of_a_csnp_shift)
{
    char day[32], csnp[16];
    local_day(1, day, sizeof(day));
    snprintf(csnp, sizeof(csnp), "%lld", (long long)f.site_csnp);
    struct run r = CTL(tok(FIX_COORDINATOR), "slots", "shift", "--site", csnp, "--date", day,
                       "--half-day", "morning", "--every", "30m", "--audience", "pharmacy,sas");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "8 créneaux publiés"), "%s", r.out);
    run_free(&r);
    /* A pharmacy books one of the shift's slots, the only ones there are. */
    char *body = fix_request_body("ctl-rota-1", "48h");
    int st;
    json_t *j = fix_api(&f, "POST", "/api/v1/requests", FIX_PHARMACY, body, &st);
    free(body);
    cr_assert_eq(st, 201, "%d", st);
    char path[96], accept[64];
    snprintf(path, sizeof(path), "/api/v1/requests/%lld/accept",
             (long long)json_integer_value(fix_json_at(j, "request_id")));
    snprintf(accept, sizeof(accept), "{\"slot_id\": %lld}",
             (long long)json_integer_value(fix_json_at(j, "offer.slot.slot_id")));
    json_decref(j);
    j = fix_api(&f, "POST", path, FIX_PHARMACY, accept, &st);
    cr_assert_eq(st, 200, "%d", st);
    json_decref(j);

    /* The coordinator's list, for people: unfilled, one patient waiting. */
    r = CTL(tok(FIX_COORDINATOR), "shift", "list");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    cr_expect(strstr(r.out, "Médecin de garde") && strstr(r.out, "Demi-journée"), "%s", r.out);
    cr_expect(strstr(r.out, "matin (08:00–12:00)") && strstr(r.out, "CSNP de Redon"), "%s", r.out);
    cr_expect(strstr(r.out, "non pourvue"), "%s", r.out);
    cr_expect(strstr(r.out, "1 patient sans médecin"), "%s", r.out);
    cr_expect(strstr(r.out, "1 garde, dont 1 non pourvue"), "%s", r.out);
    run_free(&r);
    /* Scripted: the unfilled ones of that day. */
    r = CTL(tok(FIX_COORDINATOR), "shift", "list", "--from", day, "--to", day, "--unfilled",
            "--site", csnp, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    json_t *shifts = json_object_get(j, "shifts");
    cr_assert_eq(json_array_size(shifts), 1, "%s", r.out);
    json_t *sh = json_array_get(shifts, 0);
    json_int_t shift = json_integer_value(json_object_get(sh, "shift_id"));
    cr_expect_str_eq(json_string_value(json_object_get(sh, "date")), day);
    cr_expect_eq(json_integer_value(json_object_get(sh, "slots")), 8);
    cr_expect_eq(json_integer_value(json_object_get(sh, "booked")), 1);
    cr_expect_eq(json_integer_value(json_object_get(sh, "unattended")), 1);
    json_decref(j);
    run_free(&r);
    char id[24];
    snprintf(id, sizeof(id), "%lld", (long long)shift);
    /* GP2 is on duty for nothing yet. */
    r = CTL(tok(FIX_GP_2), "shift", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Aucune garde du "), "%s", r.out);
    run_free(&r);

    /* Mistakes and refusals. */
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", id, "--rpps", FIX_GP2);
    cr_expect_eq(r.status, 2, "no --status: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--status est obligatoire"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", id, "--rpps", FIX_GP2, "--status", "intern");
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "intern"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", id, "--free", "--rpps", FIX_GP2);
    cr_expect_eq(r.status, 2, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "shift", "assign", id, "--rpps", FIX_GP1, "--status", "independent");
    cr_expect_eq(r.status, 1, "a gp assigning: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "shift", "list", "--unfilled");
    cr_expect_eq(r.status, 1, "a gp asking for unfilled shifts: %d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", "999999", "--rpps", FIX_GP2, "--status",
            "retired");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "not_found"), "%s", r.err);
    run_free(&r);
    cr_expect_eq(pgtest_long(&f.pg, "SELECT count(*) FROM shift WHERE rpps IS NOT NULL"), 0);

    /* GP2 named on duty, as a retired GP: the slots and the booking follow. */
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", id, "--rpps", FIX_GP2, "--status", "retired");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    cr_expect(strstr(r.out, "Médecin de garde : Dr Yann Morvan (retraité) ; 8 créneaux et 1 "
                            "rendez-vous transmis."),
              "%s", r.out);
    run_free(&r);
    snprintf(path, sizeof(path),
             "SELECT count(*) FROM shift WHERE id = %lld AND rpps = '%s' AND duty_status = "
             "'retired'",
             (long long)shift, FIX_GP2);
    cr_expect_eq(pgtest_long(&f.pg, path), 1);
    r = CTL(tok(FIX_GP_2), "shift", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Dr Yann Morvan (retraité)"), "%s", r.out);
    cr_expect_null(strstr(r.out, "sans médecin"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_GP_2), "bookings", "list", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_array_size(json_object_get(j, "bookings")), 1, "%s", r.out);
    json_decref(j);
    run_free(&r);

    /* Freed: the patient waits for someone again. */
    r = CTL(tok(FIX_COORDINATOR), "shift", "assign", id, "--free");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "Libérée : 8 créneaux et 1 rendez-vous n'ont plus de médecin."), "%s",
              r.out);
    cr_expect(strstr(r.out, "Attention : 1 patient sans médecin"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "shift", "list", "--unfilled", "--json");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    cr_expect_eq(json_array_size(json_object_get(j, "shifts")), 1, "%s", r.out);
    json_decref(j);
    run_free(&r);
}

/* ---- messages (protocol 1.6.0) -------------------------------------------- */

/* The messages of the territory as message.list answers them to the
 * coordinator with `args` (NULL-terminated, after "message list"). */
static json_t *messages_listed(const char *const *args)
{
    const char *argv[8] = {"message", "list", "--json"};
    int n = 3;
    for (int i = 0; args && args[i] && n < 7; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    struct run r = run_env(tok(FIX_COORDINATOR), NULL, NULL, argv);
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    /* Never the patient's number or address. */
    cr_expect_null(strstr(r.out, "06 12 34 56 78"), "%s", r.out);
    cr_expect_null(strstr(r.out, "jeanne@example.fr"), "%s", r.out);
    json_t *j = json_line(r.out, 0);
    run_free(&r);
    json_t *messages = json_incref(json_object_get(j, "messages"));
    json_decref(j);
    cr_assert(json_is_array(messages));
    return messages;
}

/* How many of `messages` are of `kind` and about booking `booking_id`. */
static size_t count_kind(const json_t *messages, const char *kind, json_int_t booking_id)
{
    size_t i, n = 0;
    json_t *m;
    json_array_foreach (messages, i, m)
        n += strcmp(json_string_value(json_object_get(m, "kind")), kind) == 0 &&
             json_integer_value(json_object_get(m, "booking_id")) == booking_id;
    return n;
}

Test(snpctl, confirmation_sent_patient_referred_and_messages_listed)
{
    /* The coordination names GP2 as taking new patients, and turns the
     * summaries to médecins traitants off. */
    struct run r = CTL(tok(FIX_COORDINATOR), "territory", "set", "mt_summary=off",
                       "new_patient_gps=" FIX_GP2, "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    json_t *j = json_line(r.out, 0);
    json_t *s = json_object_get(j, "settings");
    cr_expect(json_is_false(json_object_get(s, "mt_summary")), "%s", r.out);
    cr_expect_eq(json_array_size(json_object_get(s, "new_patient_gps")), 1, "%s", r.out);
    cr_expect_str_eq(json_string_value(json_array_get(json_object_get(s, "new_patient_gps"), 0)),
                     FIX_GP2);
    json_decref(j);
    run_free(&r);
    r = CTL(tok(FIX_COORDINATOR), "territory", "show");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "mt_summary               off"), "%s", r.out);
    cr_expect(strstr(r.out, FIX_GP2 "  Dr Yann Morvan"), "%s", r.out);
    run_free(&r);

    /* A pharmacy books for a patient without a médecin traitant. */
    cr_assert_eq(fix_publish(&f, FIX_GP_1, 1, 60, 30, "[\"pharmacy\"]"), 1);
    r = CTL(tok(FIX_PHARMACY), PHARMACY_REQUEST("ctl-msg-1"), "--accept", "--json");
    cr_assert_eq(r.status, 0, "%d\n%s\n%s", r.status, r.out, r.err);
    json_t *req = json_line(r.out, 0), *b = json_line(r.out, 1);
    json_int_t request_id = json_integer_value(json_object_get(req, "request_id"));
    json_int_t booking_id = json_integer_value(json_object_get(b, "booking_id"));
    json_decref(req);
    json_decref(b);
    run_free(&r);
    char rid[24], bid[24];
    snprintf(rid, sizeof(rid), "%lld", (long long)request_id);
    snprintf(bid, sizeof(bid), "%lld", (long long)booking_id);

    /* The confirmation by SMS: queued, the number never printed back. */
    r = CTL(tok(FIX_PHARMACY), "request", "send-confirmation", rid, "--sms", "06 12 34 56 78");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    cr_expect(strstr(r.out, "Confirmation n° ") && strstr(r.out, " par SMS (demande n° ") &&
                  strstr(r.out, "Le numéro ne sert qu'à cet envoi"),
              "%s", r.out);
    cr_expect_null(strstr(r.out, "06 12 34 56 78"), "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "send-confirmation", rid, "--email", "jeanne@example.fr",
            "--json");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    j = json_line(r.out, 0);
    json_t *m = json_object_get(j, "message");
    cr_expect_str_eq(json_string_value(json_object_get(m, "kind")), "confirmation");
    cr_expect_str_eq(json_string_value(json_object_get(m, "channel")), "email");
    cr_expect_eq(json_integer_value(json_object_get(m, "booking_id")), booking_id);
    cr_expect_null(strstr(r.out, "jeanne@"), "%s", r.out);
    json_decref(j);
    run_free(&r);
    /* Refusals: a landline, not an address, another organisation. */
    r = CTL(tok(FIX_PHARMACY), "request", "send-confirmation", rid, "--sms", "02 99 71 00 00");
    cr_expect_eq(r.status, 1, "a landline: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "invalid_field") && strstr(r.err, "--sms"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "request", "send-confirmation", rid, "--email", "jeanne.example.fr");
    cr_expect_eq(r.status, 1, "not an address: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "--email"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_OTHER_PHARMACY), "request", "send-confirmation", rid, "--sms",
            "06 12 34 56 78");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "not_found"), "%s", r.err);
    run_free(&r);

    /* The referral: not before an outcome of a patient seen. */
    r = CTL(tok(FIX_GP_1), "bookings", "mt-handover", bid);
    cr_expect_eq(r.status, 1, "no outcome yet: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "conflict"), "%s", r.err);
    run_free(&r);
    PQclear(pgtest_exec(&f.pg, "UPDATE slot SET starts_at = now() - interval '1 hour' WHERE "
                               "status = 'booked'"));
    r = CTL(tok(FIX_GP_1), "outcome", bid, "attended");
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_2), "bookings", "mt-handover", bid);
    cr_expect_eq(r.status, 1, "another GP's booking: %d %s", r.status, r.err);
    cr_expect(strstr(r.err, "not_found"), "%s", r.err);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "bookings", "mt-handover", bid);
    cr_assert_eq(r.status, 0, "%d %s", r.status, r.err);
    assert_conforming(&r);
    cr_expect(strstr(r.out, "Patient adressé au Dr Yann Morvan (RPPS " FIX_GP2
                            "), qui prend de nouveaux patients : message n° ") &&
                  strstr(r.out, " par MSSanté."),
              "%s", r.out);
    run_free(&r);
    r = CTL(tok(FIX_GP_1), "bookings", "mt-handover", bid, "--json");
    cr_expect_eq(r.status, 1, "referred twice: %d %s", r.status, r.err);
    cr_expect(strstr(r.out, "conflict"), "the error body with --json: %s", r.out);
    run_free(&r);
    /* The GP's list says to whom (from yesterday: the appointment was an
     * hour ago). */
    char yesterday[32];
    local_day(-1, yesterday, sizeof(yesterday));
    r = CTL(tok(FIX_GP_1), "bookings", "list", "--from", yesterday);
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    cr_expect(strstr(r.out, "patient vu, adressé au Dr Yann Morvan"), "%s", r.out);
    run_free(&r);

    /* The coordinator sees the three messages, for people and scripts;
     * no summary was sent (mt_summary off, and no médecin traitant). */
    json_t *all = messages_listed(NULL);
    cr_expect_eq(count_kind(all, "confirmation", booking_id), 2);
    cr_expect_eq(count_kind(all, "mt_handover", booking_id), 1);
    cr_expect_eq(count_kind(all, "mt_summary", booking_id), 0);
    cr_expect_eq(json_array_size(all), 3);
    /* Newest first. */
    cr_expect_str_eq(json_string_value(json_object_get(json_array_get(all, 0), "kind")),
                     "mt_handover");
    json_decref(all);
    json_t *one = messages_listed((const char *const[]){"--limit", "1", NULL});
    cr_expect_eq(json_array_size(one), 1);
    json_decref(one);
    static const char *const states[] = {"pending", "sent", "dead"};
    size_t total = 0;
    for (size_t k = 0; k < 3; k++) {
        json_t *some = messages_listed((const char *const[]){"--state", states[k], NULL});
        size_t i;
        json_t *x;
        json_array_foreach (some, i, x)
            cr_expect_str_eq(json_string_value(json_object_get(x, "state")), states[k]);
        total += json_array_size(some);
        json_decref(some);
    }
    cr_expect_eq(total, 3, "every message is in one state");
    r = CTL(tok(FIX_COORDINATOR), "message", "list");
    cr_expect_eq(r.status, 0, "%d %s", r.status, r.err);
    static const char *const says[] = {"N°",
                                       "Type",
                                       "Canal",
                                       "État",
                                       "Réservation",
                                       "Envoyé/abandonné",
                                       "Essais",
                                       "Erreur",
                                       "confirmation de rendez-vous",
                                       "e-mail",
                                       "MSSanté",
                                       "adressage à un médecin traitant",
                                       "3 messages, du plus récent au plus ancien."};
    for (size_t i = 0; i < sizeof(says) / sizeof(says[0]); i++)
        cr_expect(strstr(r.out, says[i]), "\"%s\" not in:\n%s", says[i], r.out);
    run_free(&r);
    r = CTL(tok(FIX_PHARMACY), "message", "list");
    cr_expect_eq(r.status, 1, "%d %s", r.status, r.err);
    cr_expect(strstr(r.err, "forbidden"), "%s", r.err);
    run_free(&r);
}
