/*
 * Internal: the controller's one growing array. The store's readers call back once per row, and
 * the config parsers once per entry, so their callers collect into arrays that double as they
 * fill, each up to a bound of its own: every buffer is bounded. Pure (realloc only).
 */
#ifndef MGX_CTL_GROW_H
#define MGX_CTL_GROW_H

#include <stddef.h>

/* Makes the array *v of *cap elements of size bytes hold element n (0-based): doubles *cap
 * (from 16) while n is past it, never beyond max elements. 0, or -1 when n is at or past max
 * or on no memory (*v and *cap are then unchanged). */
int ctl_grow(void **v, size_t *cap, size_t n, size_t size, size_t max);

#endif
