/*
 * The radix sort's body, included by sort.c once per payload type: SORT_VAL is the payload
 * (uint32_t for indices, uint64_t for the packed units of pay-as-bid) and SORT_NAME(f) gives
 * each function a name of its own per type. Not a header of its own: it has no guard and
 * defines static functions.
 */

/* Stable insertion sort of keys[0..n) that gives up once it has moved more than `budget`
 * elements (checked between elements, so the array is always a whole permutation of its input
 * with equal keys in their input order). Returns 0 when sorted, -1 when it gave up. For tiny
 * inputs (no budget) it is the whole sort: the radix sort's histograms cost more there. */
static int SORT_NAME(insertion_within)(uint64_t *keys, SORT_VAL *vals, size_t n, size_t budget)
{
    size_t moved = 0;
    for (size_t i = 1; i < n; i++) {
        uint64_t k = keys[i];
        if (keys[i - 1] <= k)
            continue;
        if (moved > budget)
            return -1;
        SORT_VAL v = vals ? vals[i] : 0;
        size_t j = i;
        for (; j > 0 && keys[j - 1] > k; j--) {
            keys[j] = keys[j - 1];
            if (vals)
                vals[j] = vals[j - 1];
        }
        keys[j] = k;
        if (vals)
            vals[j] = v;
        moved += i - j;
    }
    return 0;
}

static void SORT_NAME(insertion_sort)(uint64_t *keys, SORT_VAL *vals, size_t n)
{
    (void)SORT_NAME(insertion_within)(keys, vals, n, SIZE_MAX);
}

/* Counts, for each digit in [from, to), how many keys have each value of it. */
static void SORT_NAME(count_digits)(const uint64_t *keys, size_t n, unsigned from, unsigned to,
                                    size_t count[PASSES][BUCKETS])
{
    memset(count[from], 0, (to - from) * sizeof count[0]);
    for (size_t i = 0; i < n; i++)
        for (unsigned p = from; p < to; p++)
            count[p][digit(keys[i], p)]++;
}

/* Stable LSD passes over digits [from, to) of keys[0..n), with their counts from count_digits
 * (used up), each pass from one of the two arrays into the other. Returns where the result is:
 * 0 in keys and vals, 1 in tmp_keys and tmp_vals (no copy back: the caller may need it in
 * either). */
static int SORT_NAME(lsd_digits)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned from,
                                 unsigned to, size_t count[PASSES][BUCKETS], uint64_t *tmp_keys,
                                 SORT_VAL *tmp_vals)
{
    uint64_t *src_k = keys, *dst_k = tmp_keys;
    SORT_VAL *src_v = vals, *dst_v = tmp_vals;
    for (unsigned p = from; p < to; p++) {
        if (count[p][digit(src_k[0], p)] == n)
            continue; /* every key has this digit: the pass would be the identity */
        size_t sum = 0;
        for (unsigned b = 0; b < BUCKETS; b++) {
            size_t c = count[p][b];
            count[p][b] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++) {
            size_t at = count[p][digit(src_k[i], p)]++;
            dst_k[at] = src_k[i];
            if (src_v)
                dst_v[at] = src_v[i];
        }
        uint64_t *tk = src_k;
        src_k = dst_k;
        dst_k = tk;
        SORT_VAL *tv = src_v;
        src_v = dst_v;
        dst_v = tv;
    }
    return src_k != keys;
}

/* Copies keys[0..n) (and vals) into to_keys (and to_vals). */
static void SORT_NAME(copy)(uint64_t *to_keys, SORT_VAL *to_vals, const uint64_t *keys,
                            const SORT_VAL *vals, size_t n)
{
    memcpy(to_keys, keys, n * sizeof *keys);
    if (vals)
        memcpy(to_vals, vals, n * sizeof *vals);
}

/* Whether ordering n keys on their digits [top, top + PREFIX_PASSES) leaves only short runs of
 * keys sharing them: the largest count of one value of each of those digits, multiplied and
 * divided by n, estimates the longest such run were the digits independent (random ids:
 * about 32 x 32 / 4096 for a bucket of 4,096). */
static int SORT_NAME(prefix_discriminates)(size_t count[PASSES][BUCKETS], unsigned top, size_t n)
{
    double run = (double)n;
    for (unsigned p = top; p < top + PREFIX_PASSES; p++) {
        size_t max = 0;
        for (unsigned b = 0; b < BUCKETS; b++)
            max = count[p][b] > max ? count[p][b] : max;
        run *= (double)max / (double)n;
    }
    return run <= PREFIX_MAX_RUN;
}

/* Sorts keys[0..n) on the digits below bit `bits`, with tmp_* as the second array of the
 * passes; returns where the result is, as lsd_digits. Keys that
 * differ in many digits (random ids in a bucket of a few thousand after the split) are first
 * ordered on their top PREFIX_PASSES digits only, when those tell the keys apart well enough
 * (prefix_discriminates): that leaves out of order only the few short runs of keys sharing
 * them, and an insertion sort finishes those, where LSD passes over every digit below would
 * move every key once per digit. Should the insertion still have to move more than
 * INSERTION_BUDGET elements per key, passes over all the digits sort it again from the order it
 * reached. Every step is stable, so the order is the same whichever way it is reached. */
static int SORT_NAME(lsd_sort)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned bits,
                               uint64_t *tmp_keys, SORT_VAL *tmp_vals)
{
    if (n <= 32) {
        SORT_NAME(insertion_sort)(keys, vals, n);
        return 0;
    }
    unsigned passes = (bits + DIGIT_BITS - 1) / DIGIT_BITS, counted = 0;
    size_t count[PASSES][BUCKETS];
    if (passes > PREFIX_PASSES + 1) {
        unsigned top = passes - PREFIX_PASSES;
        SORT_NAME(count_digits)(keys, n, top, passes, count);
        if (SORT_NAME(prefix_discriminates)(count, top, n)) {
            int in_tmp =
                SORT_NAME(lsd_digits)(keys, vals, n, top, passes, count, tmp_keys, tmp_vals);
            uint64_t *k = in_tmp ? tmp_keys : keys, *other_k = in_tmp ? keys : tmp_keys;
            SORT_VAL *v = in_tmp ? tmp_vals : vals, *other_v = in_tmp ? vals : tmp_vals;
            if (SORT_NAME(insertion_within)(k, v, n, INSERTION_BUDGET * n) == 0)
                return in_tmp;
            SORT_NAME(count_digits)(k, n, 0, passes, count); /* gave up: every digit */
            return in_tmp ^ SORT_NAME(lsd_digits)(k, v, n, 0, passes, count, other_k, other_v);
        }
        counted = top; /* the digits below still to count */
    }
    SORT_NAME(count_digits)(keys, n, 0, counted ? counted : passes, count);
    return SORT_NAME(lsd_digits)(keys, vals, n, 0, passes, count, tmp_keys, tmp_vals);
}

/* Sorts keys[0..n) on their low `bits` bits (the bits above are equal in every key), with
 * tmp_* as the second array; returns where the result is, as lsd_digits. Beyond what fits in
 * cache, one stable pass on the top digit splits the input into buckets that do, so that only
 * that pass moves the data through DRAM, where an LSD sort over every digit would stream the
 * whole array through DRAM once per digit. Each bucket is sorted on the digits below with the
 * same stable passes, so the whole is the one stable order; a bucket whose passes end in the
 * other array (an odd number of them) is left there, in place, and only the others are copied
 * back. */
static int SORT_NAME(msd_sort)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned bits,
                               uint64_t *tmp_keys, SORT_VAL *tmp_vals)
{
    if (n <= MSD_MIN || bits <= DIGIT_BITS)
        return SORT_NAME(lsd_sort)(keys, vals, n, bits, tmp_keys, tmp_vals);
    unsigned shift = bits - DIGIT_BITS;
    size_t count[BUCKETS] = {0};
    for (size_t i = 0; i < n; i++)
        count[(keys[i] >> shift) & (BUCKETS - 1u)]++;
    if (count[(keys[0] >> shift) & (BUCKETS - 1u)] == n) /* nothing to split on this digit */
        return SORT_NAME(msd_sort)(keys, vals, n, shift, tmp_keys, tmp_vals);
    size_t start[BUCKETS], sum = 0;
    for (unsigned b = 0; b < BUCKETS; b++) {
        start[b] = sum;
        sum += count[b];
    }
    size_t at[BUCKETS];
    memcpy(at, start, sizeof at);
    for (size_t i = 0; i < n; i++) {
        size_t to = at[(keys[i] >> shift) & (BUCKETS - 1u)]++;
        tmp_keys[to] = keys[i];
        if (vals)
            tmp_vals[to] = vals[i];
    }
    for (unsigned b = 0; b < BUCKETS; b++) {
        size_t s = start[b], m = count[b];
        if (m == 0)
            continue;
        /* sorted from tmp, with keys as the second array, on the digits below this one (the
         * bits above are equal within the bucket, so the passes that see them order nothing
         * wrong) */
        SORT_VAL *tv = vals ? tmp_vals + s : NULL, *v = vals ? vals + s : NULL;
        if (!SORT_NAME(msd_sort)(tmp_keys + s, tv, m, shift, keys + s, v))
            SORT_NAME(copy)(keys + s, v, tmp_keys + s, tv, m);
    }
    return 0;
}

/* msd_sort with the result in keys and vals. */
static void SORT_NAME(sort_in_place)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned bits,
                                     uint64_t *tmp_keys, SORT_VAL *tmp_vals)
{
    if (SORT_NAME(msd_sort)(keys, vals, n, bits, tmp_keys, tmp_vals))
        SORT_NAME(copy)(keys, vals, tmp_keys, tmp_vals, n);
}
