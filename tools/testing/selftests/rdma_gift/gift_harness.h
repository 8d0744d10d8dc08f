/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kselftest_harness.h for the rdma_gift selftests: the harness plus the
 * GIFT_SLOW knob (gift_util.h) applied to every test's timeout, so that a
 * slow kernel (the debug lane: KASAN, lockdep, kmemleak under TCG) gets
 * the time it needs and no test is shortened or skipped for it.
 *
 * The harness registers its tests from constructors of priority
 * KSELFTEST_PRIO_TEST and KSELFTEST_PRIO_XFAIL; this one runs after both.
 */
#ifndef GIFT_HARNESS_H
#define GIFT_HARNESS_H

#include "kselftest_harness.h"
#include "gift_util.h"

static void __attribute__((constructor(KSELFTEST_PRIO_XFAIL + 1)))
gift_harness_scale_timeouts(void)
{
	struct __fixture_metadata *f;
	struct __test_metadata *t;
	int slow = gift_slow();

	if (slow == 1)
		return;
	for (f = __fixture_list; f; f = f->next)
		for (t = f->tests; t; t = t->next)
			t->timeout *= slow;
}

#endif /* GIFT_HARNESS_H */
