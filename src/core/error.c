/* Status table, error sink and notices. */
#include "cdiffusers/core.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *cdf_status_name(cdf_status s) {
    switch (s) {
#define CDF_X_NAME(name, value, msg) case CDF_##name: return #name;
        CDF_STATUS_TABLE(CDF_X_NAME)
#undef CDF_X_NAME
    }
    return "ERR_UNKNOWN";
}

const char *cdf_status_message(cdf_status s) {
    switch (s) {
#define CDF_X_MSG(name, value, msg) case CDF_##name: return msg;
        CDF_STATUS_TABLE(CDF_X_MSG)
#undef CDF_X_MSG
    }
    return "unknown status";
}

cdf_status cdf_error_set(cdf_error *e, cdf_status s, const char *fmt, ...) {
    if (!e) return s;
    e->status = s;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof e->msg, fmt, ap);
    va_end(ap);
    return s;
}

cdf_status cdf_error_prefix(cdf_error *e, const char *fmt, ...) {
    if (!e) return CDF_ERR_INTERNAL;
    char pre[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    size_t lp = strlen(pre), cap = sizeof e->msg;
    if (lp + 3 > cap) lp = cap - 3;
    size_t lo = strlen(e->msg);
    if (lp + 2 + lo + 1 > cap) lo = cap - lp - 3; /* keep the tail of the old message short of the end */
    memmove(e->msg + lp + 2, e->msg, lo);
    memcpy(e->msg, pre, lp);
    e->msg[lp] = ':';
    e->msg[lp + 1] = ' ';
    e->msg[lp + 2 + lo] = '\0';
    return e->status;
}

void cdf_notice(cdf_error *e, cdf_notice_level level, const char *fmt, ...) {
    if (!e || !e->on_notice) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    e->on_notice(level, buf, e->notice_user);
}

void cdf_error_clear(cdf_error *e) {
    if (!e) return;
    e->status = CDF_OK;
    e->msg[0] = '\0';
}
