/* cdiffusers public API: include this one header. */
#ifndef CDIFFUSERS_H
#define CDIFFUSERS_H

#include "cdiffusers/core.h"
#include "cdiffusers/rng.h"
#include "cdiffusers/pipeline.h"

#endif
