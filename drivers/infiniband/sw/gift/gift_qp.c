// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift queue pairs: creation, the state machine, posting, flushing.
 */

#include "gift.h"

/**
 * gift_qp_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_qp_init_attr(struct ib_device_attr *attr)
{
}

/**
 * gift_qp_table_init() - initialise an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_qp_table_init(struct gift_qp_table *table)
{
	xa_init_flags(&table->qpns, XA_FLAGS_ALLOC);
}

/**
 * gift_qp_table_destroy() - release an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_qp_table_destroy(struct gift_qp_table *table)
{
	WARN_ON(!xa_empty(&table->qpns));
	xa_destroy(&table->qpns);
}

const struct ib_device_ops gift_qp_ops = {
};
