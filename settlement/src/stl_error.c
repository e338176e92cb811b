/*
 * The settlement library's error texts: one table for every module's return codes.
 */
#include "mgx/stl_error.h"

const char *stl_strerror(int code)
{
    switch (code) {
    case STL_OK:
        return "success";
    case STL_E_INVAL:
        return "invalid argument";
    case STL_E_OVERFLOW:
        return "energy or amount overflows 64-bit integers";
    case STL_E_NOMEM:
        return "out of memory";
    case STL_E_TOO_MANY:
        return "more trades or participants than allowed";
    case STL_E_TRADE:
        return "malformed trade";
    case STL_E_METER:
        return "malformed or duplicate metered record";
    case STL_E_ENCODING:
        return "not a canonical encoding";
    case STL_E_SIGNATURE:
        return "signature does not verify";
    case STL_E_PROOF:
        return "Merkle proof does not verify";
    case STL_E_NOTE:
        return "malformed signed note";
    case STL_E_NODE:
        return "Merkle node unavailable";
    default:
        return "unknown error";
    }
}
