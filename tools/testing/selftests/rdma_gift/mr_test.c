// SPDX-License-Identifier: GPL-2.0
/*
 * Placeholder: filled by the subsystem's author.
 */
#include "gift_util.h"
#include "kselftest_harness.h"

TEST_HARNESS_MAIN
