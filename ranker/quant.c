/* int8 rows and the approximate first stage of the ranker's two-stage
 * recommend; the why and the error bound are in quant.h.  The scan is the
 * hot loop: with AVX2 (the build's -march=native) eight rows at a time,
 * int8 x int16 products summed exactly in int32 (vpmaddwd), the bounds in
 * float lanes, and a scalar step only for the few rows that may make the
 * top K; without AVX2, or for a dim not a multiple of 16, the same
 * arithmetic one row at a time. */
#include "quant.h"

#include <math.h>
#include <string.h>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

float sr_quant_row_(const float *q, int dim, int8_t *codes)
{
    float maxabs = 0;
    for (int d = 0; d < dim; d++) {
        if (!isfinite(q[d])) goto always;
        maxabs = fmaxf(maxabs, fabsf(q[d]));
    }
    if (maxabs == 0) {
        memset(codes, 0, (size_t)dim);
        return 0.0f;
    }
    float s = maxabs / 127.0f;
    if (!(s > 0) || !isfinite(s)) goto always;
    for (int d = 0; d < dim; d++) {
        double c = nearbyint((double)q[d] / (double)s);
        if (c > 127) c = 127;
        if (c < -127) c = -127;
        /* s * c is exact in double; the check is what the bound relies on */
        if (fabs((double)q[d] - (double)s * c) > 0.5005 * (double)s) goto always;
        codes[d] = (int8_t)c;
    }
    return s;
always:
    memset(codes, 0, (size_t)dim);
    return INFINITY;
}

/* Rounds a non-negative double up to a float that is not smaller. */
static float up(double x)
{
    float f = (float)x;
    return (double)f >= x ? f : nextafterf(f, INFINITY);
}

int sr_quant_user_(const float *v, int dim, int16_t *w, sr_quant_user_t *qu)
{
    double l1 = 0, maxabs = 0;
    for (int d = 0; d < dim; d++) {
        if (!isfinite(v[d])) return -1;
        l1 += fabs((double)v[d]);
        maxabs = fmax(maxabs, fabs((double)v[d]));
    }
    /* |S| <= 127 * wmax * dim stays inside int32 */
    double wmax = floor(2147483647.0 / (127.0 * dim));
    if (wmax > 32767) wmax = 32767;
    float t = maxabs > 0 ? up(maxabs / wmax) : 0.0f;
    double sigma = 0;
    for (int d = 0; d < dim; d++) {
        double c = t > 0 ? nearbyint((double)v[d] / (double)t) : 0;
        if (c > wmax) c = wmax;
        if (c < -wmax) c = -wmax;
        w[d] = (int16_t)c;
        sigma = fmax(sigma, fabs((double)v[d] - (double)t * c));
    }
    /* l1 and sigma carry double rounding (relative 1e-16 per term): a
     * relative 2^-30 margin covers it. */
    l1 *= 1 + 0x1p-30;
    sigma *= 1 + 0x1p-30;
    double g = (dim + 8) * 0x1p-23;
    double kc = 0.51 * l1 + 127.0 * dim * sigma + 128.0 * g * l1 + 0x1p-15 * (l1 + dim * sigma);
    qu->w = w;
    qu->t = t;
    qu->kc = up(kc * (1 + 0x1p-20));
    return 0;
}

typedef struct heap {
    float *h;
    size_t n, k;
} heap_t;

static inline float heap_tau(const heap_t *hp)
{
    return hp->n < hp->k ? -INFINITY : hp->h[0];
}

/* Offers a lower bound to the min-heap of the k best. */
static void heap_offer(heap_t *hp, float x)
{
    if (!(x == x)) return;
    float *h = hp->h;
    if (hp->n < hp->k) {
        size_t j = hp->n++;
        while (j > 0) {
            size_t p = (j - 1) / 2;
            if (!(x < h[p])) break;
            h[j] = h[p];
            j = p;
        }
        h[j] = x;
        return;
    }
    if (!(x > h[0])) return;
    size_t j = 0, n = hp->n;
    for (;;) {
        size_t l = 2 * j + 1, m = j;
        float hm = x;
        if (l < n && h[l] < hm) m = l, hm = h[l];
        if (l + 1 < n && h[l + 1] < hm) m = l + 1, hm = h[l + 1];
        if (m == j) break;
        h[j] = h[m];
        j = m;
    }
    h[j] = x;
}

#define REL_A 0x1p-20f
#define REL_E (1.0f + 0x1p-12f)
#define ABS_E 0x1p-120f
#define BIG 0x1p100f

/* Upper and lower bound of row i from its int8 dot product S. */
static inline void bounds(const sr_quant_scan_t *a, const sr_quant_user_t *qu, uint32_t i,
                          int32_t S, float *U, float *L)
{
    float x = a->norm ? 0.0f : a->wb * a->bias[i];
    float y = a->norm ? 0.0f : a->wp * fmaxf(a->logpop[i] + a->off, a->pop_floor);
    float s = a->scale[i];
    float d = (float)S * (s * qu->t);
    float A = (x + y) + d;
    float e = (s * qu->kc + REL_A * (fabsf(x) + fabsf(y) + fabsf(A)) + ABS_E) * REL_E;
    if (a->norm) {
        float m = a->inv_unorm / a->norm[i];
        A *= m;
        e = (e * m + REL_A * fabsf(A) + ABS_E) * REL_E;
    }
    if (!(fabsf(A) + e < BIG)) {
        *U = INFINITY;
        *L = NAN;
        return;
    }
    *U = A + e;
    *L = A - e;
}

/* One row, scalar: collect it and offer its lower bound as the contract
 * says. */
static inline size_t visit(const sr_quant_scan_t *a, const sr_quant_user_t *qu, heap_t *hp,
                           uint8_t f, uint32_t i, float U, float L, uint32_t *cand, float *ucand,
                           size_t nc)
{
    (void)a;
    (void)qu;
    if (f & 2) {
        cand[nc] = i;
        ucand[nc++] = U;
        return nc;
    }
    if (f & 1) return nc;
    if (!(U < heap_tau(hp))) {
        cand[nc] = i;
        ucand[nc++] = U;
    }
    heap_offer(hp, L);
    return nc;
}

static int32_t dot_i8(const int8_t *c, const int16_t *w, int dim)
{
    int32_t s = 0;
    for (int d = 0; d < dim; d++)
        s += (int32_t)c[d] * w[d];
    return s;
}

#if defined(__AVX2__)
/* Stage one eight rows at a time from row *ip while a block fits; dim is a
 * multiple of 16, and a constant where the caller can make it one (the
 * loops then unroll). */
static inline __attribute__((always_inline)) size_t
scan8(const sr_quant_scan_t *a, const sr_quant_user_t *qu, const uint8_t *flags, heap_t *hpp,
      uint32_t *cand, float *ucand, size_t nc, uint32_t *ip, const int dim, const int cosine)
{
    const __m256 inv_un = _mm256_set1_ps(a->inv_unorm);
    heap_t hp = *hpp;
    uint32_t i = *ip;
    const __m256 wb = _mm256_set1_ps(a->wb), wp = _mm256_set1_ps(a->wp);
    const __m256 off = _mm256_set1_ps(a->off), floor_ = _mm256_set1_ps(a->pop_floor);
    const __m256 t = _mm256_set1_ps(qu->t), kc = _mm256_set1_ps(qu->kc);
    const __m256 rel = _mm256_set1_ps(REL_A), rele = _mm256_set1_ps(REL_E);
    const __m256 abse = _mm256_set1_ps(ABS_E), big = _mm256_set1_ps(BIG);
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    for (; i + 8 <= a->n; i += 8) {
        __m256i acc[8];
        const int8_t *c = a->codes + (size_t)i * dim;
#if defined(__AVX512BW__)
        if (dim % 32 == 0) {
            /* a 32-wide row in one sign extension and one multiply-add */
            for (int r = 0; r < 8; r++) {
                __m512i s = _mm512_setzero_si512();
                for (int d = 0; d < dim; d += 32) {
                    __m512i c16 = _mm512_cvtepi8_epi16(
                        _mm256_loadu_si256((const __m256i *)(c + (size_t)r * dim + d)));
                    __m512i w16 = _mm512_loadu_si512((const void *)(qu->w + d));
#if defined(__AVX512VNNI__)
                    s = _mm512_dpwssd_epi32(s, c16, w16);
#else
                    s = _mm512_add_epi32(s, _mm512_madd_epi16(c16, w16));
#endif
                }
                acc[r] =
                    _mm256_add_epi32(_mm512_castsi512_si256(s), _mm512_extracti64x4_epi64(s, 1));
            }
        } else
#endif
            for (int r = 0; r < 8; r++) {
                __m256i s = _mm256_setzero_si256();
                for (int d = 0; d < dim; d += 16) {
                    __m256i c16 = _mm256_cvtepi8_epi16(
                        _mm_loadu_si128((const __m128i *)(c + (size_t)r * dim + d)));
                    __m256i w16 = _mm256_loadu_si256((const __m256i *)(qu->w + d));
                    s = _mm256_add_epi32(s, _mm256_madd_epi16(c16, w16));
                }
                acc[r] = s;
            }
        /* transpose-reduce: lane r of S = row i + r */
        __m256i t0 = _mm256_hadd_epi32(acc[0], acc[1]), t1 = _mm256_hadd_epi32(acc[2], acc[3]);
        __m256i t2 = _mm256_hadd_epi32(acc[4], acc[5]), t3 = _mm256_hadd_epi32(acc[6], acc[7]);
        __m256i u0 = _mm256_hadd_epi32(t0, t1), u1 = _mm256_hadd_epi32(t2, t3);
        __m256i S = _mm256_add_epi32(_mm256_permute2x128_si256(u0, u1, 0x20),
                                     _mm256_permute2x128_si256(u0, u1, 0x31));
        __m256 x = _mm256_setzero_ps(), y = _mm256_setzero_ps();
        if (!cosine) {
            x = _mm256_mul_ps(wb, _mm256_loadu_ps(a->bias + i));
            y = _mm256_mul_ps(
                wp, _mm256_max_ps(_mm256_add_ps(_mm256_loadu_ps(a->logpop + i), off), floor_));
        }
        __m256 s = _mm256_loadu_ps(a->scale + i);
        __m256 d = _mm256_mul_ps(_mm256_cvtepi32_ps(S), _mm256_mul_ps(s, t));
        __m256 A = _mm256_add_ps(_mm256_add_ps(x, y), d);
        __m256 aa = _mm256_and_ps(A, absmask);
        __m256 sum =
            _mm256_add_ps(_mm256_add_ps(_mm256_and_ps(x, absmask), _mm256_and_ps(y, absmask)), aa);
        __m256 e = _mm256_mul_ps(
            _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(s, kc), _mm256_mul_ps(rel, sum)), abse),
            rele);
        if (cosine) { /* the same steps as bounds() */
            __m256 m = _mm256_div_ps(inv_un, _mm256_loadu_ps(a->norm + i));
            A = _mm256_mul_ps(A, m);
            aa = _mm256_and_ps(A, absmask);
            e = _mm256_mul_ps(
                _mm256_add_ps(_mm256_add_ps(_mm256_mul_ps(e, m), _mm256_mul_ps(rel, aa)), abse),
                rele);
        }
        __m256 U = _mm256_add_ps(A, e);
        /* candidates: touched/excluded rows, U >= tau, or U NaN, or a
         * row near overflow (handled by the scalar path) */
        __m256 tv = _mm256_set1_ps(heap_tau(&hp));
        int m = _mm256_movemask_ps(_mm256_cmp_ps(U, tv, _CMP_NLT_UQ)) |
                _mm256_movemask_ps(_mm256_cmp_ps(_mm256_add_ps(aa, e), big, _CMP_NLT_UQ));
        uint64_t fl;
        memcpy(&fl, flags + i, 8);
        if (!m && !fl) continue;
        float Ub[8], Lb[8];
        int32_t Sb[8];
        _mm256_storeu_si256((__m256i *)Sb, S);
        for (int r = 0; r < 8; r++) {
            bounds(a, qu, i + r, Sb[r], &Ub[r], &Lb[r]);
            nc = visit(a, qu, &hp, flags[i + r], i + r, Ub[r], Lb[r], cand, ucand, nc);
        }
    }
    *ip = i;
    *hpp = hp;
    return nc;
}
#endif

size_t sr_quant_scan_(const sr_quant_scan_t *a, const sr_quant_user_t *qu, const uint8_t *flags,
                      size_t k, float *heap, uint32_t *cand, float *ucand, float *tau)
{
    heap_t hp = {heap, 0, k};
    size_t nc = 0;
    uint32_t i = 0;
    const int dim = a->dim;
#if defined(__AVX2__)
    if (dim == 32 && !a->norm)
        nc = scan8(a, qu, flags, &hp, cand, ucand, nc, &i, 32, 0);
    else if (dim == 32)
        nc = scan8(a, qu, flags, &hp, cand, ucand, nc, &i, 32, 1);
    else if (dim % 16 == 0)
        nc = scan8(a, qu, flags, &hp, cand, ucand, nc, &i, dim, a->norm != NULL);
#endif
    for (; i < a->n; i++) {
        float U, L;
        bounds(a, qu, i, dot_i8(a->codes + (size_t)i * dim, qu->w, dim), &U, &L);
        nc = visit(a, qu, &hp, flags[i], i, U, L, cand, ucand, nc);
    }
    *tau = heap_tau(&hp);
    return nc;
}
