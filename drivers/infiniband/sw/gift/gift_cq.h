/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift completion queues.
 */
#ifndef GIFT_CQ_H
#define GIFT_CQ_H

#include <rdma/ib_verbs.h>

struct gift_dev;

/* Partial ops table, merged into the device's by ib_set_device_ops(). */
extern const struct ib_device_ops gift_cq_ops;

/* Fills the device attributes this file's objects are limited by. */
void gift_cq_init_attr(struct ib_device_attr *attr);

#endif /* GIFT_CQ_H */
