/* Wiring of `streamrec serve` (see sr_serve.h): configuration to ranker,
 * API limits, HTTP options and the metrics publishing thread. */
#include "sr_serve.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sr_api.h"
#include "sr_err.h"
#include "sr_http.h"
#include "sr_log.h"
#include "sr_metrics.h"

struct sr_serve_s {
    sr_ranker_t *r;
    int own_ranker;
    sr_api_t *api;
    sr_http_t *http;
    sr_ranker_metrics_t *metrics;
};

sr_serve_t *sr_serve_start_with(const sr_conf_t *conf, sr_ranker_t *r, char *errstr,
                                size_t errstr_size)
{
    sr_serve_t *s = calloc(1, sizeof(*s));
    if (!s) {
        snprintf(errstr, errstr_size, "serve: out of memory");
        return NULL;
    }
    s->r = r;
    sr_api_limits_t lim = {.k_max = (int)sr_conf_int(conf, "ranker.k.max"),
                           .candidates_max = (int)sr_conf_int(conf, "ranker.candidates.max"),
                           .body_max = (size_t)sr_conf_int(conf, "ranker.body.max"),
                           .id_max = (int)sr_conf_int(conf, "ranker.id.max")};
    s->api = sr_api_new(r, &lim);
    if (!s->api) {
        snprintf(errstr, errstr_size, "serve: out of memory");
        goto fail;
    }
    sr_http_opts_t ho = {.listen = sr_conf_str(conf, "http.listen"),
                         .threads = (int)sr_conf_int(conf, "ranker.threads"),
                         .body_max = lim.body_max};
    s->http = sr_http_new(s->api, &ho, errstr, errstr_size);
    if (!s->http) goto fail;
    if (sr_conf_bool(conf, "metrics.enable")) {
        s->metrics = sr_ranker_metrics_start(conf, r, s->api, errstr, errstr_size);
        if (!s->metrics) goto fail;
    }
    return s;
fail:
    sr_serve_stop(s);
    return NULL;
}

sr_serve_t *sr_serve_start(const sr_conf_t *conf, char *errstr, size_t errstr_size)
{
    sr_ranker_t *r = sr_ranker_new(conf, errstr, errstr_size);
    if (!r) return NULL;
    sr_serve_t *s = sr_serve_start_with(conf, r, errstr, errstr_size);
    if (!s) {
        sr_ranker_destroy(r);
        return NULL;
    }
    s->own_ranker = 1;
    return s;
}

int sr_serve_port(const sr_serve_t *s)
{
    return sr_http_port(s->http);
}

void sr_serve_stop(sr_serve_t *s)
{
    if (!s) return;
    sr_http_destroy(s->http);
    sr_ranker_metrics_stop(s->metrics);
    sr_api_destroy(s->api);
    if (s->own_ranker) sr_ranker_destroy(s->r);
    free(s);
}
