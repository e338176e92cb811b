/*
 * Internal: the sorts the clearing engine is bounded by. Clearing a book is a sort plus linear
 * passes, so the sort is where the time goes; an LSD radix sort on 64-bit keys beats a
 * comparison sort by several times on the 1M-order books the engine is sized for.
 */
#ifndef MGX_MARKET_SORT_H
#define MGX_MARKET_SORT_H

#include <stddef.h>
#include <stdint.h>

/* Sorts keys ascending (stable), carrying vals along when vals is non-NULL. tmp_keys and
 * tmp_vals (the latter only if vals is non-NULL) are caller scratch of n elements each. Digit
 * passes in which every key has the same digit are skipped, so narrow key ranges are cheap. */
void mkt__radix_sort(uint64_t *keys, uint32_t *vals, size_t n, uint64_t *tmp_keys,
                     uint32_t *tmp_vals);

/* The same for keys the caller knows to be below 2^bits (bits <= 64): it spares the pass over
 * the keys that mkt__radix_sort makes to find their width. A key at or above 2^bits is a
 * caller bug (it would be sorted on its low bits only). */
void mkt__radix_sort_bits(uint64_t *keys, uint32_t *vals, size_t n, unsigned bits,
                          uint64_t *tmp_keys, uint32_t *tmp_vals);

/* mkt__radix_sort_bits with a 64-bit payload (vals and tmp_vals non-NULL). */
void mkt__radix_sort_bits64(uint64_t *keys, uint64_t *vals, size_t n, unsigned bits,
                            uint64_t *tmp_keys, uint64_t *tmp_vals);

/* Number of bits needed to represent v (0 for 0). */
unsigned mkt__bit_width(uint64_t v);

#endif
