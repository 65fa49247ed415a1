/* The configuration engine behind sr_config.h: parses and checks values
 * against the property table (config_table.c), layers the sources (default
 * < file < environment < flag), and renders the table as Markdown.  Kept
 * apart from the table so that adding a property never touches this file. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config_table.h"
#include "sr_config.h"
#include "sr_err.h"

typedef struct conf_val {
    char *str; /* the value as set (trimmed); what foreach reports */
    int64_t i;
    double d;
    int b;
    sr_conf_src_t src;
} conf_val_t;

typedef struct conf_kv {
    char *key;
    char *value;
    sr_conf_src_t src;
} conf_kv_t;

struct sr_conf_s {
    conf_val_t *vals; /* one per sr_conf_table row */
    conf_kv_t *pt;    /* kafka.* passthrough, insertion order */
    size_t npt, cappt;
    /* Source recorded by sr_conf_set: the loaders switch it while they
     * apply their layer (a conf is built by one thread). */
    sr_conf_src_t cur_src;
};

#define KAFKA_PREFIX "kafka."
#define ENV_PREFIX "STREAMREC_"

/* Untrusted bytes (a config file may be binary garbage) are echoed in error
 * messages escaped and shortened, so the message stays one clean line. */
static const char *printable(const char *s, char *buf, size_t size)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && o + 8 < size; p++) {
        if (o > 60) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (isprint(*p) && *p != '\\')
            buf[o++] = (char)*p;
        else
            o += (size_t)snprintf(buf + o, size - o, "\\x%02x", *p);
    }
    buf[o] = '\0';
    return buf;
}

static char *dup_trimmed(const char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t len = strlen(s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* ---- value parsing ---- */

static int parse_bool(const char *v, int *out)
{
    static const char *t[] = {"true", "1", "yes", "on"}, *f[] = {"false", "0", "no", "off"};
    for (int k = 0; k < 4; k++) {
        if (strcasecmp(v, t[k]) == 0) return *out = 1, 0;
        if (strcasecmp(v, f[k]) == 0) return *out = 0, 0;
    }
    return -1;
}

static void fmt_num(char *buf, size_t size, sr_conf_type_t type, double x)
{
    if (type == SR_CONF_INT)
        snprintf(buf, size, "%.0f", x);
    else
        snprintf(buf, size, "%g", x);
}

/* Parses v (already trimmed) as prop's type into *out (str untouched) and
 * runs the validator.  errstr gets the reason without the key. */
static int parse_value(const sr_conf_prop_t *prop, const char *v, conf_val_t *out, char *errstr,
                       size_t n)
{
    char pb[128], lo[32], hi[32];
    double x = 0;
    switch (prop->type) {
    case SR_CONF_INT: {
        char *end;
        errno = 0;
        long long i = strtoll(v, &end, 10);
        if (end == v || *end || !*v) {
            snprintf(errstr, n, "expected an integer, got '%s'", printable(v, pb, sizeof(pb)));
            return SR_ERR_PARSE;
        }
        if (errno == ERANGE) {
            snprintf(errstr, n, "'%s' does not fit in 64 bits", printable(v, pb, sizeof(pb)));
            return SR_ERR_RANGE;
        }
        out->i = i;
        x = (double)i;
        break;
    }
    case SR_CONF_DOUBLE: {
        char *end;
        /* strtod also reads hex floats, "inf" and "nan": not numbers a
         * person means in a config file. */
        if (!*v || strspn(v, "0123456789+-.eE") != strlen(v)) {
            snprintf(errstr, n, "expected a number, got '%s'", printable(v, pb, sizeof(pb)));
            return SR_ERR_PARSE;
        }
        errno = 0;
        x = strtod(v, &end);
        if (end == v || *end) {
            snprintf(errstr, n, "expected a number, got '%s'", printable(v, pb, sizeof(pb)));
            return SR_ERR_PARSE;
        }
        if (errno == ERANGE || !isfinite(x)) {
            snprintf(errstr, n, "'%s' is not a finite number in range",
                     printable(v, pb, sizeof(pb)));
            return SR_ERR_RANGE;
        }
        out->d = x;
        break;
    }
    case SR_CONF_BOOL:
        if (parse_bool(v, &out->b) < 0) {
            snprintf(errstr, n, "expected true or false, got '%s'", printable(v, pb, sizeof(pb)));
            return SR_ERR_PARSE;
        }
        break;
    case SR_CONF_STR:
        /* A newline in, say, metrics.instance would corrupt every line
         * format it is later written into. */
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            if (*c < 0x20 || *c == 0x7f) {
                snprintf(errstr, n, "control characters are not allowed");
                return SR_ERR_PARSE;
            }
        break;
    }
    if ((prop->type == SR_CONF_INT || prop->type == SR_CONF_DOUBLE) &&
        (x < prop->min || x > prop->max)) {
        fmt_num(lo, sizeof(lo), prop->type, prop->min);
        fmt_num(hi, sizeof(hi), prop->type, prop->max);
        snprintf(errstr, n, "%s is out of range [%s, %s]", v, lo, hi);
        return SR_ERR_RANGE;
    }
    if (prop->validate) {
        int rc = prop->validate(v, errstr, n);
        if (rc < 0) return rc;
    }
    return 0;
}

/* Levenshtein distance, for "did you mean" on unknown keys. */
static size_t edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64) return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (row[j] + 1 < best) best = row[j] + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static void unknown_key(const char *key, char *errstr, size_t n)
{
    char pb[128];
    size_t best = 3; /* only suggest close matches */
    const char *hint = NULL;
    for (size_t i = 0; i < sr_conf_table_len; i++) {
        size_t d = edit_distance(key, sr_conf_table[i].name);
        if (d < best) best = d, hint = sr_conf_table[i].name;
    }
    if (hint)
        snprintf(errstr, n, "%s: unknown property (did you mean %s?)",
                 printable(key, pb, sizeof(pb)), hint);
    else
        snprintf(errstr, n, "%s: unknown property (see docs/CONFIGURATION.md)",
                 printable(key, pb, sizeof(pb)));
}

static int is_kafka_key(const char *key)
{
    size_t lp = strlen(KAFKA_PREFIX);
    return strncmp(key, KAFKA_PREFIX, lp) == 0 && key[lp] != '\0';
}

/* ---- construction ---- */

sr_conf_t *sr_conf_new(void)
{
    sr_conf_t *conf = calloc(1, sizeof(*conf));
    if (!conf) return NULL;
    conf->cur_src = SR_CONF_SRC_API;
    conf->vals = calloc(sr_conf_table_len, sizeof(*conf->vals));
    if (!conf->vals) {
        free(conf);
        return NULL;
    }
    for (size_t i = 0; i < sr_conf_table_len; i++) {
        char err[256];
        const sr_conf_prop_t *prop = &sr_conf_table[i];
        if (parse_value(prop, prop->def, &conf->vals[i], err, sizeof(err)) < 0) {
            /* A bad default is a bug in config_table.c, found by any test. */
            fprintf(stderr, "config_table.c: default of %s is invalid: %s\n", prop->name, err);
            abort();
        }
        conf->vals[i].str = strdup(prop->def);
        if (!conf->vals[i].str) {
            sr_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

void sr_conf_destroy(sr_conf_t *conf)
{
    if (!conf) return;
    if (conf->vals)
        for (size_t i = 0; i < sr_conf_table_len; i++)
            free(conf->vals[i].str);
    for (size_t i = 0; i < conf->npt; i++) {
        free(conf->pt[i].key);
        free(conf->pt[i].value);
    }
    free(conf->pt);
    free(conf->vals);
    free(conf);
}

static int set_passthrough(sr_conf_t *conf, const char *key, const char *value, char *errstr,
                           size_t n)
{
    char pb[128];
    for (const char *p = key; *p; p++)
        if (!isgraph((unsigned char)*p)) {
            snprintf(errstr, n, "%s: a property name may not hold blanks or control characters",
                     printable(key, pb, sizeof(pb)));
            return SR_ERR_PARSE;
        }
    char *v = dup_trimmed(value);
    if (!v) goto nomem;
    for (size_t i = 0; i < conf->npt; i++)
        if (strcmp(conf->pt[i].key, key) == 0) {
            free(conf->pt[i].value);
            conf->pt[i].value = v;
            conf->pt[i].src = conf->cur_src;
            return 0;
        }
    if (conf->npt == conf->cappt) {
        size_t cap = conf->cappt ? conf->cappt * 2 : 8;
        conf_kv_t *pt = realloc(conf->pt, cap * sizeof(*pt));
        if (!pt) goto nomem_v;
        conf->pt = pt;
        conf->cappt = cap;
    }
    char *k = strdup(key);
    if (!k) goto nomem_v;
    conf->pt[conf->npt].key = k;
    conf->pt[conf->npt].value = v;
    conf->pt[conf->npt].src = conf->cur_src;
    conf->npt++;
    return 0;
nomem_v:
    free(v);
nomem:
    snprintf(errstr, n, "%s: out of memory", key);
    return SR_ERR_NOMEM;
}

int sr_conf_set(sr_conf_t *conf, const char *key, const char *value, char *errstr,
                size_t errstr_size)
{
    char dummy[1];
    if (!errstr || errstr_size == 0) errstr = dummy, errstr_size = sizeof(dummy);
    if (!conf || !key || !value) {
        snprintf(errstr, errstr_size, "sr_conf_set: NULL argument");
        return SR_ERR_INVAL;
    }
    if (is_kafka_key(key)) return set_passthrough(conf, key, value, errstr, errstr_size);
    int idx = sr_conf_table_find(key);
    if (idx < 0) {
        unknown_key(key, errstr, errstr_size);
        return SR_ERR_NOTFOUND;
    }
    char *v = dup_trimmed(value);
    if (!v) {
        snprintf(errstr, errstr_size, "%s: out of memory", key);
        return SR_ERR_NOMEM;
    }
    conf_val_t tmp = {0};
    char why[256];
    int rc = parse_value(&sr_conf_table[idx], v, &tmp, why, sizeof(why));
    if (rc < 0) {
        snprintf(errstr, errstr_size, "%s: %s", key, why);
        free(v);
        return rc;
    }
    if (sr_conf_table[idx].type == SR_CONF_INT) {
        /* One spelling per integer ("+010" is 10), so consumers that parse
         * the string again (sr_model_params_set reads octal) agree. */
        char canon[32];
        snprintf(canon, sizeof(canon), "%lld", (long long)tmp.i);
        char *c = strdup(canon);
        if (!c) {
            free(v);
            snprintf(errstr, errstr_size, "%s: out of memory", key);
            return SR_ERR_NOMEM;
        }
        free(v);
        v = c;
    }
    free(conf->vals[idx].str);
    tmp.str = v;
    tmp.src = conf->cur_src;
    conf->vals[idx] = tmp;
    return 0;
}

/* ---- config files ---- */

#define LINE_MAX_BYTES 8192

/* Reads one line (without its newline) into buf.  Returns its length, -1
 * at EOF, -2 when the line is longer than the buffer (the rest of it is
 * consumed), -3 when it holds a NUL byte. */
static long read_line(FILE *f, char *buf, size_t size)
{
    size_t len = 0;
    int c, nul = 0, saw = 0;
    while ((c = getc(f)) != EOF) {
        saw = 1;
        if (c == '\n') break;
        if (c == '\0') nul = 1;
        if (len + 1 < size) buf[len] = (char)c;
        len++;
    }
    if (!saw) return -1;
    if (len + 1 > size) return -2;
    buf[len] = '\0';
    if (nul) return -3;
    return (long)len;
}

int sr_conf_load_file(sr_conf_t *conf, const char *path, char *errstr, size_t errstr_size)
{
    char dummy[1];
    if (!errstr || errstr_size == 0) errstr = dummy, errstr_size = sizeof(dummy);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errstr, errstr_size, "%s: cannot open: %s", path, strerror(errno));
        return SR_ERR_IO;
    }
    char *line = malloc(LINE_MAX_BYTES);
    if (!line) {
        fclose(f);
        snprintf(errstr, errstr_size, "%s: out of memory", path);
        return SR_ERR_NOMEM;
    }
    int rc = 0;
    long len;
    for (long lineno = 1; (len = read_line(f, line, LINE_MAX_BYTES)) != -1; lineno++) {
        if (len == -2) {
            snprintf(errstr, errstr_size, "%s:%ld: line longer than %d bytes", path, lineno,
                     LINE_MAX_BYTES - 1);
            rc = SR_ERR_PARSE;
            break;
        }
        if (len == -3) {
            snprintf(errstr, errstr_size, "%s:%ld: NUL byte in line (not a text file?)", path,
                     lineno);
            rc = SR_ERR_PARSE;
            break;
        }
        char *p = line;
        while (isspace((unsigned char)*p))
            p++;
        if (*p == '\0' || *p == '#') continue;
        char *eq = strchr(p, '=');
        char pb[128];
        if (!eq) {
            snprintf(errstr, errstr_size, "%s:%ld: expected 'key = value', got '%s'", path, lineno,
                     printable(p, pb, sizeof(pb)));
            rc = SR_ERR_PARSE;
            break;
        }
        char *kend = eq;
        while (kend > p && isspace((unsigned char)kend[-1]))
            kend--;
        *kend = '\0';
        if (kend == p) {
            snprintf(errstr, errstr_size, "%s:%ld: missing key before '='", path, lineno);
            rc = SR_ERR_PARSE;
            break;
        }
        char *v = eq + 1;
        while (isspace((unsigned char)*v))
            v++;
        size_t vl = strlen(v);
        while (vl > 0 && isspace((unsigned char)v[vl - 1]))
            v[--vl] = '\0';
        /* Quotes only make empty or blank-edged values visible. */
        if (vl >= 2 && v[0] == '"' && v[vl - 1] == '"') {
            v[vl - 1] = '\0';
            v++;
        }
        char why[512];
        sr_conf_src_t saved = conf->cur_src;
        conf->cur_src = SR_CONF_SRC_FILE;
        rc = sr_conf_set(conf, p, v, why, sizeof(why));
        conf->cur_src = saved;
        if (rc < 0) {
            snprintf(errstr, errstr_size, "%s:%ld: %s", path, lineno, why);
            break;
        }
    }
    if (rc == 0 && ferror(f)) {
        snprintf(errstr, errstr_size, "%s: read error: %s", path, strerror(errno));
        rc = SR_ERR_IO;
    }
    free(line);
    fclose(f);
    return rc;
}

/* ---- environment ---- */

int sr_conf_env_reserved(const char *name)
{
    static const char *reserved[] = {"STREAMREC_BIN"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (strcmp(name, reserved[i]) == 0) return 1;
    return 0;
}

int sr_conf_env_name(const char *key, char *buf, size_t size)
{
    size_t lp = strlen(ENV_PREFIX), lk = strlen(key);
    if (lp + lk + 1 > size) return SR_ERR_RANGE;
    memcpy(buf, ENV_PREFIX, lp);
    for (size_t i = 0; i < lk; i++) {
        char c = key[i];
        buf[lp + i] = (c == '.' || c == '-') ? '_' : (char)toupper((unsigned char)c);
    }
    buf[lp + lk] = '\0';
    return 0;
}

int sr_conf_load_env(sr_conf_t *conf, char *const *envp, char *errstr, size_t errstr_size)
{
    char dummy[1];
    if (!errstr || errstr_size == 0) errstr = dummy, errstr_size = sizeof(dummy);
    if (!envp) return 0;
    size_t lp = strlen(ENV_PREFIX), lk = strlen(ENV_PREFIX "KAFKA_");
    for (char *const *e = envp; *e; e++) {
        const char *eq = strchr(*e, '=');
        if (!eq || strncmp(*e, ENV_PREFIX, lp) != 0) continue;
        char name[256], key[256], pb[128];
        size_t nl = (size_t)(eq - *e);
        if (nl >= sizeof(name)) {
            memcpy(name, *e, 40);
            name[40] = '\0';
            snprintf(errstr, errstr_size, "environment: variable name too long: %s...",
                     printable(name, pb, sizeof(pb)));
            return SR_ERR_NOTFOUND;
        }
        memcpy(name, *e, nl);
        name[nl] = '\0';
        if (sr_conf_env_reserved(name)) continue;
        key[0] = '\0';
        if (strncmp(name, ENV_PREFIX "KAFKA_", lk) == 0 && name[lk]) {
            /* librdkafka names use dots only, so the mapping is unambiguous. */
            size_t o = strlen(KAFKA_PREFIX);
            memcpy(key, KAFKA_PREFIX, o);
            for (const char *p = name + lk; *p; p++)
                key[o++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
            key[o] = '\0';
        } else {
            char env[256];
            for (size_t i = 0; i < sr_conf_table_len; i++)
                if (sr_conf_env_name(sr_conf_table[i].name, env, sizeof(env)) == 0 &&
                    strcmp(env, name) == 0) {
                    snprintf(key, sizeof(key), "%s", sr_conf_table[i].name);
                    break;
                }
        }
        if (!key[0]) {
            snprintf(errstr, errstr_size,
                     "environment: %s matches no property (see docs/CONFIGURATION.md)",
                     printable(name, pb, sizeof(pb)));
            return SR_ERR_NOTFOUND;
        }
        char why[512];
        sr_conf_src_t saved = conf->cur_src;
        conf->cur_src = SR_CONF_SRC_ENV;
        int rc = sr_conf_set(conf, key, eq + 1, why, sizeof(why));
        conf->cur_src = saved;
        if (rc < 0) {
            snprintf(errstr, errstr_size, "environment %s: %s", name, why);
            return rc;
        }
    }
    return 0;
}

/* ---- finalize, arguments ---- */

int sr_conf_finalize(const sr_conf_t *conf, char *errstr, size_t errstr_size)
{
    char dummy[1];
    if (!errstr || errstr_size == 0) errstr = dummy, errstr_size = sizeof(dummy);
    for (size_t i = 0; i < sr_conf_checks_len; i++) {
        int rc = sr_conf_checks[i](conf, errstr, errstr_size);
        if (rc < 0) return rc;
    }
    return 0;
}

int sr_conf_from_args(sr_conf_t *conf, int *argc, char **argv, char *const *envp, char *errstr,
                      size_t errstr_size)
{
    char dummy[1];
    if (!errstr || errstr_size == 0) errstr = dummy, errstr_size = sizeof(dummy);
    int n = *argc, out = 1, rc = 0;
    const char **files = calloc((size_t)n + 1, sizeof(*files));
    const char **flags = calloc((size_t)n + 1, sizeof(*flags));
    size_t nf = 0, nx = 0;
    if (!files || !flags) {
        snprintf(errstr, errstr_size, "out of memory");
        rc = SR_ERR_NOMEM;
        goto done;
    }
    int i = 1;
    for (; i < n; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) break;
        if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0 || strcmp(a, "-X") == 0) {
            if (i + 1 >= n) {
                snprintf(errstr, errstr_size, "%s needs a value (%s)", a,
                         a[1] == 'X' ? "-X key=value" : "-c FILE");
                rc = SR_ERR_INVAL;
                goto done;
            }
            if (a[1] == 'X')
                flags[nx++] = argv[++i];
            else
                files[nf++] = argv[++i];
        } else if (strncmp(a, "--config=", 9) == 0) {
            files[nf++] = a + 9;
        } else if (strncmp(a, "-X", 2) == 0 && a[2]) {
            flags[nx++] = a + 2;
        } else {
            argv[out++] = argv[i];
        }
    }
    for (; i < n; i++)
        argv[out++] = argv[i];
    argv[out] = NULL;
    *argc = out;

    for (size_t k = 0; k < nf; k++)
        if ((rc = sr_conf_load_file(conf, files[k], errstr, errstr_size)) < 0) goto done;
    if ((rc = sr_conf_load_env(conf, envp, errstr, errstr_size)) < 0) goto done;
    for (size_t k = 0; k < nx; k++) {
        const char *eq = strchr(flags[k], '=');
        char pb[128], key[256], why[512];
        size_t kl = eq ? (size_t)(eq - flags[k]) : 0;
        if (!eq || kl == 0 || kl >= sizeof(key)) {
            snprintf(errstr, errstr_size, "-X expects key=value, got '%s'",
                     printable(flags[k], pb, sizeof(pb)));
            rc = SR_ERR_INVAL;
            goto done;
        }
        memcpy(key, flags[k], kl);
        key[kl] = '\0';
        conf->cur_src = SR_CONF_SRC_FLAG;
        rc = sr_conf_set(conf, key, eq + 1, why, sizeof(why));
        conf->cur_src = SR_CONF_SRC_API;
        if (rc < 0) {
            snprintf(errstr, errstr_size, "-X %s", why);
            goto done;
        }
    }
    rc = sr_conf_finalize(conf, errstr, errstr_size);
done:
    free(files);
    free(flags);
    return rc;
}

/* ---- getters ---- */

sr_conf_src_t sr_conf_source(const sr_conf_t *conf, const char *key)
{
    if (is_kafka_key(key)) {
        for (size_t i = 0; i < conf->npt; i++)
            if (strcmp(conf->pt[i].key, key) == 0) return conf->pt[i].src;
        return SR_CONF_SRC_DEFAULT;
    }
    int idx = sr_conf_table_find(key);
    return idx < 0 ? SR_CONF_SRC_DEFAULT : conf->vals[idx].src;
}

const char *sr_conf_src_name(sr_conf_src_t src)
{
    static const char *names[] = {"default", "file", "env", "flag", "api"};
    return (unsigned)src < sizeof(names) / sizeof(names[0]) ? names[src] : "?";
}

static int must_find(const char *key, sr_conf_type_t type)
{
    int idx = sr_conf_table_find(key);
    if (idx < 0 || sr_conf_table[idx].type != type) {
        fprintf(stderr, "sr_conf: %s is %s (programming error)\n", key,
                idx < 0 ? "not in the property table" : "read with the wrong type");
        abort();
    }
    return idx;
}

const char *sr_conf_str(const sr_conf_t *conf, const char *key)
{
    if (is_kafka_key(key)) {
        for (size_t i = 0; i < conf->npt; i++)
            if (strcmp(conf->pt[i].key, key) == 0) return conf->pt[i].value;
        return NULL;
    }
    return conf->vals[must_find(key, SR_CONF_STR)].str;
}

int64_t sr_conf_int(const sr_conf_t *conf, const char *key)
{
    return conf->vals[must_find(key, SR_CONF_INT)].i;
}

double sr_conf_double(const sr_conf_t *conf, const char *key)
{
    return conf->vals[must_find(key, SR_CONF_DOUBLE)].d;
}

int sr_conf_bool(const sr_conf_t *conf, const char *key)
{
    return conf->vals[must_find(key, SR_CONF_BOOL)].b;
}

int sr_conf_foreach(const sr_conf_t *conf, const char *prefix,
                    int (*cb)(const char *key, const char *value, void *opaque), void *opaque)
{
    size_t lp = prefix ? strlen(prefix) : 0;
    for (size_t i = 0; i < sr_conf_table_len; i++) {
        if (lp && strncmp(sr_conf_table[i].name, prefix, lp) != 0) continue;
        int rc = cb(sr_conf_table[i].name, conf->vals[i].str, opaque);
        if (rc) return rc;
    }
    for (size_t i = 0; i < conf->npt; i++) {
        if (lp && strncmp(conf->pt[i].key, prefix, lp) != 0) continue;
        int rc = cb(conf->pt[i].key, conf->pt[i].value, opaque);
        if (rc) return rc;
    }
    return 0;
}
