/* snpd: the non-scheduled care dispatcher.  Parses the command line and the
 * configuration, then runs the service or one administrative command. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "dispatcher/commands/admin.h"
#include "dispatcher/app.h"
#include "dispatcher/config.h"
#include "dispatcher/commands/indicators.h"
#include "protocol/codec.h"

extern char **environ;

static const char usage[] =
    "usage: snpd [options]                 run the dispatcher\n"
    "       snpd migrate [options]         apply database migrations and changed SQL\n"
    "                                      functions, and exit\n"
    "       snpd token create|revoke|list  manage access tokens (snpd token --help)\n"
    "       snpd territory create|set ...  create a territory, set its FINESS and SAS platform\n"
    "                                      URL (snpd territory --help)\n"
    "       snpd indicators --territory ID --month YYYY-MM ...  extract the indicators\n"
    "                                      (snpd indicators --help)\n"
    "       snpd --help | --version\n"
    "\n"
    "options (each overrides the environment, which overrides the config file):\n"
    "  --config FILE        configuration file (env SNPD_CONFIG)\n"
    "  --database CONNINFO  libpq connection string (env SNPD_DATABASE_URL)\n"
    "  --listen ADDRESS     address to bind, default 127.0.0.1 (env SNPD_LISTEN)\n"
    "  --port N             HTTP/WebSocket port, default 8080 (env SNPD_PORT)\n"
    "  --log-format F       human or json (env SNPD_LOG_FORMAT)\n"
    "  --log-level L        debug, info, warn or error (env SNPD_LOG_LEVEL)\n"
    "  --web-root DIR       static web client, default clients/web (env SNPD_WEB_ROOT)\n"
    "\n"
    "Settings and their defaults: see README.md and deploy/snpd.conf.example.\n";

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},     {"database", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},     {"port", required_argument, NULL, 'p'},
        {"log-format", required_argument, NULL, 'f'}, {"log-level", required_argument, NULL, 'v'},
        {"web-root", required_argument, NULL, 'w'},   {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},          {NULL, 0, NULL, 0},
    };
    /* Global options come before the subcommand, and also after it for
     * `serve` and `migrate`; "+" stops getopt at the first non-option so that
     * `snpd token create --role gp` keeps its own flags. */
    struct override {
        const char *key;
        const char *value;
    } overrides[16];
    int noverrides = 0;
    const char *config_path = getenv("SNPD_CONFIG");
    const char *command = "serve";
    int command_index = -1;
    for (int pass = 0; pass < 2; pass++) {
        int c;
        while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
            if (noverrides == (int)(sizeof(overrides) / sizeof(overrides[0]))) {
                fputs("snpd: too many options\n", stderr);
                return 2;
            }
            switch (c) {
            case 'c':
                config_path = optarg;
                break;
            case 'd':
                overrides[noverrides++] = (struct override){"database", optarg};
                break;
            case 'l':
                overrides[noverrides++] = (struct override){"listen", optarg};
                break;
            case 'p':
                overrides[noverrides++] = (struct override){"port", optarg};
                break;
            case 'f':
                overrides[noverrides++] = (struct override){"log_format", optarg};
                break;
            case 'v':
                overrides[noverrides++] = (struct override){"log_level", optarg};
                break;
            case 'w':
                overrides[noverrides++] = (struct override){"web_root", optarg};
                break;
            case 'h':
                fputs(usage, stdout);
                return 0;
            case 'V':
                printf("snpd %s\n", SNP_VERSION);
                return 0;
            default:
                fputs(usage, stderr);
                return 2;
            }
        }
        if (pass == 1 || optind >= argc)
            break;
        command = argv[optind];
        command_index = optind;
        if (strcmp(command, "serve") != 0 && strcmp(command, "migrate") != 0)
            break;
        /* Continue after the subcommand's name. */
        argc -= optind;
        argv += optind;
        optind = 1;
        command_index = 0;
    }
    if (command_index >= 0 && strcmp(command, "token") != 0 && strcmp(command, "indicators") != 0 &&
        strcmp(command, "territory") != 0 && optind < argc) {
        fprintf(stderr, "snpd: unexpected argument \"%s\"\n%s", argv[optind], usage);
        return 2;
    }

    struct config cfg;
    char err[1024];
    config_defaults(&cfg);
    if (config_path && *config_path && !config_load_file(&cfg, config_path, err, sizeof(err))) {
        fprintf(stderr, "snpd: %s\n", err);
        return 2;
    }
    if (!config_load_env(&cfg, environ, err, sizeof(err))) {
        fprintf(stderr, "snpd: %s\n", err);
        return 2;
    }
    for (int i = 0; i < noverrides; i++) {
        if (!config_set(&cfg, overrides[i].key, overrides[i].value, err, sizeof(err))) {
            fprintf(stderr, "snpd: %s\n", err);
            return 2;
        }
    }
    /* token, territory and indicators parse their own arguments before they
     * connect (their --help needs no configuration), and check the database
     * then. */
    bool admin = strcmp(command, "token") == 0 || strcmp(command, "territory") == 0 ||
                 strcmp(command, "indicators") == 0;
    if (!(admin ? config_check_values : config_check)(&cfg, err, sizeof(err))) {
        fprintf(stderr, "snpd: %s\n", err);
        return 2;
    }
    log_setup(cfg.log_level, cfg.log_format);
    srand((unsigned)time(NULL) ^ (unsigned)getpid());

    if (strcmp(command, "migrate") == 0)
        return admin_migrate(&cfg);
    if (strcmp(command, "token") == 0)
        return admin_token(&cfg, argc - command_index - 1, argv + command_index + 1);
    if (strcmp(command, "territory") == 0)
        return admin_territory(&cfg, argc - command_index - 1, argv + command_index + 1);
    if (strcmp(command, "indicators") == 0)
        return indicators_command(&cfg, argc - command_index, argv + command_index);
    if (strcmp(command, "serve") != 0) {
        fprintf(stderr, "snpd: unknown command \"%s\"\n%s", command, usage);
        return 2;
    }

    if (snp_proto_init() != 0) {
        fprintf(stderr, "snpd: the embedded protocol description is invalid\n");
        return 1;
    }
    uv_loop_t loop;
    struct app app;
    uv_loop_init(&loop);
    log_info("app", "snpd %s starting", SNP_VERSION);
    int rc = app_run(&app, &loop, &cfg);
    if (uv_loop_close(&loop) != 0) {
        log_error("app", "event loop closed with live handles");
        rc = rc ? rc : 1;
    }
    snp_proto_shutdown();
    return rc;
}
