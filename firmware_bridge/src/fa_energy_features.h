/*
 * fa_energy_features: the energy-anomaly model's features, score and alarm policy on a sensor
 * node (C99, header-only, no malloc, no stdio). A line-by-line port of
 * frugalai/features/energy.py (EnergyFeatures), BundleModel.decide_one (the anomaly score) and
 * frugalai/events/policy.py (Hysteresis), in double precision like the Python, so that a node
 * computes the same scores as the gateway's reference backend, bit for bit
 * (tests/test_firmware_model.py runs both on the real Dutch load curve).
 *
 * Include the generated model header first (fa_energy_anomaly.h): it defines the FA_EF_*
 * parameters from the bundle's card and fa_energy_anomaly_int8().
 *
 * RAM: 2 day types x (86400 / FA_EF_SLOT_S) slots x FA_EF_HISTORY doubles (12 KiB for the
 * shipped card: 15-min slots, 8 values), plus the level and the residual window.
 */
#ifndef FA_ENERGY_FEATURES_H
#define FA_ENERGY_FEATURES_H

#include <math.h>
#include <stdint.h>

#define FA_EF_SLOTS (86400L / FA_EF_SLOT_S)
#define FA_EF_MAD_TO_SIGMA 1.4826

typedef struct {
    double v[FA_EF_HISTORY];   /* ring of the slot's last values */
    uint8_t n, head;
} fa_ef_slot;

typedef struct {
    fa_ef_slot slots[2][FA_EF_SLOTS];
    double level[2];
    uint8_t has_level[2];
    double recent[FA_EF_WINDOW];
    uint8_t n_recent;
    int64_t last_slot;
    uint8_t has_last;
    /* Hysteresis */
    uint8_t active;
    int streak;
} fa_ef_state;

static inline void fa_ef_init(fa_ef_state *s)
{
    uint8_t *p = (uint8_t *)s;
    unsigned long i;
    for (i = 0; i < sizeof *s; ++i) p[i] = 0;
}

/* Python's float floor division and modulo (x // y, x % y) for y > 0. */
static inline double fa_ef_pymod(double x, double y)
{
    double m = fmod(x, y);
    if (m != 0.0) {
        if ((y < 0) != (m < 0)) m += y;
    } else {
        m = copysign(0.0, y);
    }
    return m;
}

static inline double fa_ef_pyfloordiv(double x, double y)
{
    double m = fmod(x, y), div = (x - m) / y, f;
    if (m != 0.0 && ((y < 0) != (m < 0))) div -= 1.0;
    if (div != 0.0) {
        f = floor(div);
        if (div - f > 0.5) f += 1.0;
    } else {
        f = copysign(0.0, x / y);
    }
    return f;
}

static inline void fa_ef_key(double ts, int *weekend, long *slot)
{
    double local = ts + FA_EF_TZ_OFFSET_H * 3600;
    double days = floor(local / 86400.0);
    /* 1970-01-01 was a Thursday (3). Python rounds a time to the microsecond before taking
     * its date; a node's window starts are whole seconds, where the two agree. */
    long wd = (long)fa_ef_pymod(days + 3.0, 7.0);
    *weekend = FA_EF_DAY_TYPES == 2 ? wd >= 5 : 0;   /* one profile for every day if 1 */
    *slot = (long)fa_ef_pyfloordiv(fa_ef_pymod(local, 86400.0), (double)FA_EF_SLOT_S);
}

static inline void fa_ef_sort(double *a, int n)
{
    int i, j;
    for (i = 1; i < n; ++i) {
        double v = a[i];
        for (j = i - 1; j >= 0 && a[j] > v; --j) a[j + 1] = a[j];
        a[j + 1] = v;
    }
}

static inline double fa_ef_median(const double *sorted, int n)
{
    int mid = n / 2;
    return n % 2 ? sorted[mid] : 0.5 * (sorted[mid - 1] + sorted[mid]);
}

/* Robust z-score of value in its slot; returns 0 if undefined (slot still learning). */
static inline int fa_ef_residual(const fa_ef_state *s, double ts, double value, double *z)
{
    int weekend, i, n;
    long slot;
    double vals[FA_EF_HISTORY], dev[FA_EF_HISTORY], median, mad, level, spread, c;
    const fa_ef_slot *sl;
    fa_ef_key(ts, &weekend, &slot);
    sl = &s->slots[weekend][slot];
    n = sl->n;
    if (n < FA_EF_MIN_HISTORY || value != value) return 0;
    for (i = 0; i < n; ++i) vals[i] = sl->v[(sl->head + i) % FA_EF_HISTORY];
    fa_ef_sort(vals, n);
    median = fa_ef_median(vals, n);
    for (i = 0; i < n; ++i) dev[i] = fabs(vals[i] - median);
    fa_ef_sort(dev, n);
    mad = fa_ef_median(dev, n);
    level = s->has_level[weekend] ? s->level[weekend] : fabs(median);
    /* Python's max(a, b, c, d): the first largest */
    spread = FA_EF_MAD_TO_SIGMA * mad;
    c = FA_EF_FLOOR_REL * fabs(median); if (c > spread) spread = c;
    c = FA_EF_FLOOR_LEVEL * level; if (c > spread) spread = c;
    if (FA_EF_FLOOR_ABS > spread) spread = FA_EF_FLOOR_ABS;
    if (1e-9 > spread) spread = 1e-9;
    c = (value - median) / spread;
    /* max(-clip, min(clip, z)) */
    if (c > FA_EF_CLIP) c = FA_EF_CLIP;
    if (c > -FA_EF_CLIP) *z = c; else *z = -FA_EF_CLIP;
    return 1;
}

static inline void fa_ef_learn(fa_ef_state *s, double ts, double value)
{
    int weekend;
    long slot;
    fa_ef_slot *sl;
    double alpha;
    if (value != value) return;
    fa_ef_key(ts, &weekend, &slot);
    sl = &s->slots[weekend][slot];
    if (sl->n < FA_EF_HISTORY) {
        sl->v[(sl->head + sl->n) % FA_EF_HISTORY] = value;
        sl->n++;
    } else {
        sl->v[sl->head] = value;
        sl->head = (uint8_t)((sl->head + 1) % FA_EF_HISTORY);
    }
    alpha = 1.0 / ((double)(FA_EF_HISTORY * 86400L) / (double)FA_EF_SLOT_S);
    if (!s->has_level[weekend]) {
        s->level[weekend] = value;
        s->has_level[weekend] = 1;
    } else {
        s->level[weekend] = s->level[weekend] + alpha * (value - s->level[weekend]);
    }
}

/* Feed the value of the window starting at ts; returns 1 and fills row[FA_EF_WINDOW] when a
 * feature row is ready, else 0. */
static inline int fa_ef_update(fa_ef_state *s, double ts, double value, double *row)
{
    int64_t index = (int64_t)floor(ts / FA_EF_SLOT_S);
    double z = 0.0;
    int have, i;
    if (s->has_last && !(0 < index - s->last_slot && index - s->last_slot <= FA_EF_MAX_GAP + 1))
        s->n_recent = 0;
    s->last_slot = index;
    s->has_last = 1;
    have = fa_ef_residual(s, ts, value, &z);
    if (!have || fabs(z) < FA_EF_LEARN_BELOW) fa_ef_learn(s, ts, value);
    if (!have) {
        s->n_recent = 0;
        return 0;
    }
    if (s->n_recent == FA_EF_WINDOW) {
        for (i = 1; i < FA_EF_WINDOW; ++i) s->recent[i - 1] = s->recent[i];
        s->n_recent--;
    }
    s->recent[s->n_recent++] = z;
    if (s->n_recent < FA_EF_WINDOW) return 0;
    for (i = 0; i < FA_EF_WINDOW; ++i) row[i] = s->recent[i];
    return 1;
}

/* The anomaly score of one row of raw model outputs: sqrt(mean(y^2)), summed as numpy does
 * for fewer than 8 values (in order, from 0). */
static inline double fa_ef_score(const float *y, int n)
{
    double acc = 0.0;
    int i;
    for (i = 0; i < n; ++i) acc += (double)y[i] * (double)y[i];
    return sqrt(acc / n);
}

/* Hysteresis: returns 1 (alarm), -1 (clear) or 0. */
static inline int fa_ef_policy(fa_ef_state *s, double score)
{
    int crossing = s->active ? score <= FA_EF_OFF : score >= FA_EF_ON;
    s->streak = crossing ? s->streak + 1 : 0;
    if (s->streak < FA_EF_DEBOUNCE) return 0;
    s->streak = 0;
    s->active = !s->active;
    return s->active ? 1 : -1;
}

#endif /* FA_ENERGY_FEATURES_H */
