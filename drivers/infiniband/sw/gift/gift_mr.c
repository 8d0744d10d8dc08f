// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift memory regions: user MRs pinned by gift_umem, the DMA MR, keys.
 */

#include "gift.h"

/**
 * gift_mr_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_mr_init_attr(struct ib_device_attr *attr)
{
}

/**
 * gift_mr_table_init() - initialise an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_mr_table_init(struct gift_mr_table *table)
{
	xa_init_flags(&table->keys, XA_FLAGS_ALLOC);
}

/**
 * gift_mr_table_destroy() - release an empty table
 * @table: table embedded in struct gift_dev
 */
void gift_mr_table_destroy(struct gift_mr_table *table)
{
	WARN_ON(!xa_empty(&table->keys));
	xa_destroy(&table->keys);
}

const struct ib_device_ops gift_mr_ops = {
};
