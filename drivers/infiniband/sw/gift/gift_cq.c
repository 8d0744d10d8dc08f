// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift completion queues.
 */

#include "gift.h"

/**
 * gift_cq_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_cq_init_attr(struct ib_device_attr *attr)
{
}

const struct ib_device_ops gift_cq_ops = {
};
