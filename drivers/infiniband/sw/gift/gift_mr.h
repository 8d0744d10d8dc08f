/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift memory regions: user MRs pinned by gift_umem, the DMA MR, keys.
 */
#ifndef GIFT_MR_H
#define GIFT_MR_H

#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

struct gift_dev;

/**
 * struct gift_mr_table - per-device lookup table
 * @keys: MRs by key index, see gift_mr.c
 */
struct gift_mr_table {
	struct xarray keys;
};

void gift_mr_table_init(struct gift_mr_table *table);
/* Called from dealloc_driver: every object is gone by then. */
void gift_mr_table_destroy(struct gift_mr_table *table);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_mr_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_mr_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_MR_H */
