/* The one dot product of the model and the scoring kernel, inline so the
 * hot loops (SGD steps, the blend learner, the dense scoring pass) do not
 * pay a call per row.  Eight lanes fix the summation order: GCC vectorises
 * it at -O3 without -ffast-math and the result is the same on every call
 * path, which keeps learning deterministic and the ranker's scores equal to
 * the model's.  Internal to model/. */
#ifndef SR_DOT_H
#define SR_DOT_H

static inline float sr_dot8_(const float *restrict a, const float *restrict b, int n)
{
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int j = 0; j < 8; j++)
            acc[j] += a[k + j] * b[k + j];
    float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (; k < n; k++)
        s += a[k] * b[k];
    return s;
}

#endif
