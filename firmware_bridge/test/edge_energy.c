/* Host driver of the node-side energy model (fa_energy_anomaly.h + fa_energy_features.h):
 * reads "ts value" lines on stdin (a window's start, UNIX s, and its mean power), prints one
 * line per input: "-" while no score, else the score (%.17g: exact) and the policy's event
 * (1 alarm, -1 clear, 0 none). tests/test_firmware_model.py compares it with the gateway's
 * Python reference. */
#include <stdio.h>
#include "fa_energy_anomaly.h"
#include "fa_energy_features.h"

static fa_ef_state state;   /* 12 KiB: static, as on a node */

int main(void)
{
    double ts, value, row[FA_EF_WINDOW];
    float y[FA_ENERGY_ANOMALY_N_OUTPUTS];
    fa_ef_init(&state);
    while (scanf("%lf %lf", &ts, &value) == 2) {
        if (!fa_ef_update(&state, ts, value, row)) {
            printf("-\n");
            continue;
        }
        FA_EF_MODEL_INT8(row, y);
        double score = fa_ef_score(y, FA_ENERGY_ANOMALY_N_OUTPUTS);
        printf("%.17g %d\n", score, fa_ef_policy(&state, score));
    }
    return 0;
}
