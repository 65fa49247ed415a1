/* The ranker's compact item matrix and the first stage of its two-stage
 * recommend (internal to ranker/).
 *
 * The dense pass of /v1/recommend reads the whole float matrix (12.8 MB at
 * 100k x 32) for every request and is memory bound.  Next to the float
 * matrix each catalogue side keeps an int8 copy with one scale per row
 * (q_i ~ s_i * c_i, |c| <= 127), a quarter of the bytes.  A request first
 * scores every row from the int8 copy, with a bound on how far that can be
 * from the float score the full pass would compute, keeps the K best lower
 * bounds, and collects every row whose upper bound reaches the K-th best
 * lower bound; only those are scored again in float, exactly as before.
 *
 * The bound, for row i with scale s_i against v ~ t * w (w int16):
 *
 *   q.v - s t (c.w) = s sum c_d (v_d - t w_d) + sum (q_d - s c_d) v_d
 *   |...| <= s (127 dim sigma + 0.51 ||v||_1)
 *
 * (sigma = max |v_d - t w_d|; quantisation of every row is checked in
 * double to leave |q_d - s c_d| <= 0.5005 s, else the row gets an infinite
 * scale and is always rescored), plus the float rounding of both
 * evaluations: the float dot product's (dim + 8) 2^-23 sum |q_d v_d| <=
 * (dim + 8) 2^-23 128 s ||v||_1, the int-to-float products' 2^-15 s (||v||_1
 * + dim sigma), and for the bias and popularity terms and the final sums
 * 2^-21 (|w_b b_i| + |w_pop pop_i| + |approx|), with any FMA contraction
 * either side may do; an absolute 2^-120 covers underflow.  Non-finite
 * inputs give a NaN or infinite bound, which always makes a row a
 * candidate. */
#ifndef SR_RANKER_QUANT_H
#define SR_RANKER_QUANT_H

#include <stddef.h>
#include <stdint.h>

/* Quantises one row of dim floats into codes; returns its scale (0 for a
 * zero row, INFINITY for a row that must always be rescored). */
float sr_quant_row_(const float *q, int dim, int8_t *codes);

/* The user side: v ~ t * w.  Returns 0, or -1 when v is not finite (then
 * use the full pass). */
typedef struct sr_quant_user {
    const int16_t *w; /* dim */
    float t;
    float kc; /* bound per unit of row scale, see above */
} sr_quant_user_t;
int sr_quant_user_(const float *v, int dim, int16_t *w, sr_quant_user_t *qu);

/* Stage one over rows 0..n-1.  flags[i]: bit 0 = excluded by the request
 * (never enters the lower-bound heap, never collected unless touched),
 * bit 1 = touched by a sparse term (always collected, never in the heap).
 * heap: k floats.  Writes the collected rows, increasing, to cand and
 * their upper bounds to ucand; returns how many, and in *tau the K-th best
 * lower bound of the rows neither excluded nor touched (-INFINITY when
 * fewer than k).  Every row whose upper bound is >= *tau, or touched, is
 * among those collected (rows collected early may be below). */
typedef struct sr_quant_scan {
    uint32_t n;
    int dim;
    const int8_t *codes; /* n x dim */
    const float *scale;  /* n */
    const float *bias;   /* n */
    const float *logpop; /* n */
    float wb, wp, off;   /* the blend's bias and pop weights, pop offset */
    float pop_floor;
    /* Cosine mode (/v1/similar) when norm is not NULL: row i's score is
     * its dot product / (u_norm * norm[i]), computed in float as
     * fl(dot / fl(u_norm * norm[i])); bias and logpop are then unused (may
     * be NULL).  The approximation is multiplied by inv_unorm / norm[i]
     * and the bound widened by 2^-20 of the result, which covers the
     * roundings of both quotients (a few 2^-24); an absolute 2^-120 more
     * covers a subnormal quotient. */
    const float *norm;
    float inv_unorm; /* 1 / u_norm */
} sr_quant_scan_t;
size_t sr_quant_scan_(const sr_quant_scan_t *a, const sr_quant_user_t *qu, const uint8_t *flags,
                      size_t k, float *heap, uint32_t *cand, float *ucand, float *tau);

#endif
