/* Strings for the SR_ERR_* codes, generated from the same list as the enum. */
#include "sr_err.h"

const char *sr_strerror(int err)
{
    switch (err) {
    case SR_OK:
        return "success";
#define SR_ERR_CASE_(name, msg)                                                \
    case SR_ERR_##name:                                                        \
        return msg;
        SR_ERRNO_MAP(SR_ERR_CASE_)
#undef SR_ERR_CASE_
    default:
        return "unknown error";
    }
}
