/* docs/API.md stays true: every ```http request in it is run through the
 * ranker's API (sr_api_handle, the server's code path without the socket)
 * against the fixture the document describes, and the response must match
 * the ```json status=NNN block that follows it (took_us may differ, numbers
 * within 1e-4).  SR_API_DOC_UPDATE=1 rewrites the responses in place after
 * an intended change. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sr_api.h"
#include "sr_err.h"
#include "sr_ranker.h"

#define DIM 4
#define NOW_MS 1700000000000LL

static int64_t fixed_now(void *opaque)
{
    (void)opaque;
    return NOW_MS;
}

static int fixture_user(void *opaque, const char *user, size_t len, sr_ranker_user_t *out)
{
    (void)opaque;
    if (len != 5 || memcmp(user, "alice", 5) != 0) return 0;
    static const float vec[DIM] = {1, 0, 0, 0.2f};
    out->found = 1;
    out->has_vec = 1;
    memcpy(out->vec, vec, sizeof vec);
    out->recent[0] = (sr_ranker_recent_t){
        .num = -1, .id = "shoe-1", .id_len = 6, .ts_ms = NOW_MS - 600000, .type = SR_RANKER_VIEW};
    out->recent[1] = (sr_ranker_recent_t){.num = -1,
                                          .id = "shoe-2",
                                          .id_len = 6,
                                          .ts_ms = NOW_MS - 300000,
                                          .type = SR_RANKER_PURCHASE};
    out->n_recent = 2;
    out->events = 2;
    return 0;
}

static sr_ranker_t *fixture(void)
{
    sr_ranker_opts_t o;
    sr_ranker_opts_init(&o);
    o.dim = DIM;
    o.get_user = fixture_user;
    o.now_ms = fixed_now;
    char err[256];
    sr_ranker_t *r = sr_ranker_new_custom(&o, err, sizeof err);
    cr_assert_not_null(r, "%s", err);
    const char *ids[] = {"shoe-1", "shoe-2", "shoe-3", "book-1", "book-2", "hat"};
    size_t lens[6];
    for (int i = 0; i < 6; i++)
        lens[i] = strlen(ids[i]);
    const float vecs[6 * DIM] = {3,  0.3f, 0,    0, 2.7f,  0.6f, 0,    0, 3, -0.3f, 0, 0,
                                 -3, 0,    0.3f, 0, -2.7f, 0,    0.6f, 0, 0, 0,     0, 3};
    const float bias[6] = {0.1f, 0.2f, 0.1f, 0.0f, 0.1f, 0.3f};
    const float pop[6] = {8, 6, 2, 4, 3, 50};
    cr_assert_eq(sr_ranker_upsert_items(r, ids, lens, 6, vecs, bias, pop), 0);
    return r;
}

/* Same JSON, numbers within tolerance, took_us anything. */
static int json_close(json_t *want, json_t *got, const char *key)
{
    if (key && strcmp(key, "took_us") == 0) return json_is_integer(got);
    if (json_is_number(want)) {
        if (!json_is_number(got)) return 0;
        double a = json_number_value(want), b = json_number_value(got);
        return fabs(a - b) <= 1e-4 * (1 + fabs(a));
    }
    if (json_is_object(want)) {
        if (!json_is_object(got) || json_object_size(want) != json_object_size(got)) return 0;
        const char *k;
        json_t *v;
        json_object_foreach(want, k, v)
        {
            json_t *g = json_object_get(got, k);
            if (!g || !json_close(v, g, k)) return 0;
        }
        return 1;
    }
    if (json_is_array(want)) {
        if (!json_is_array(got) || json_array_size(want) != json_array_size(got)) return 0;
        for (size_t i = 0; i < json_array_size(want); i++)
            if (!json_close(json_array_get(want, i), json_array_get(got, i), NULL)) return 0;
        return 1;
    }
    return json_equal(want, got);
}

typedef struct lines {
    char **l;
    size_t n, cap;
} lines_t;

static void push(lines_t *ls, const char *s)
{
    if (ls->n == ls->cap) {
        ls->cap = ls->cap ? ls->cap * 2 : 256;
        ls->l = realloc(ls->l, ls->cap * sizeof(*ls->l));
    }
    ls->l[ls->n++] = strdup(s);
}

static lines_t read_lines(const char *path)
{
    lines_t ls = {0};
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) >= 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
            line[--n] = 0;
        push(&ls, line);
    }
    free(line);
    fclose(f);
    return ls;
}

/* Runs "METHOD TARGET" (+ body) through the API. */
static void run(sr_api_t *a, const char *reqline, const char *body, sr_api_response_t *resp)
{
    char method[16], target[2048];
    cr_assert_eq(sscanf(reqline, "%15s %2047s", method, target), 2, "request line: %s", reqline);
    char *q = strchr(target, '?');
    sr_api_param_t params[16];
    int np = 0;
    if (q) {
        *q++ = 0;
        np = sr_api_parse_query(q, params, 16);
        cr_assert_geq(np, 0);
    }
    sr_api_request_t req = {.method = method,
                            .path = target,
                            .params = params,
                            .n_params = (size_t)np,
                            .body = body,
                            .body_len = body ? strlen(body) : 0};
    sr_api_handle(a, &req, resp);
}

Test(api_doc, every_example_in_api_md_is_what_the_ranker_answers)
{
    const char *path = SR_SOURCE_DIR "/docs/API.md";
    int update = getenv("SR_API_DOC_UPDATE") != NULL;
    lines_t ls = read_lines(path);
    lines_t out = {0};
    sr_ranker_t *r = fixture();
    sr_api_limits_t lim = {
        .k_max = 1000, .candidates_max = 1000, .body_max = 1048576, .id_max = 128};
    sr_api_t *a = sr_api_new(r, &lim);
    int examples = 0, mismatches = 0;
    for (size_t i = 0; i < ls.n; i++) {
        push(&out, ls.l[i]);
        if (strcmp(ls.l[i], "```http") != 0) continue;
        /* request block */
        size_t j = i + 1;
        cr_assert_lt(j, ls.n);
        const char *reqline = ls.l[j];
        char body[8192] = "";
        int in_body = 0;
        for (j = i + 1; j < ls.n && strcmp(ls.l[j], "```") != 0; j++) {
            push(&out, ls.l[j]);
            if (j == i + 1) continue;
            if (!in_body && ls.l[j][0] == 0) {
                in_body = 1;
                continue;
            }
            if (in_body) {
                if (body[0]) strcat(body, "\n");
                strncat(body, ls.l[j], sizeof(body) - strlen(body) - 1);
            }
        }
        cr_assert_lt(j, ls.n, "unterminated http block");
        push(&out, ls.l[j]); /* ``` */
        /* blank lines, then the response block */
        size_t k = j + 1;
        while (k < ls.n && ls.l[k][0] == 0)
            push(&out, ls.l[k++]);
        int want_status = 0;
        cr_assert(k < ls.n && sscanf(ls.l[k], "```json status=%d", &want_status) == 1,
                  "%s: a ```json status=NNN block must follow", reqline);
        push(&out, ls.l[k]);
        char want_text[16384] = "";
        size_t e = k + 1;
        for (; e < ls.n && strcmp(ls.l[e], "```") != 0; e++) {
            strncat(want_text, ls.l[e], sizeof(want_text) - strlen(want_text) - 2);
            strcat(want_text, "\n");
        }
        cr_assert_lt(e, ls.n, "unterminated json block");
        sr_api_response_t resp;
        run(a, reqline, in_body ? body : NULL, &resp);
        json_error_t jerr;
        json_t *got = json_loadb(resp.body, resp.body_len, 0, &jerr);
        cr_assert_not_null(got, "%s: response is JSON", reqline);
        json_t *want = json_loads(want_text, 0, &jerr);
        int ok = want && resp.status == want_status && json_close(want, got, NULL);
        examples++;
        if (!ok) {
            mismatches++;
            if (!update)
                cr_log_error("%s: docs say %d %s\nranker answers %d %.*s", reqline, want_status,
                             want_text, resp.status, (int)resp.body_len, resp.body);
        }
        if (update) {
            out.n--; /* the ```json line, rewritten with the real status */
            char head[64];
            snprintf(head, sizeof head, "```json status=%d", resp.status);
            push(&out, head);
            char *pretty = json_dumps(got, JSON_INDENT(2) | JSON_REAL_PRECISION(6));
            char *save, *line = strtok_r(pretty, "\n", &save);
            for (; line; line = strtok_r(NULL, "\n", &save))
                push(&out, line);
            free(pretty);
        } else {
            for (size_t t = k + 1; t < e; t++)
                push(&out, ls.l[t]);
        }
        push(&out, ls.l[e]);
        json_decref(want);
        json_decref(got);
        sr_api_response_free(&resp);
        i = e;
    }
    if (update) {
        FILE *f = fopen(path, "w");
        cr_assert_not_null(f);
        for (size_t i = 0; i < out.n; i++)
            fprintf(f, "%s\n", out.l[i]);
        fclose(f);
    }
    cr_assert_geq(examples, 12, "API.md holds its examples (found %d)", examples);
    cr_assert_eq(mismatches, 0, "%d examples in docs/API.md differ from the ranker's answers%s",
                 mismatches, update ? " (rewritten now)" : "; SR_API_DOC_UPDATE=1 rewrites them");
    for (size_t i = 0; i < ls.n; i++)
        free(ls.l[i]);
    for (size_t i = 0; i < out.n; i++)
        free(out.l[i]);
    free(ls.l);
    free(out.l);
    sr_api_destroy(a);
    sr_ranker_destroy(r);
}
