/* The CLI's float printing (tools/cli.c, compiled into this test): the
 * abs_sum line prints the shortest decimal that reads back as the same
 * float32, as numpy's repr does, so a user can paste it into Python and get
 * the same number.  About 1.5 % of floats need 9 significant digits. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static uint32_t next(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(*s >> 32);
}

static int digits(const char *s) {
    int d = 0, lead = 1;
    for (; *s && *s != 'e' && *s != 'E'; s++) {
        if (*s < '0' || *s > '9') continue;
        if (lead && *s == '0') continue;
        lead = 0;
        d++;
    }
    return d;
}

static void shortest_round_trip(void **state) {
    (void)state;
    uint64_t seed = 7;
    int nine = 0, n = 0;
    for (int i = 0; i < 200000; i++) {
        uint32_t bits = next(&seed) & 0x7fffffffu;
        float v;
        memcpy(&v, &bits, 4);
        if (!isfinite(v)) continue;
        n++;
        char buf[64], shorter[400];
        cli_format_f32(buf, sizeof buf, v);
        if ((float)strtod(buf, NULL) != v) fail_msg("%.9g printed as %s does not read back", (double)v, buf);
        int d = digits(buf);
        nine += d == 9;
        if (d > 1) {
            snprintf(shorter, sizeof shorter, "%.*g", d - 1, (double)v);
            if ((float)strtod(shorter, NULL) == v) fail_msg("%.9g printed as %s, but %s reads back too", (double)v, buf, shorter);
        }
    }
    /* abs_sum-like values too: sums of many values in [0, 1] */
    for (int i = 0; i < 20000; i++) {
        float v = (float)(next(&seed) % 100000000u) / 997.0f;
        char buf[64];
        cli_format_f32(buf, sizeof buf, v);
        if ((float)strtod(buf, NULL) != v) fail_msg("%.9g printed as %s does not read back", (double)v, buf);
    }
    print_message("%d of %d random floats needed 9 digits\n", nine, n);
    assert_true(nine > n / 200); /* the sweep reaches the 9-digit case (about 1.5 %) */
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(shortest_round_trip)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
