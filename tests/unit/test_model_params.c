/* The config table's model.* rows and the model's own defaults must agree:
 * a run configured only by defaults must be the model's default model.  This
 * catches drift when either side changes a default or adds a parameter. */
#include <criterion/criterion.h>
#include <stddef.h>
#include <string.h>

#include "sr_config.h"
#include "sr_err.h"
#include "sr_model.h"

typedef struct apply {
    sr_model_params_t *p;
    int n;
} apply_t;

static int apply(const char *key, const char *value, void *opaque)
{
    apply_t *a = opaque;
    int rc = sr_model_params_set(a->p, key + strlen("model."), value);
    cr_assert_eq(rc, 0,
                 "sr_model_params_set(%s, %s) = %d (%s): the model does not accept the "
                 "config table's row",
                 key, value, rc, sr_strerror(rc));
    a->n++;
    return 0;
}

Test(model_params, every_model_row_is_accepted_and_its_default_matches_the_model)
{
    sr_model_params_t want, got;
    sr_model_params_init(&want);
    sr_model_params_init(&got);
    /* Perturb every field so that a row that is accepted but not applied
     * (or applied to the wrong field) shows up as a difference. */
    memset(&got, 0x5a, sizeof(got));
    sr_conf_t *conf = sr_conf_new();
    apply_t a = {&got, 0};
    sr_conf_foreach(conf, "model.", apply, &a);
    cr_assert_gt(a.n, 0);
    sr_conf_destroy(conf);
    /* Up to the end of the last field: the struct's tail padding is not
     * written by init's memset on got (a new last field moves this). */
    size_t used = offsetof(sr_model_params_t, uniform_neg_items) + sizeof(got.uniform_neg_items);
    cr_assert_eq(memcmp(&want, &got, used), 0,
                 "the model.* defaults in common/config_table.c differ from "
                 "sr_model_params_init, or some model parameter has no table row");
}

static int count_row(const char *key, const char *value, void *opaque)
{
    (void)key;
    (void)value;
    ++*(int *)opaque;
    return 0;
}

Test(model_params, each_model_row_changes_its_parameter)
{
    /* Setting a row to a different in-range value must change the params:
     * catches a row the model accepts but ignores. */
    sr_conf_t *conf = sr_conf_new();
    char errstr[256];
    static const struct {
        const char *key, *value;
    } alt[] = {{"model.dim", "16"},
               {"model.negatives", "2"},
               {"model.lr", "0.1"},
               {"model.l2", "0.001"},
               {"model.clip", "2"},
               {"model.init_std", "0.02"},
               {"model.seed", "7"},
               {"model.weight.view", "2"},
               {"model.weight.click", "3"},
               {"model.weight.cart", "2"},
               {"model.weight.purchase", "2"},
               {"model.weight.impression", "0.5"},
               {"model.weight.rating", "2"},
               {"model.recent_max", "10"},
               {"model.recent_half_life_s", "3600"},
               {"model.pop_half_life_s", "3600"},
               {"model.cooc_window", "5"},
               {"model.cooc_max", "16"},
               {"model.blend_lr", "0.02"},
               {"model.sampler_uniform", "0.3"},
               {"model.blend_sample", "0.5"},
               {"model.cooc_backward", "0.25"},
               {"model.pop_impression", "0.1"},
               {"model.uniform_neg_items", "1"}};
    for (size_t i = 0; i < sizeof(alt) / sizeof(alt[0]); i++) {
        cr_assert_eq(sr_conf_set(conf, alt[i].key, alt[i].value, errstr, sizeof(errstr)), 0, "%s",
                     errstr);
        sr_model_params_t def, p;
        sr_model_params_init(&def);
        sr_model_params_init(&p);
        cr_assert_eq(sr_model_params_set(&p, alt[i].key + 6, alt[i].value), 0, "%s", alt[i].key);
        cr_assert_neq(memcmp(&def, &p, sizeof(p)), 0, "%s=%s changed nothing", alt[i].key,
                      alt[i].value);
    }
    int rows = 0;
    sr_conf_foreach(conf, "model.", count_row, &rows);
    cr_assert_eq((size_t)rows, sizeof(alt) / sizeof(alt[0]),
                 "a model.* row was added: give it an alternative value here");
    sr_conf_destroy(conf);
}
