/* `streamrec eval`: streams an event log CSV line by line into the
 * prequential evaluator (model/sr_eval.h) and prints its report, as one
 * JSON object (--json) or a table.  Only option parsing, file reading and
 * output live here; ranking, learning and metrics are in the library. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cmd_util.h"
#include "sr_cmd.h"
#include "sr_err.h"
#include "sr_eval.h"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: streamrec eval --data FILE [--protocol discovery|all] [--every N] [--k K]\n"
            "                      [--models LIST] [--json] [-c FILE] [-X model.key=value]...\n"
            "\n"
            "Prequential (test-then-train) evaluation of the streamrec model and the\n"
            "baselines pop, pop-decay, recency and cooc on an event log CSV\n"
            "(`ts_ms,user,item,event`), in one pass over the file.\n"
            "\n"
            "  --data FILE      the event log ('-' for stdin)\n"
            "  --protocol P     discovery (default: new user-item pairs, the user's earlier\n"
            "                   items excluded) or all (every event, nothing excluded)\n"
            "  --every N        evaluate every N-th eligible event (default 1)\n"
            "  --k K            list length for HR@K and NDCG@K (default 10)\n"
            "  --models LIST    comma-separated subset of streamrec,pop,pop-decay,recency,cooc\n"
            "  --json           print one JSON object instead of a table and progress bar\n"
            "  model.* properties (-c / -X / STREAMREC_MODEL_*) configure the streamrec model.\n");
}

static int parse_models(const char *list, uint32_t *out)
{
    uint32_t mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = 0;
        for (int m = 0; m < SR_EVAL_NMODELS; m++) {
            const char *name = sr_eval_model_name(m);
            if (strlen(name) == n && strncmp(p, name, n) == 0) {
                mask |= 1u << m;
                found = 1;
            }
        }
        if (!found) {
            fprintf(stderr, "streamrec eval: --models: unknown model '%.*s'\n", (int)n, p);
            return -1;
        }
        p += n;
        if (*p == ',') p++;
    }
    if (!mask) {
        fprintf(stderr, "streamrec eval: --models: empty list\n");
        return -1;
    }
    *out = mask;
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void progress(double frac, uint64_t events, uint64_t evaluated)
{
    int width = 30, fill = (int)(frac * width + 0.5);
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    fprintf(stderr, "\r[%s] %5.1f%%  %" PRIu64 " events, %" PRIu64 " evaluated", bar, frac * 100,
            events, evaluated);
}

static void print_json(const sr_eval_report_t *r, uint64_t bad_lines, double seconds)
{
    json_t *root = json_object(), *models = json_object();
    json_object_set_new(root, "protocol", json_string(sr_eval_protocol_name(r->protocol)));
    json_object_set_new(root, "events", json_integer((json_int_t)r->events));
    json_object_set_new(root, "evaluated", json_integer((json_int_t)r->evaluated));
    json_object_set_new(root, "k", json_integer(r->k));
    for (int m = 0; m < SR_EVAL_NMODELS; m++) {
        if (!(r->models & (1u << m))) continue;
        const sr_eval_metrics_t *x = &r->m[m];
        json_object_set_new(models, sr_eval_model_name(m),
                            json_pack("{s:f,s:f,s:f,s:f,s:f}", "hr", x->hr, "ndcg", x->ndcg, "mrr",
                                      x->mrr, "coverage", x->coverage, "novelty", x->novelty));
    }
    json_object_set_new(root, "models", models);
    json_object_set_new(root, "seconds", json_real(seconds));
    json_object_set_new(root, "bad_lines", json_integer((json_int_t)bad_lines));
    json_object_set_new(root, "every", json_integer(r->every));
    json_object_set_new(root, "eligible", json_integer((json_int_t)r->eligible));
    json_object_set_new(root, "misses", json_integer((json_int_t)r->misses));
    json_object_set_new(root, "users", json_integer(r->users));
    json_object_set_new(root, "items", json_integer(r->items));
    json_object_set_new(root, "model_errors", json_integer((json_int_t)r->model_errors));
    char *s = json_dumps(root, JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(6));
    if (s) puts(s);
    free(s);
    json_decref(root);
}

static void print_table(const sr_eval_report_t *r, uint64_t bad_lines, double seconds)
{
    printf("protocol %s, every %u, k %u: %" PRIu64 " events (%" PRIu64 " bad lines), %" PRIu64
           " eligible, %" PRIu64 " evaluated (%" PRIu64
           " unseen items), %u users, %u items, %.2f s\n\n",
           sr_eval_protocol_name(r->protocol), r->every, r->k, r->events, bad_lines, r->eligible,
           r->evaluated, r->misses, r->users, r->items, seconds);
    char hr[16], nd[16];
    snprintf(hr, sizeof(hr), "HR@%u", r->k);
    snprintf(nd, sizeof(nd), "NDCG@%u", r->k);
    printf("%-10s %8s %8s %8s %9s %8s\n", "model", hr, nd, "MRR", "coverage", "novelty");
    for (int m = 0; m < SR_EVAL_NMODELS; m++) {
        if (!(r->models & (1u << m))) continue;
        const sr_eval_metrics_t *x = &r->m[m];
        printf("%-10s %8.4f %8.4f %8.4f %9.4f %8.3f\n", sr_eval_model_name(m), x->hr, x->ndcg,
               x->mrr, x->coverage, x->novelty);
    }
    if (r->model_errors) printf("\nstreamrec model refused %" PRIu64 " events\n", r->model_errors);
}

int sr_cmd_eval(int argc, char **argv)
{
    char errstr[1024];
    int status;
    sr_conf_t *conf = sr_cmd_begin(&argc, argv, usage, &status);
    if (!conf) return status;
    sr_eval_params_t ep;
    sr_eval_params_init(&ep);
    const char *data = NULL;
    int json = 0, rc = 2;
    long long v;
    for (int i = 1; i < argc; i++) {
        const char *val;
        int m;
        if ((m = sr_cmd_opt(argc, argv, &i, "--data", &val)) > 0) {
            data = val;
        } else if (m == 0 && (m = sr_cmd_opt(argc, argv, &i, "--protocol", &val)) > 0) {
            if (sr_eval_protocol_parse(val, &ep.protocol)) {
                fprintf(stderr, "streamrec eval: --protocol: 'discovery' or 'all', not '%s'\n",
                        val);
                goto out;
            }
        } else if (m == 0 && (m = sr_cmd_opt(argc, argv, &i, "--every", &val)) > 0) {
            if (sr_cmd_opt_int("eval", "--every", val, 1, UINT32_MAX, &v)) goto out;
            ep.every = (uint32_t)v;
        } else if (m == 0 && (m = sr_cmd_opt(argc, argv, &i, "--k", &val)) > 0) {
            if (sr_cmd_opt_int("eval", "--k", val, 1, 100000, &v)) goto out;
            ep.k = (uint32_t)v;
        } else if (m == 0 && (m = sr_cmd_opt(argc, argv, &i, "--models", &val)) > 0) {
            if (parse_models(val, &ep.models)) goto out;
        } else if (m == 0 && strcmp(argv[i], "--json") == 0) {
            json = 1;
        } else if (m == 0) {
            fprintf(stderr, "streamrec eval: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            goto out;
        }
        if (m < 0) goto out;
    }
    if (!data) {
        fprintf(stderr, "streamrec eval: --data FILE is required\n");
        usage(stderr);
        goto out;
    }
    if (sr_cmd_model_params(conf, &ep.model, errstr, sizeof(errstr)) < 0) {
        fprintf(stderr, "streamrec eval: %s\n", errstr);
        goto out;
    }

    FILE *in = strcmp(data, "-") == 0 ? stdin : fopen(data, "r");
    if (!in) {
        fprintf(stderr, "streamrec eval: %s: %s\n", data, strerror(errno));
        rc = 1;
        goto out;
    }
    struct stat st;
    double size = fstat(fileno(in), &st) == 0 && S_ISREG(st.st_mode) ? (double)st.st_size : 0;
    sr_eval_t *ev = sr_eval_new(&ep, errstr, sizeof(errstr));
    if (!ev) {
        fprintf(stderr, "streamrec eval: %s\n", errstr);
        if (in != stdin) fclose(in);
        goto out;
    }

    double t0 = now_s(), last_draw = 0;
    int draw = !json;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    uint64_t lineno = 0, bad = 0, bytes = 0;
    rc = 0;
    while ((len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        bytes += (uint64_t)len;
        sr_event_t e;
        char why[256];
        int prc = sr_csv_parse_line(line, (size_t)len, &e, why, sizeof(why));
        if (prc == SR_ERR_EXISTS) continue; /* the header */
        if (prc < 0) {
            bad++;
            fprintf(stderr, "%sstreamrec eval: %s:%" PRIu64 ": %s (line skipped)\n",
                    draw ? "\r\033[K" : "", data, lineno, why);
            continue;
        }
        int frc = sr_eval_feed(ev, &e);
        if (frc == SR_ERR_NOMEM) {
            fprintf(stderr, "streamrec eval: out of memory at %s:%" PRIu64 "\n", data, lineno);
            rc = 1;
            break;
        }
        if (frc < 0) {
            bad++;
            fprintf(stderr, "streamrec eval: %s:%" PRIu64 ": %s (line skipped)\n", data, lineno,
                    sr_strerror(frc));
        }
        if (draw && (lineno & 1023) == 0) {
            double t = now_s();
            if (t - last_draw > 0.25) {
                sr_eval_report_t r;
                sr_eval_report(ev, &r);
                progress(size > 0 ? (double)bytes / size : 0, r.events, r.evaluated);
                last_draw = t;
            }
        }
    }
    if (ferror(in)) {
        fprintf(stderr, "streamrec eval: %s: read error: %s\n", data, strerror(errno));
        rc = 1;
    }
    free(line);
    if (in != stdin) fclose(in);
    double seconds = now_s() - t0;
    sr_eval_report_t r;
    sr_eval_report(ev, &r);
    if (draw) {
        progress(1.0, r.events, r.evaluated);
        fputc('\n', stderr);
    }
    if (json)
        print_json(&r, bad, seconds);
    else
        print_table(&r, bad, seconds);
    if (fflush(stdout) != 0) rc = 1;
    sr_eval_destroy(ev);
out:
    sr_conf_destroy(conf);
    return rc;
}
