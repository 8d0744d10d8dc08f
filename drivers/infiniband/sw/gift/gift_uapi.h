/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift driver-specific uverbs methods, see gift_uapi.c.
 */
#ifndef GIFT_UAPI_H
#define GIFT_UAPI_H

#include <rdma/uverbs_ioctl.h>

/* Set as ib_device.driver_def of every gift device. */
extern const struct uapi_definition gift_uapi_defs[];

#endif /* GIFT_UAPI_H */
