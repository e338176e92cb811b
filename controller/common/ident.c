/*
 * The identifier rule (see ident.h): one definition, so the order format, the registry, the bus
 * topics and the certificate script cannot drift apart again.
 */
#include "common/ident.h"

#include <stddef.h>

static int id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '-';
}

int ctl_id_valid(const char *s)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if (n >= CTL_ID_MAX || !id_char((unsigned char)s[n]))
            return 0;
    return n > 0;
}
