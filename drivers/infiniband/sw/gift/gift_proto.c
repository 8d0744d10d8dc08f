// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift RoCEv2 protocol engine (see gift_proto.h). Until the engine
 * lands, queued send WQEs wait for the QP to be flushed.
 */

#include "gift.h"

/**
 * gift_proto_qp_init() - set up engine state of a new QP
 * @qp: QP being created
 *
 * Return: 0 or a negative errno.
 */
int gift_proto_qp_init(struct gift_qp *qp)
{
	return 0;
}

/**
 * gift_proto_qp_modified() - react to new QP attributes
 * @qp: QP just modified
 * @attr: the attributes applied
 * @mask: which of @attr were applied
 */
void gift_proto_qp_modified(struct gift_qp *qp, const struct ib_qp_attr *attr,
			    int mask)
{
}

/**
 * gift_proto_kick() - start processing newly posted send WQEs
 * @qp: QP in RTS or SQD
 */
void gift_proto_kick(struct gift_qp *qp)
{
}

/**
 * gift_proto_qp_destroy() - stop all engine activity on a QP
 * @qp: QP being destroyed
 */
void gift_proto_qp_destroy(struct gift_qp *qp)
{
}
