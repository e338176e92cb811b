/*
 * The radix sort's body, included by sort.c once per payload type: SORT_VAL is the payload
 * (uint32_t for indices, uint64_t for the packed units of pay-as-bid) and SORT_NAME(f) gives
 * each function a name of its own per type. Not a header of its own: it has no guard and
 * defines static functions.
 */

/* Stable insertion sort: for tiny inputs the radix sort's histograms cost more than the sort. */
static void SORT_NAME(insertion_sort)(uint64_t *keys, SORT_VAL *vals, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        uint64_t k = keys[i];
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
    }
}

/* LSD passes over the digits below bit `bits` of keys[0..n), in place (tmp_* are scratch). */
static void SORT_NAME(lsd_sort)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned bits,
                                uint64_t *tmp_keys, SORT_VAL *tmp_vals)
{
    if (n <= 32) {
        SORT_NAME(insertion_sort)(keys, vals, n);
        return;
    }
    unsigned passes = (bits + DIGIT_BITS - 1) / DIGIT_BITS;
    size_t count[PASSES][BUCKETS];
    memset(count, 0, passes * sizeof count[0]);
    for (size_t i = 0; i < n; i++)
        for (unsigned p = 0; p < passes; p++)
            count[p][digit(keys[i], p)]++;

    uint64_t *src_k = keys, *dst_k = tmp_keys;
    SORT_VAL *src_v = vals, *dst_v = tmp_vals;
    for (unsigned p = 0; p < passes; p++) {
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
    if (src_k != keys) {
        memcpy(keys, src_k, n * sizeof *keys);
        if (vals)
            memcpy(vals, src_v, n * sizeof *vals);
    }
}

/* Sorts keys[0..n) on their low `bits` bits (the bits above are equal in every key), in place.
 * Beyond what fits in cache, one stable pass on the top digit splits the input into buckets that
 * do, so that only that pass and the copy back move data through DRAM, where an LSD sort over
 * every digit would stream the whole array through DRAM once per digit. Each bucket is sorted
 * on the digits below with the same stable passes, so the whole is the one stable order. */
static void SORT_NAME(msd_sort)(uint64_t *keys, SORT_VAL *vals, size_t n, unsigned bits,
                                uint64_t *tmp_keys, SORT_VAL *tmp_vals)
{
    if (n <= MSD_MIN || bits <= DIGIT_BITS) {
        SORT_NAME(lsd_sort)(keys, vals, n, bits, tmp_keys, tmp_vals);
        return;
    }
    unsigned shift = bits - DIGIT_BITS;
    size_t count[BUCKETS] = {0};
    for (size_t i = 0; i < n; i++)
        count[(keys[i] >> shift) & (BUCKETS - 1u)]++;
    if (count[(keys[0] >> shift) & (BUCKETS - 1u)] == n) { /* nothing to split on this digit */
        SORT_NAME(msd_sort)(keys, vals, n, shift, tmp_keys, tmp_vals);
        return;
    }
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
        /* sorted in tmp, with keys as scratch, on the digits below this one (the bits above
         * are equal within the bucket, so the passes that see them order nothing wrong) */
        SORT_NAME(msd_sort)
        (tmp_keys + s, vals ? tmp_vals + s : NULL, m, shift, keys + s, vals ? vals + s : NULL);
        memcpy(keys + s, tmp_keys + s, m * sizeof *keys);
        if (vals)
            memcpy(vals + s, tmp_vals + s, m * sizeof *vals);
    }
}
