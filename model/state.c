/* Model state export/import and dirty tracking (contract in
 * sr_model_state.h): what the trainer writes to Redis after every flush
 * and reads back after a restart.  Imports validate everything before they
 * change anything, because their input comes from outside the process. */
#include <math.h>
#include <string.h>

#include "model_impl.h"
#include "sr_err.h"

size_t sr_model_dirty_users(const sr_model_t *m, const uint32_t **idx)
{
    *idx = m->dirty_u;
    return m->n_dirty_u;
}

size_t sr_model_dirty_items(const sr_model_t *m, const uint32_t **idx)
{
    *idx = m->dirty_i;
    return m->n_dirty_i;
}

void sr_model_clear_dirty(sr_model_t *m)
{
    for (uint32_t k = 0; k < m->n_dirty_u; k++)
        m->u_dirty[m->dirty_u[k]] = 0;
    for (uint32_t k = 0; k < m->n_dirty_i; k++)
        m->i_dirty[m->dirty_i[k]] = 0;
    m->n_dirty_u = m->n_dirty_i = 0;
}

int sr_model_export_user(const sr_model_t *m, uint32_t user, sr_user_state_t *out)
{
    if (user >= m->n_users) return SR_ERR_RANGE;
    out->id = sr_idtable_id(m->uid, user, &out->id_len);
    out->dim = m->dim;
    out->vec = m->P + (size_t)user * m->dim;
    out->acc = m->p_acc[user];
    out->events = m->u_events[user];
    out->last_ts_ms = m->u_last[user];
    out->n_recent = m->rec_n[user];
    const sr_score_recent_t *r = m->rec + (size_t)user * (size_t)m->p.recent_max;
    for (size_t k = 0; k < out->n_recent; k++) {
        out->recent[k].item = sr_idtable_id(m->iid, (uint32_t)r[k].item, &out->recent[k].item_len);
        out->recent[k].index = (uint32_t)r[k].item;
        out->recent[k].ts_ms = r[k].ts_ms;
        out->recent[k].type = (sr_event_type_t)r[k].type;
    }
    return 0;
}

static double pop_decay(const sr_model_t *m)
{
    return exp2(-(double)(m->clock_ms - m->pop_ref_ms) / (1000.0 * m->p.pop_half_life_s));
}

static int export_item(const sr_model_t *m, uint32_t item, sr_item_state_t *out, int nbrs)
{
    if (item >= m->n_items) return SR_ERR_RANGE;
    out->id = sr_idtable_id(m->iid, item, &out->id_len);
    out->index = item;
    out->dim = m->dim;
    out->vec = m->Q + (size_t)item * m->dim;
    out->acc = m->q_acc[item];
    out->bias = m->b[item];
    out->bias_acc = m->b_acc[item];
    out->pop_scaled = m->pop[item];
    out->pop = m->pop[item] * pop_decay(m);
    out->count = m->cnt[item];
    out->n_nbrs = nbrs ? m->nbr_n[item] : 0;
    const sr_score_nbr_t *nb = sr_model_nbr_(m, item);
    for (size_t k = 0; k < out->n_nbrs; k++) {
        out->nbrs[k].item = sr_idtable_id(m->iid, (uint32_t)nb[k].item, &out->nbrs[k].item_len);
        out->nbrs[k].count = nb[k].count;
    }
    return 0;
}

int sr_model_export_item(const sr_model_t *m, uint32_t item, sr_item_state_t *out)
{
    return export_item(m, item, out, 1);
}

int sr_model_export_item_vec(const sr_model_t *m, uint32_t item, sr_item_state_t *out)
{
    return export_item(m, item, out, 0);
}

void sr_model_prefetch_item_state(const sr_model_t *m, uint32_t item)
{
    if (item >= m->n_items) return;
    sr_model_prefetch_lines_(m->Q + (size_t)item * m->dim, (size_t)m->dim * sizeof(float), 0);
    __builtin_prefetch(m->q_acc + item);
    __builtin_prefetch(m->b + item);
    __builtin_prefetch(m->b_acc + item);
    __builtin_prefetch(m->pop + item);
    __builtin_prefetch(m->cnt + item);
    __builtin_prefetch(m->xgen + item);
}

uint64_t sr_model_item_extra_gen(const sr_model_t *m, uint32_t item)
{
    return item < m->n_items ? (uint64_t)m->xgen_all << 32 | m->xgen[item] : 0;
}

void sr_model_export_global(const sr_model_t *m, sr_global_state_t *out)
{
    out->dim = m->dim;
    out->n_users = m->n_users;
    out->n_items = m->n_items;
    out->events = m->events;
    out->clock_ms = m->clock_ms;
    out->pop_ref_ms = m->pop_ref_ms;
    memcpy(out->blend, m->blend, sizeof out->blend);
    memcpy(out->blend_acc, m->blend_acc, sizeof out->blend_acc);
    out->ring_len = m->ring_len;
    out->ring_pos = m->ring_pos;
    memcpy(out->ring, m->ring, sizeof out->ring);
}

static int finite_vec(const float *v, int n)
{
    for (int k = 0; k < n; k++)
        if (!isfinite(v[k])) return 0;
    return 1;
}

static int id_ok(const char *id, size_t len)
{
    return id && len > 0 && len <= SR_ID_MAX;
}

int32_t sr_model_import_user(sr_model_t *m, const sr_user_state_t *st)
{
    if (!st || !id_ok(st->id, st->id_len)) return SR_ERR_RANGE;
    if (st->dim != m->dim || !st->vec || !finite_vec(st->vec, m->dim) || !isfinite(st->acc) ||
        st->acc < 0 || st->n_recent > (size_t)m->p.recent_max)
        return SR_ERR_INVAL;
    for (size_t k = 0; k < st->n_recent; k++) {
        if (!id_ok(st->recent[k].item, st->recent[k].item_len) ||
            (unsigned)st->recent[k].type >= SR_EV_NTYPES || st->recent[k].type == SR_EV_IMPRESSION)
            return SR_ERR_INVAL;
    }
    /* Intern the recent items first: if one fails nothing of the user
     * changed (the created items are harmless fresh rows). */
    int32_t items[SR_RECENT_MAX];
    for (size_t k = 0; k < st->n_recent; k++) {
        items[k] = sr_model_item_intern(m, st->recent[k].item, st->recent[k].item_len);
        if (items[k] < 0) return items[k];
    }
    int32_t u = sr_model_user_intern(m, st->id, st->id_len);
    if (u < 0) return u;
    memcpy(m->P + (size_t)u * m->dim, st->vec, (size_t)m->dim * sizeof(float));
    m->p_acc[u] = st->acc;
    m->u_events[u] = st->events;
    m->u_last[u] = st->last_ts_ms;
    sr_score_recent_t *r = m->rec + (size_t)u * (size_t)m->p.recent_max;
    for (size_t k = 0; k < st->n_recent; k++) {
        r[k].item = items[k];
        r[k].type = (uint32_t)st->recent[k].type;
        r[k].ts_ms = st->recent[k].ts_ms;
    }
    m->rec_n[u] = (uint16_t)st->n_recent;
    return u;
}

int32_t sr_model_import_item(sr_model_t *m, const sr_item_state_t *st)
{
    if (!st || !id_ok(st->id, st->id_len)) return SR_ERR_RANGE;
    if (st->dim != m->dim || !st->vec || !finite_vec(st->vec, m->dim) || !isfinite(st->acc) ||
        st->acc < 0 || !isfinite(st->bias) || !isfinite(st->bias_acc) || st->bias_acc < 0 ||
        !isfinite(st->pop_scaled) || st->pop_scaled < 0 || !isfinite(st->count) || st->count < 0 ||
        st->n_nbrs > (size_t)m->p.cooc_max)
        return SR_ERR_INVAL;
    for (size_t k = 0; k < st->n_nbrs; k++)
        if (!id_ok(st->nbrs[k].item, st->nbrs[k].item_len) || !isfinite(st->nbrs[k].count) ||
            st->nbrs[k].count < 0)
            return SR_ERR_INVAL;
    int32_t i = sr_model_item_intern(m, st->id, st->id_len);
    if (i < 0) return i;
    int32_t nbrs[SR_COOC_MAX];
    for (size_t k = 0; k < st->n_nbrs; k++) {
        nbrs[k] = sr_model_item_intern(m, st->nbrs[k].item, st->nbrs[k].item_len);
        if (nbrs[k] < 0) return nbrs[k];
    }
    int rc = sr_model_nbr_reserve_(m, (uint32_t)i, (uint32_t)st->n_nbrs);
    if (rc) return rc;
    memcpy(m->Q + (size_t)i * m->dim, st->vec, (size_t)m->dim * sizeof(float));
    m->q_acc[i] = st->acc;
    m->b[i] = st->bias;
    m->b_acc[i] = st->bias_acc;
    m->pop[i] = st->pop_scaled;
    m->logv[i] = st->pop_scaled > 0 ? (float)log(st->pop_scaled) : -INFINITY;
    m->cnt[i] = st->count;
    sr_score_nbr_t *nb = sr_model_nbr_(m, (uint32_t)i);
    for (size_t k = 0; k < st->n_nbrs; k++) {
        nb[k].item = nbrs[k];
        nb[k].count = st->nbrs[k].count;
    }
    m->nbr_n[i] = (uint16_t)st->n_nbrs;
    sr_model_nbr_refp_(m, (uint32_t)i);
    m->xgen[i]++;
    return i;
}

int sr_model_import_global(sr_model_t *m, const sr_global_state_t *st)
{
    if (!st || st->dim != m->dim || st->ring_len > SR_SAMPLER_RING ||
        st->ring_pos >= SR_SAMPLER_RING || !finite_vec(st->blend, SR_BLEND_NFEAT) ||
        !finite_vec(st->blend_acc, SR_BLEND_NFEAT))
        return SR_ERR_INVAL;
    for (uint32_t k = 0; k < st->ring_len; k++)
        if (st->ring[k] >= m->n_items) return SR_ERR_INVAL;
    m->events = st->events;
    m->clock_ms = st->clock_ms;
    m->pop_ref_ms = st->pop_ref_ms;
    m->xgen_all++;
    memcpy(m->blend, st->blend, sizeof m->blend);
    memcpy(m->blend_acc, st->blend_acc, sizeof m->blend_acc);
    m->ring_len = st->ring_len;
    m->ring_pos = st->ring_pos;
    memcpy(m->ring, st->ring, sizeof m->ring);
    return 0;
}

size_t sr_model_memory(const sr_model_t *m)
{
    size_t d = (size_t)m->dim;
    size_t per_user =
        d * 4 + 4 + 8 + 8 + (size_t)m->p.recent_max * sizeof(sr_score_recent_t) + 2 + 1;
    size_t per_item = d * 4 + 4 * 3 + 8 + 4 + 4 + 4 + 2 + 2 + 1 + 4 + 8;
    return sizeof *m + sr_idtable_memory(m->uid) + sr_idtable_memory(m->iid) +
           per_user * m->cap_users + per_item * m->cap_items +
           ((size_t)m->cap_dirty_u + m->cap_dirty_i) * 4 +
           (size_t)m->pool_cap * (sizeof *m->pool + 1);
}
