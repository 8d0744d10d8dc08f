/* SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB */
/*
 * libgift: private definitions of the gift libibverbs provider.
 *
 * The provider is thin: every verb is a generic uverbs command executed by
 * the rdma_gift kernel driver. The state kept in user space is what
 * alloc_ucontext returned, and the extended-verbs state of QPs and CQs
 * (gift_ex.c): work requests built between ibv_wr_start() and
 * ibv_wr_complete(), completions fetched but not yet read.
 */
#ifndef GIFT_H
#define GIFT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <infiniband/driver.h>
#include <infiniband/kern-abi.h>
#include <infiniband/verbs.h>

#include <rdma/gift-abi.h>
/* Generated from rdma/gift-abi.h by rdma-core's make_abi_structs.py */
#include <kernel-abi/gift-abi.h>

/*
 * GET_CONTEXT: no driver request, struct gift_alloc_ucontext_resp as driver
 * response (udata inlen 0, outlen sizeof(struct gift_alloc_ucontext_resp)).
 */
DECLARE_DRV_CMD(gift_get_context, IB_USER_VERBS_CMD_GET_CONTEXT,
		empty, gift_alloc_ucontext_resp);
/* CQs: struct gift_create_cq_req in, struct gift_cq_ring_resp out. */
DECLARE_DRV_CMD(gift_create_cq, IB_USER_VERBS_CMD_CREATE_CQ,
		gift_create_cq_req, gift_cq_ring_resp);
DECLARE_DRV_CMD(gift_create_cq_ex, IB_USER_VERBS_EX_CMD_CREATE_CQ,
		gift_create_cq_req, gift_cq_ring_resp);
DECLARE_DRV_CMD(gift_resize_cq, IB_USER_VERBS_CMD_RESIZE_CQ,
		gift_resize_cq_req, gift_cq_ring_resp);
/* QPs (plain and extended): struct gift_create_qp_req in, _resp out. */
DECLARE_DRV_CMD(gift_cmd_create_qp, IB_USER_VERBS_CMD_CREATE_QP,
		gift_create_qp_req, gift_create_qp_resp);
/* SRQs: a mapped one's ring, and the commit of its resize. */
DECLARE_DRV_CMD(gift_cmd_create_srq, IB_USER_VERBS_CMD_CREATE_SRQ,
		gift_create_srq_req, gift_wq_ring_resp);
DECLARE_DRV_CMD(gift_cmd_modify_srq, IB_USER_VERBS_CMD_MODIFY_SRQ,
		gift_modify_srq_req, empty);

struct gift_device {
	struct verbs_device ibv_dev;
};

struct gift_context {
	struct verbs_context ibv_ctx;
	uint32_t abi_version;	/* from gift_alloc_ucontext_resp */
	uint32_t dev_caps;	/* enum gift_dev_cap */
	bool map_cqs;		/* create CQs mapped (GIFT_MAPPED_CQ=0: no) */
	bool map_wqs;		/* create QPs' queues mapped (GIFT_MAPPED_WQ=0: no) */
	char fw_ver[64];	/* sysfs fw_ver of the device, may be empty */
	/*
	 * The CQs with a ring, so that closing the context unmaps the rings
	 * of CQs the application left: each mapping holds the uverbs file,
	 * and with it every object of the context, open.
	 */
	pthread_mutex_t mapped_lock;
	struct list_head mapped_cqs;	/* of gift_cq.mapped.entry */
	struct list_head mapped_qps;	/* of gift_qp.mapped.entry */
	struct list_head mapped_srqs;	/* of gift_srq.mapped.entry */
};

/*
 * An object with rings on one of its context's lists above (@on), under
 * the context's mapped_lock: gift_ctx_track() and gift_ctx_untrack().
 */
struct gift_mapped {
	struct list_node entry;
	bool on;
};

static inline struct gift_context *to_gctx(struct ibv_context *ibctx)
{
	return container_of(ibctx, struct gift_context, ibv_ctx.context);
}

/*
 * A completion queue. Every CQ has this shape, whether made by
 * ibv_create_cq() or ibv_create_cq_ex(): ibv_poll_cq() and the
 * start_poll/next_poll API of an extended CQ read the same stream, and
 * completions fetched from the kernel for one are never lost to the other.
 *
 * @lock serialises every reader of the CQ (poll_cq, and the whole
 * start_poll ... end_poll of an extended CQ), resize_cq and the discard
 * of a destroyed QP's completions, unless the CQ was created
 * IBV_CREATE_CQ_ATTR_SINGLE_THREADED. It protects @wc, @head, @count,
 * @cur, @ring, @ring_len, @ring_size and @cons.
 *
 * @ring is the CQ's mapped completion ring (struct gift_cq_ring in
 * rdma/gift-abi.h), or NULL where the kernel has none (then poll_cq is
 * the kernel's command). @cons is our consumer index, stored to the
 * ring's after each poll; @ring_size is the number of slots the kernel
 * answered, kept here so that a corrupted header cannot make us read
 * outside the mapping.
 */
#define GIFT_CQ_BATCH	16

struct gift_cq {
	struct verbs_cq vcq;
	pthread_mutex_t lock;
	bool locked;			/* false when single-threaded */
	struct ibv_wc wc[GIFT_CQ_BATCH]; /* fetched, wc[head..head+count) unread */
	unsigned int head;
	unsigned int count;
	struct ibv_wc *cur;		/* the completion start/next_poll returned */
	struct gift_cq_ring *ring;
	struct gift_mapped mapped;	/* on mapped_cqs: it got a ring */
	size_t ring_len;
	uint32_t ring_size;
	uint32_t cons;
};

static inline struct gift_cq *to_gcq(struct ibv_cq *ibcq)
{
	return container_of(ibcq, struct gift_cq, vcq.cq);
}

struct gift_wr_batch;

/*
 * A mapped work queue (struct gift_wq_ring in rdma/gift-abi.h), see
 * gift_wq.c. @ring is NULL for a queue that is not mapped (its posts are
 * the kernel's commands). @lock serialises the posters and protects
 * @prod, our producer index, stored to the ring's after each post. The
 * size, stride and caps are the ones the kernel answered, kept here so
 * that a corrupted header cannot make us write outside the mapping.
 */
struct gift_wq {
	struct gift_wq_ring *ring;
	void *slots;
	size_t len;
	uint32_t size;
	uint32_t stride;
	uint32_t prod;
	uint32_t max_sge;
	uint32_t max_inline;
	pthread_mutex_t lock;
};

/*
 * A queue pair. @batch exists for QPs created with send_ops_flags (the
 * ibv_wr_*() API); see gift_ex.c. @state is the state the application
 * last moved the QP to (the kernel moves it on its own to ERR only), for
 * the posts that fail in RESET, INIT and RTR without a system
 * call. A QP with a mapped queue is on its context's mapped_qps.
 */
struct gift_qp {
	struct verbs_qp vqp;
	struct gift_wr_batch *batch;
	struct gift_wq sq;
	struct gift_wq rq;
	enum ibv_qp_state state;
	struct gift_mapped mapped;
};

static inline struct gift_qp *to_gqp(struct ibv_qp *ibqp)
{
	return container_of(ibqp, struct gift_qp, vqp.qp);
}

/*
 * A shared receive queue: @wq is its ring when mapped (then it is on its
 * context's mapped_srqs); @wq.lock also serialises a resize.
 */
struct gift_srq {
	struct ibv_srq ibv_srq;
	struct gift_wq wq;
	struct gift_mapped mapped;
};

static inline struct gift_srq *to_gsrq(struct ibv_srq *ibsrq)
{
	return container_of(ibsrq, struct gift_srq, ibv_srq);
}

/*
 * The backing of the extended API, implemented in gift.c: the kernel's
 * post_send command, and the CQ's mapped ring (or, for a CQ without
 * one, the poll_cq command). Mapped send queues would replace the first
 * and nothing else.
 *
 * gift_qp_post_send() posts a chain of send WRs: 0, or a positive errno
 * with *bad_wr the first WR not posted (those before it are posted).
 * gift_cq_poll() fetches up to @n completions: their number, or -1 with
 * errno set.
 */
int gift_qp_post_send(struct gift_qp *qp, struct ibv_send_wr *wr,
		      struct ibv_send_wr **bad_wr);
/*
 * gift_qp_post_ex() posts one FLUSH or ATOMIC WRITE through the driver's
 * QP method (the post_send command cannot carry them): 0 or a positive
 * errno. gift_qp_ex_has_wr_flush(): the loaded libibverbs' struct
 * ibv_qp_ex has wr_flush, so the provider may set it.
 */
int gift_qp_post_ex(struct gift_qp *qp, const struct gift_post_ex_wr *wr);
bool gift_qp_ex_has_wr_flush(void);
/* Was @qp made by this provider? */
bool gift_qp_is_ours(struct ibv_qp *qp);
int gift_cq_poll(struct gift_cq *cq, int n, struct ibv_wc *wc);
/* Takes and releases @cq's lock where it has one (gift_ex.c). */
void gift_cq_lock(struct gift_cq *cq);
void gift_cq_unlock(struct gift_cq *cq);
/* Flags @qp extended (VERBS_QP_EX) where the loaded libibverbs looks. */
int gift_qp_mark_ex(struct gift_qp *qp);

/*
 * gift_wq.c: mapped work queues. gift_wq_map() maps the ring @resp
 * describes (none when its length is 0): 0 or a positive errno.
 * gift_wq_post_send() and gift_wq_post_recv() post through a mapped
 * queue, as ibv_post_send() and ibv_post_recv() do.
 */
int gift_wq_map(struct gift_wq *wq, int cmd_fd,
		const struct gift_wq_ring_resp *resp, bool send,
		uint32_t max_sge, uint32_t max_inline);
void gift_wq_unmap(struct gift_wq *wq);
int gift_wq_post_send(struct gift_qp *qp, struct ibv_send_wr *wr,
		      struct ibv_send_wr **bad_wr);
int gift_wq_post_recv(struct gift_qp *qp, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr);
int gift_wq_post_srq_recv(struct gift_srq *srq, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad_wr);
int gift_wq_resize_srq(struct gift_srq *srq, struct ibv_srq_attr *attr,
		       int attr_mask);
/* gift.c: BIND_MW and LOCAL_INV through the driver's method. */
bool gift_wr_is_mw(const struct ibv_send_wr *wr);
int gift_post_mw_wr(struct ibv_qp *qp, const struct ibv_send_wr *wr);

/* gift_ex.c: the extended verbs. Positive errnos. */
int gift_cq_ex_check(const struct ibv_cq_init_attr_ex *attr);
void gift_cq_ex_init(struct gift_cq *cq, const struct ibv_cq_init_attr_ex *attr);
int gift_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc);
int gift_qp_ex_check(const struct ibv_qp_init_attr_ex *attr,
		     uint32_t dev_caps);
int gift_qp_ex_init(struct gift_qp *qp, const struct ibv_qp_init_attr_ex *attr);
void gift_qp_ex_fini(struct gift_qp *qp);

#endif /* GIFT_H */
