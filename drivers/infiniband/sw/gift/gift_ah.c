// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift address handles.
 */

#include "gift.h"

/**
 * gift_ah_init_attr() - limits of this file's objects
 * @attr: device attributes being initialised
 */
void gift_ah_init_attr(struct ib_device_attr *attr)
{
}

const struct ib_device_ops gift_ah_ops = {
};
