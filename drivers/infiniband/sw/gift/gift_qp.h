/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift queue pairs: creation, the state machine, posting, flushing.
 */
#ifndef GIFT_QP_H
#define GIFT_QP_H

#include <linux/xarray.h>
#include <rdma/ib_verbs.h>

struct gift_dev;

/**
 * struct gift_qp_table - per-device lookup table
 * @qpns: QPs by QP number, see gift_qp.c
 */
struct gift_qp_table {
	struct xarray qpns;
};

void gift_qp_table_init(struct gift_qp_table *table);
/* Called from dealloc_driver: every object is gone by then. */
void gift_qp_table_destroy(struct gift_qp_table *table);

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_qp_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_qp_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_QP_H */
