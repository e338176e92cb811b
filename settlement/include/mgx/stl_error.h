/*
 * mgx settlement: the return codes shared by every settlement module (imbalance, reconcile,
 * merkle, transactions, blocks, checkpoints). 0 is success; every failure has its own negative
 * code and stl_strerror names it. One list so that a caller handling any settlement call needs
 * one switch.
 */
#ifndef MGX_STL_ERROR_H
#define MGX_STL_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    STL_OK = 0,
    STL_E_INVAL = -1,      /* NULL pointer, negative price, bad argument */
    STL_E_OVERFLOW = -2,   /* a difference, sum or amount does not fit int64 */
    STL_E_NOMEM = -3,      /* allocation failed */
    STL_E_TOO_MANY = -4,   /* more trades or participants than the object's bound */
    STL_E_TRADE = -5,      /* a trade is malformed (see stl_error_at) */
    STL_E_METER = -6,      /* a metered record is malformed or duplicated */
    STL_E_ENCODING = -7,   /* bytes are not a canonical encoding of the expected record */
    STL_E_SIGNATURE = -8,  /* a signature does not verify (or is not exactly 64 bytes) */
    STL_E_PROOF = -9,      /* a Merkle proof does not verify */
    STL_E_NOTE = -10,      /* a signed note / checkpoint is malformed */
    STL_E_NODE = -11       /* a Merkle node source failed to supply a node */
};

/* Returns a static English description of a return code; never NULL. */
const char *stl_strerror(int code);

#ifdef __cplusplus
}
#endif

#endif
