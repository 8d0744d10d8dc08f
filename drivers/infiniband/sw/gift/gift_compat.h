/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel API differences between the kernels rdma_gift builds against.
 *
 * The module is developed against Debian's 6.12 and must also build
 * against the newest upstream kernel for submission. The rest of the
 * driver is written against one API; every difference is bridged here and
 * nowhere else.
 *
 * Detect a difference by feature, not by LINUX_VERSION_CODE: have the
 * module's Kbuild grep the target kernel's headers and define
 * GIFT_HAVE_<feature>, so distribution backports are handled too, and
 * write the shim as a static inline or macro named for what it does,
 * under one #ifdef GIFT_HAVE_<feature> block.
 *
 * Nothing the driver uses today differs between 6.12 and newer kernels.
 */
#ifndef GIFT_COMPAT_H
#define GIFT_COMPAT_H

#endif /* GIFT_COMPAT_H */
