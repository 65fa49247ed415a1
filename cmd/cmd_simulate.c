/* `streamrec simulate`: option parsing around the simulator
 * (producers/sr_sim.h), writing the event log CSV `ts_ms,user,item,event`
 * (DESIGN.md §4) to a file or stdout.  The `--kafka` mode (live traffic to
 * the events topic) belongs to the kafka producer and plugs in here. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_produce.h"
#include "sr_sim.h"

extern char **environ;

/* --kafka mode: set by SIGINT/SIGTERM, polled by sr_produce_sim. */
static volatile sig_atomic_t sim_stop;

static void on_signal(int sig)
{
    (void)sig;
    sim_stop = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: streamrec simulate --users N --items M --events E --seed S --out FILE\n"
                 "\n"
                 "Generates realistic shop traffic (docs/SIMULATOR.md) as the event log CSV\n"
                 "`ts_ms,user,item,event`.  The same options give the same file.\n"
                 "\n"
                 "  --users N        users over the run (default 10000)\n"
                 "  --items M        items over the run (default 5000)\n"
                 "  --events E       events to write (default 100000)\n"
                 "  --seed S         random seed (default 1)\n"
                 "  --out FILE       output file, '-' for stdout (default '-')\n"
                 "  --days D         simulated time span (default 30)\n"
                 "  --start-ms T     time of the first event (default 2026-01-01T00:00Z)\n"
                 "  --categories C   number of categories (default items/250, at least 4)\n"
                 "  --zipf S         item popularity exponent (default 1.0)\n"
                 "  --impressions P  chance of impressions before a listing click (default 0.1)\n"
                 "  --preset NAME    a parameter set applied before the other options:\n"
                 "                   'default', or 'retail' (harder, RetailRocket-like: views\n"
                 "                   only, repeat-dominated, short sessions, one-visit users)\n"
                 "  --repeat P, --back P, --related P, --trend P\n"
                 "                   next-view mixture: repeat the item, go back in the\n"
                 "                   session, a related item, a trending item (defaults 0.22,\n"
                 "                   0.10, 0.38, 0.05; the rest: a fresh pick in the category)\n"
                 "  --explore P      chance a fresh pick is from any category (default 0)\n"
                 "  --continue P     chance of one more session step (default 0.8)\n"
                 "  --return P       chance a session starts on an item seen before (default 0.4)\n"
                 "  --cart P         chance a view goes to the cart (default 0.04)\n"
                 "  --buy P          chance a carted item is bought (default 0.45)\n"
                 "  --clicks P       share of listing picks logged as click (default 0.5)\n"
                 "  --activity A     Pareto exponent of user activity (default 1.2)\n"
                 "  --reasons        add a column `reason`: why the simulator produced the\n"
                 "                   event (return, trend-start, category-start, repeat, back,\n"
                 "                   related, trend, fresh, funnel, shown); eval ignores it\n"
                 "  --kafka          send the traffic live to topic.events on\n"
                 "                   kafka.bootstrap.servers instead of writing CSV: events\n"
                 "                   stamped with the current time, until --events (if given)\n"
                 "                   or Ctrl-C; progress on stderr\n"
                 "  --rate N         --kafka: events per second (default 1000; 0 = flat out)\n"
                 "  -c FILE / -X key=value: the common configuration options\n");
}

static int parse_u64(const char *name, const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end || s[0] == '-') {
        fprintf(stderr, "streamrec simulate: %s: not a non-negative integer: '%s'\n", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *name, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end) {
        fprintf(stderr, "streamrec simulate: %s: not a number: '%s'\n", name, s);
        return -1;
    }
    *out = v;
    return 0;
}

int sr_cmd_simulate(int argc, char **argv)
{
    enum {
        O_USERS = 1,
        O_ITEMS,
        O_EVENTS,
        O_SEED,
        O_OUT,
        O_DAYS,
        O_START,
        O_CATS,
        O_ZIPF,
        O_IMPR,
        O_HELP,
        O_KAFKA,
        O_RATE,
        O_PRESET,
        O_REPEAT,
        O_BACK,
        O_RELATED,
        O_TREND,
        O_EXPLORE,
        O_CONTINUE,
        O_RETURN,
        O_CART,
        O_BUY,
        O_CLICKS,
        O_ACTIVITY,
        O_REASONS
    };
    static const struct option opts[] = {
        {"users", required_argument, NULL, O_USERS},
        {"items", required_argument, NULL, O_ITEMS},
        {"events", required_argument, NULL, O_EVENTS},
        {"seed", required_argument, NULL, O_SEED},
        {"out", required_argument, NULL, O_OUT},
        {"days", required_argument, NULL, O_DAYS},
        {"start-ms", required_argument, NULL, O_START},
        {"categories", required_argument, NULL, O_CATS},
        {"zipf", required_argument, NULL, O_ZIPF},
        {"impressions", required_argument, NULL, O_IMPR},
        {"help", no_argument, NULL, O_HELP},
        {"kafka", no_argument, NULL, O_KAFKA},
        {"rate", required_argument, NULL, O_RATE},
        {"preset", required_argument, NULL, O_PRESET},
        {"repeat", required_argument, NULL, O_REPEAT},
        {"back", required_argument, NULL, O_BACK},
        {"related", required_argument, NULL, O_RELATED},
        {"trend", required_argument, NULL, O_TREND},
        {"explore", required_argument, NULL, O_EXPLORE},
        {"continue", required_argument, NULL, O_CONTINUE},
        {"return", required_argument, NULL, O_RETURN},
        {"cart", required_argument, NULL, O_CART},
        {"buy", required_argument, NULL, O_BUY},
        {"clicks", required_argument, NULL, O_CLICKS},
        {"activity", required_argument, NULL, O_ACTIVITY},
        {"reasons", no_argument, NULL, O_REASONS},
        {NULL, 0, NULL, 0},
    };
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        }
    char err[1024];
    /* -c / -X / environment as every command takes them (log.level). */
    sr_conf_t *conf = sr_cmd_conf(&argc, argv, environ, err, sizeof(err));
    if (!conf) {
        fprintf(stderr, "streamrec simulate: %s\n", err);
        return 2;
    }
    sr_sim_params_t p;
    sr_sim_params_init(&p);
    const char *out_path = "-";
    uint64_t v;
    int c, kafka = 0, events_given = 0, reasons = 0;
    double rate = 1000;
    /* A preset first, whatever its place, so that the other options
     * override it. */
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1)
        if (c == O_PRESET && sr_sim_params_preset(&p, optarg) != 0) {
            fprintf(stderr, "streamrec simulate: --preset: unknown preset '%s' (default, retail)\n",
                    optarg);
            sr_conf_destroy(conf);
            return 2;
        }
    opterr = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        const char *name = c > 0 && c <= O_REASONS ? opts[c - 1].name : "?";
        double *dst = c == O_REPEAT     ? &p.repeat
                      : c == O_BACK     ? &p.back
                      : c == O_RELATED  ? &p.related
                      : c == O_TREND    ? &p.trend
                      : c == O_EXPLORE  ? &p.explore
                      : c == O_CONTINUE ? &p.p_continue
                      : c == O_RETURN   ? &p.p_return
                      : c == O_CART     ? &p.p_cart
                      : c == O_BUY      ? &p.p_buy
                      : c == O_CLICKS   ? &p.click_share
                      : c == O_ACTIVITY ? &p.activity_alpha
                                        : NULL;
        if (dst) {
            if (parse_double(name, optarg, dst)) return 2;
            continue;
        }
        switch (c) {
        case O_USERS:
        case O_ITEMS:
        case O_CATS:
            if (parse_u64(name, optarg, &v)) return 2;
            if (v > UINT32_MAX) {
                fprintf(stderr, "streamrec simulate: %s: too large\n", name);
                return 2;
            }
            if (c == O_USERS)
                p.users = (uint32_t)v;
            else if (c == O_ITEMS)
                p.items = (uint32_t)v;
            else
                p.categories = (uint32_t)v;
            break;
        case O_EVENTS:
            if (parse_u64(name, optarg, &p.events)) return 2;
            events_given = 1;
            break;
        case O_SEED:
            if (parse_u64(name, optarg, &p.seed)) return 2;
            break;
        case O_START:
            if (parse_u64(name, optarg, &v)) return 2;
            p.start_ms = (int64_t)v;
            break;
        case O_OUT:
            out_path = optarg;
            break;
        case O_DAYS:
            if (parse_double(name, optarg, &p.days)) return 2;
            break;
        case O_ZIPF:
            if (parse_double(name, optarg, &p.zipf_s)) return 2;
            break;
        case O_IMPR:
            if (parse_double(name, optarg, &p.impression_rate)) return 2;
            break;
        case O_KAFKA:
            kafka = 1;
            break;
        case O_PRESET: /* applied above */
            break;
        case O_REASONS:
            reasons = 1;
            break;
        case O_RATE:
            if (parse_double("rate", optarg, &rate) || rate < 0) return 2;
            break;
        case 'h':
        case O_HELP:
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "streamrec simulate: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (kafka) {
        /* Live traffic: endless unless --events was given. */
        uint64_t max = events_given ? p.events : 0;
        p.events = 0;
        sr_sim_t *sim = sr_sim_new(&p, err, sizeof(err));
        if (!sim) {
            fprintf(stderr, "streamrec simulate: %s\n", err);
            sr_conf_destroy(conf);
            return 2;
        }
        struct sigaction sa = {.sa_handler = on_signal};
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        sr_produce_opts_t o = {.rate = rate, .max_events = max, .name = "simulator",
                               .report = stderr, .progress_ms = 5000,
                               .flush_timeout_ms = 30000, .stop = &sim_stop};
        sr_produce_stats_t st;
        int prc = sr_produce_sim(conf, sim, &o, &st, err, sizeof(err));
        if (prc) fprintf(stderr, "streamrec simulate: %s\n", err);
        printf("sent %" PRIu64 " delivered %" PRIu64 " failed %" PRIu64 "\n", st.sent, st.delivered,
               st.failed);
        sr_sim_destroy(sim);
        sr_conf_destroy(conf);
        return prc ? 1 : 0;
    }
    sr_conf_destroy(conf);
    if (p.events == 0) {
        fprintf(stderr, "streamrec simulate: --events must be > 0 when writing a file\n");
        return 2;
    }

    sr_sim_t *sim = sr_sim_new(&p, err, sizeof(err));
    if (!sim) {
        fprintf(stderr, "streamrec simulate: %s\n", err);
        return 2;
    }
    FILE *out = strcmp(out_path, "-") == 0 ? stdout : fopen(out_path, "w");
    if (!out) {
        fprintf(stderr, "streamrec simulate: %s: %s\n", out_path, strerror(errno));
        sr_sim_destroy(sim);
        return 1;
    }
    static char buf[1 << 16];
    setvbuf(out, buf, _IOFBF, sizeof(buf));
    fputs(reasons ? "ts_ms,user,item,event,reason\n" : "ts_ms,user,item,event\n", out);
    sr_event_t ev;
    while (sr_sim_next(sim, &ev) == 1) {
        fprintf(out, "%" PRId64 ",%.*s,%.*s,%s", ev.ts_ms, (int)ev.user_len, ev.user,
                (int)ev.item_len, ev.item, sr_event_type_name(ev.type));
        if (reasons) fprintf(out, ",%s", sr_sim_reason(sim));
        fputc('\n', out);
    }
    int rc = 0;
    if (fflush(out) != 0 || ferror(out)) {
        fprintf(stderr, "streamrec simulate: %s: write failed: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    if (out != stdout && fclose(out) != 0) {
        fprintf(stderr, "streamrec simulate: %s: close failed: %s\n", out_path, strerror(errno));
        rc = 1;
    }
    sr_sim_destroy(sim);
    return rc;
}
