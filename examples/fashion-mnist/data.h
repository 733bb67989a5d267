/* Loads the Fashion-MNIST idx.gz files (as Debian's dataset-fashion-mnist ships them). */
#ifndef FM_DATA_H
#define FM_DATA_H

#include <stdint.h>

#include "allreduce.h"

#define FM_PIXELS 784
#define FM_CLASSES 10

typedef struct fm_set {
    int n;
    uint8_t *images; /* n * FM_PIXELS, row-major, owned */
    uint8_t *labels; /* n, owned */
} fm_set;

/* Loads <dir>/<prefix>-images-idx3-ubyte.gz and <dir>/<prefix>-labels-idx1-ubyte.gz
 * (prefix "train" or "t10k"). Free with fm_set_free. */
int fm_set_load(fm_set *set, const char *dir, const char *prefix, fm_err *err);
void fm_set_free(fm_set *set);

#endif
