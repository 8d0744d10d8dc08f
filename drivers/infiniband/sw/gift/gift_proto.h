/* SPDX-License-Identifier: GPL-2.0 */
/*
 * rdma_gift RoCEv2 protocol engine: the interface the queue pair code
 * calls. The engine owns everything between a posted work request and
 * its completion (packetisation, PSNs, ACKs, retries, the responder);
 * gift_qp.c owns the QP object, its state machine and its queues.
 *
 * Calling contexts: every hook is called in process context without the
 * QP's locks held, except where noted.
 */
#ifndef GIFT_PROTO_H
#define GIFT_PROTO_H

#include <rdma/ib_verbs.h>

struct gift_qp;

/**
 * struct gift_qp_proto - per-QP engine state, embedded in struct gift_qp
 * @reserved: placeholder until the engine lands
 */
struct gift_qp_proto {
	u32 reserved;
};

/* After the QP object is initialised, before it is published. */
int gift_proto_qp_init(struct gift_qp *qp);
/* After a successful modify_qp, with the new attributes applied. */
void gift_proto_qp_modified(struct gift_qp *qp, const struct ib_qp_attr *attr,
			    int mask);
/* Send WQEs were queued on a QP in RTS (or SQD): start sending them. */
void gift_proto_kick(struct gift_qp *qp);
/* Before the QP is torn down: stop timers and work, drop MR references. */
void gift_proto_qp_destroy(struct gift_qp *qp);

#endif /* GIFT_PROTO_H */
