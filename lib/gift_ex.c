// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libgift: the extended verbs, ibv_wr_*() on QPs made by ibv_create_qp_ex()
 * with send_ops_flags, and start_poll/next_poll/end_poll on CQs made by
 * ibv_create_cq_ex().
 *
 * Both are layered over two backing calls of gift.h, gift_qp_post_send()
 * and gift_cq_poll(): the kernel's post_send command, and the CQ's
 * mapped ring (see gift.h). Mapped send queues would replace the first,
 * not this file.
 *
 * Send side. Between ibv_wr_start() and ibv_wr_complete() the builders and
 * setters fill a batch of struct ibv_send_wr owned by the QP (inline data
 * is copied at once, so the caller may reuse its buffer as soon as the
 * setter returns). The first error found while building (a setter with no
 * WR, too many SGEs or inline bytes, a batch larger than the send queue,
 * out of memory) is kept and returned by ibv_wr_complete(), which then
 * posts nothing. ibv_wr_complete() also checks every WR as the kernel will
 * (opcode against the QP type, atomic length, UD address and MTU) before
 * it posts the batch as one chain; ibv_wr_abort() drops it. What the kernel
 * can still refuse after these checks is a WR that finds the send queue
 * full (completions not yet reaped) or the QP out of RTS/SQD: when that is
 * the first WR nothing is posted; when it is a later one, the WRs before it
 * were posted and ibv_wr_complete() returns the kernel's errno all the same
 * (a mapped ring would publish the batch at once; the command path cannot
 * take WRs back).
 *
 * Opcodes: those the kernel executes for user QPs. RC: SEND, SEND_WITH_IMM,
 * SEND_WITH_INV, RDMA_WRITE, RDMA_WRITE_WITH_IMM, RDMA_READ, the two
 * atomics, ATOMIC_WRITE, FLUSH, BIND_MW and LOCAL_INV (the last four
 * posted through the driver's own QP methods: gift_qp_post_send() hands
 * BIND_MW and LOCAL_INV to theirs); UC: SEND, SEND_WITH_IMM, RDMA_WRITE
 * and RDMA_WRITE_WITH_IMM; UD: SEND and SEND_WITH_IMM. TSO is not
 * executed, so asking for it in send_ops_flags fails QP creation with
 * EOPNOTSUPP, as do send_ops_flags on a QP type that has no send queue
 * here. ATOMIC_WRITE and FLUSH need the driver's QP method
 * (GIFT_DEV_CAP_POST_EX): the post_send command cannot carry them, so
 * ibv_wr_complete() posts the batch in pieces, in order: the WRs up to
 * one of them as one chain, then it alone through the method, and so on.
 * IBV_QP_EX_WITH_FLUSH is offered only when the loaded libibverbs' struct
 * ibv_qp_ex has wr_flush (45 and later); giftdv_wr_flush() builds the same
 * WR with any release.
 *
 * Completion side. start_poll fetches up to GIFT_CQ_BATCH completions and
 * next_poll serves the rest of them before it fetches again; completions
 * fetched but unread when end_poll is called stay in the CQ for the next
 * start_poll or ibv_poll_cq(). The standard completion fields are
 * supported; a completion timestamp (the device has no clock: its
 * hca_core_clock is 0), CVLAN, flow tag or tag matching information fails
 * CQ creation with EOPNOTSUPP.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gift.h"
#include "giftdv.h"

/* Message length limit of the device, checked again by the kernel */
#define GIFT_MAX_MSG	(1ULL << 31)
/* The smallest MTU: a UD WR no longer than this needs no port query */
#define GIFT_MIN_MTU	256

/* Completions */

enum {
	GIFT_SUP_WC_FLAGS = IBV_WC_STANDARD_FLAGS,
	GIFT_SUP_CQ_COMP_MASK = IBV_CQ_INIT_ATTR_MASK_FLAGS |
				IBV_CQ_INIT_ATTR_MASK_PD,
	GIFT_SUP_CQ_FLAGS = IBV_CREATE_CQ_ATTR_SINGLE_THREADED,
};

/**
 * gift_cq_ex_check() - can a CQ with these extended attributes be made
 * @attr: ibv_create_cq_ex() attributes
 *
 * Return: 0; EINVAL for comp_mask bits this library does not know;
 * EOPNOTSUPP for completion fields other than the standard ones, a parent
 * domain, or creation flags other than single-threaded.
 */
int gift_cq_ex_check(const struct ibv_cq_init_attr_ex *attr)
{
	if (attr->comp_mask & ~GIFT_SUP_CQ_COMP_MASK)
		return EINVAL;
	if (attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_PD)
		return EOPNOTSUPP;
	if ((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
	    (attr->flags & ~GIFT_SUP_CQ_FLAGS))
		return EOPNOTSUPP;
	if (attr->wc_flags & ~(uint64_t)GIFT_SUP_WC_FLAGS)
		return EOPNOTSUPP;
	return 0;
}

void gift_cq_lock(struct gift_cq *cq)
{
	if (cq->locked)
		pthread_mutex_lock(&cq->lock);
}

void gift_cq_unlock(struct gift_cq *cq)
{
	if (cq->locked)
		pthread_mutex_unlock(&cq->lock);
}

static struct gift_cq *to_gcq_ex(struct ibv_cq_ex *cq_ex)
{
	return container_of(cq_ex, struct gift_cq, vcq.cq_ex);
}

/*
 * The next unread completion: from the batch, else a new batch from the
 * backing. 0, ENOENT when there is none, or an errno.
 */
static int gift_cq_next(struct gift_cq *cq)
{
	int n;

	if (!cq->count) {
		n = gift_cq_poll(cq, GIFT_CQ_BATCH, cq->wc);
		if (n < 0)
			return errno ? errno : EIO;
		if (!n)
			return ENOENT;
		cq->head = 0;
		cq->count = n;
	}
	cq->cur = &cq->wc[cq->head++];
	cq->count--;
	cq->vcq.cq_ex.status = cq->cur->status;
	cq->vcq.cq_ex.wr_id = cq->cur->wr_id;
	return 0;
}

/* The lock stays held until end_poll, unless there is nothing to read. */
static int gift_start_poll(struct ibv_cq_ex *cq_ex,
			   struct ibv_poll_cq_attr *attr)
{
	struct gift_cq *cq = to_gcq_ex(cq_ex);
	int ret;

	if (attr->comp_mask)
		return EINVAL;
	gift_cq_lock(cq);
	ret = gift_cq_next(cq);
	if (ret)
		gift_cq_unlock(cq);
	return ret;
}

static int gift_next_poll(struct ibv_cq_ex *cq_ex)
{
	return gift_cq_next(to_gcq_ex(cq_ex));
}

static void gift_end_poll(struct ibv_cq_ex *cq_ex)
{
	struct gift_cq *cq = to_gcq_ex(cq_ex);

	cq->cur = NULL;
	gift_cq_unlock(cq);
}

static enum ibv_wc_opcode gift_read_opcode(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->opcode;
}

static uint32_t gift_read_vendor_err(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->vendor_err;
}

static uint32_t gift_read_byte_len(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->byte_len;
}

/* Immediate data, or the invalidated R_Key with IBV_WC_WITH_INV */
static __be32 gift_read_imm_data(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->imm_data;
}

static uint32_t gift_read_qp_num(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->qp_num;
}

static uint32_t gift_read_src_qp(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->src_qp;
}

static unsigned int gift_read_wc_flags(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->wc_flags;
}

static uint32_t gift_read_slid(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->slid;
}

static uint8_t gift_read_sl(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->sl;
}

static uint8_t gift_read_dlid_path_bits(struct ibv_cq_ex *cq_ex)
{
	return to_gcq_ex(cq_ex)->cur->dlid_path_bits;
}

/**
 * gift_cq_ex_init() - make a new CQ extended
 * @cq: the CQ, created by the kernel, its lock initialised
 * @attr: attributes checked by gift_cq_ex_check()
 *
 * Every standard read function is set, requested in wc_flags or not (each
 * field is in every completion the kernel returns); the others stay NULL,
 * as their fields cannot be requested.
 */
void gift_cq_ex_init(struct gift_cq *cq, const struct ibv_cq_init_attr_ex *attr)
{
	struct ibv_cq_ex *cq_ex = &cq->vcq.cq_ex;

	cq->locked = !((attr->comp_mask & IBV_CQ_INIT_ATTR_MASK_FLAGS) &&
		       (attr->flags & IBV_CREATE_CQ_ATTR_SINGLE_THREADED));
	cq_ex->start_poll = gift_start_poll;
	cq_ex->next_poll = gift_next_poll;
	cq_ex->end_poll = gift_end_poll;
	cq_ex->read_opcode = gift_read_opcode;
	cq_ex->read_vendor_err = gift_read_vendor_err;
	cq_ex->read_byte_len = gift_read_byte_len;
	cq_ex->read_imm_data = gift_read_imm_data;
	cq_ex->read_qp_num = gift_read_qp_num;
	cq_ex->read_src_qp = gift_read_src_qp;
	cq_ex->read_wc_flags = gift_read_wc_flags;
	cq_ex->read_slid = gift_read_slid;
	cq_ex->read_sl = gift_read_sl;
	cq_ex->read_dlid_path_bits = gift_read_dlid_path_bits;
}

/**
 * gift_poll_cq() - ibv_poll_cq() of every gift CQ
 * @ibcq: the CQ
 * @n: room in @wc
 * @wc: completions out
 *
 * Completions an extended poll fetched but did not read come first, then
 * the backing's.
 *
 * Return: the number of completions, or -1 with errno set.
 */
int gift_poll_cq(struct ibv_cq *ibcq, int n, struct ibv_wc *wc)
{
	struct gift_cq *cq = to_gcq(ibcq);
	int got = 0, ret;

	if (n < 0) {
		errno = EINVAL;
		return -1;
	}
	gift_cq_lock(cq);
	while (cq->count && got < n) {
		wc[got++] = cq->wc[cq->head++];
		cq->count--;
	}
	ret = got < n ? gift_cq_poll(cq, n - got, wc + got) : 0;
	gift_cq_unlock(cq);
	if (ret < 0)
		return got ? got : -1;
	return got + ret;
}

/* Send work requests */

/*
 * The WRs being built on an extended QP. @lock is held from ibv_wr_start()
 * to ibv_wr_complete()/ibv_wr_abort() and makes that a critical section
 * per QP; the builders and setters run inside it. Entry i of @wr has its
 * SGEs at @sge[i * max_sge] and its inline data at @inl[i * max_inline];
 * the arrays grow on demand, up to @max_wr entries, so the pointers of the
 * WRs are set only when the batch is posted.
 */
struct gift_wr_batch {
	pthread_mutex_t lock;
	bool started;		/* between wr_start and complete/abort */
	bool ud;		/* the QP is UD */
	int err;		/* first error while building, 0 if none */
	uint32_t max_wr;	/* the send queue's capacity */
	uint32_t max_sge;
	uint32_t max_inline;
	uint32_t n;		/* WRs built */
	uint32_t room;		/* entries allocated */
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;
	uint8_t *inl;
	struct gift_post_ex_wr *ex;	/* operands of FLUSH and ATOMIC_WRITE */
	uint32_t dev_caps;		/* enum gift_dev_cap */
};

enum {
	GIFT_SUP_RC_SEND_OPS = IBV_QP_EX_WITH_SEND |
			       IBV_QP_EX_WITH_SEND_WITH_IMM |
			       IBV_QP_EX_WITH_SEND_WITH_INV |
			       IBV_QP_EX_WITH_RDMA_WRITE |
			       IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM |
			       IBV_QP_EX_WITH_RDMA_READ |
			       IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP |
			       IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD |
			       IBV_QP_EX_WITH_BIND_MW |
			       IBV_QP_EX_WITH_LOCAL_INV,
	/* With GIFT_DEV_CAP_POST_EX (FLUSH: and a wr_flush to set) */
	GIFT_SUP_RC_SEND_OPS_EX = IBV_QP_EX_WITH_ATOMIC_WRITE |
				  IBV_QP_EX_WITH_FLUSH,
	GIFT_SUP_UC_SEND_OPS = IBV_QP_EX_WITH_SEND |
			       IBV_QP_EX_WITH_SEND_WITH_IMM |
			       IBV_QP_EX_WITH_RDMA_WRITE |
			       IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM,
	GIFT_SUP_UD_SEND_OPS = IBV_QP_EX_WITH_SEND |
			       IBV_QP_EX_WITH_SEND_WITH_IMM,
	/*
	 * Flags the WR builders take from ibv_qp_ex.wr_flags. IBV_SEND_INLINE
	 * is accepted and means nothing: the setter called decides (some
	 * applications set it for providers that need it, as rxe's does).
	 */
	GIFT_SUP_WR_FLAGS = IBV_SEND_FENCE | IBV_SEND_SIGNALED |
			    IBV_SEND_SOLICITED | IBV_SEND_INLINE,
};

/**
 * gift_qp_ex_check() - can a QP with these extended attributes be made
 * @attr: ibv_create_qp_ex() attributes
 * @dev_caps: the device's enum gift_dev_cap
 *
 * Return: 0; EINVAL without a PD; EOPNOTSUPP for an XRC domain, creation
 * flags, TSO, RSS and the other extensions, and for send_ops_flags naming
 * an opcode the QP type cannot execute here (see the top of this file).
 */
int gift_qp_ex_check(const struct ibv_qp_init_attr_ex *attr,
		     uint32_t dev_caps)
{
	uint64_t sup;

	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_PD) || !attr->pd)
		return EINVAL;
	if (attr->comp_mask & ~(uint32_t)(IBV_QP_INIT_ATTR_PD |
					  IBV_QP_INIT_ATTR_SEND_OPS_FLAGS))
		return EOPNOTSUPP;
	if (!(attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS))
		return 0;

	switch (attr->qp_type) {
	case IBV_QPT_RC:
		sup = GIFT_SUP_RC_SEND_OPS;
		if (dev_caps & GIFT_DEV_CAP_POST_EX)
			sup |= IBV_QP_EX_WITH_ATOMIC_WRITE;
		if ((dev_caps & GIFT_DEV_CAP_POST_EX) &&
		    gift_qp_ex_has_wr_flush())
			sup |= IBV_QP_EX_WITH_FLUSH;
		break;
	case IBV_QPT_UC:
		sup = GIFT_SUP_UC_SEND_OPS;
		break;
	case IBV_QPT_UD:
		sup = GIFT_SUP_UD_SEND_OPS;
		break;
	default:
		return EOPNOTSUPP;
	}
	return attr->send_ops_flags & ~sup ? EOPNOTSUPP : 0;
}

static struct gift_wr_batch *to_batch(struct ibv_qp_ex *qpx)
{
	return to_gqp(&qpx->qp_base)->batch;
}

/* Records the first error of the batch being built. */
static void gift_wr_fail(struct gift_wr_batch *b, int err)
{
	if (!b->err)
		b->err = err;
}

static int gift_wr_grow(struct gift_wr_batch *b)
{
	uint32_t room = b->room ? b->room * 2 : 16;
	struct gift_post_ex_wr *ex;
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;
	uint8_t *inl;

	if (room > b->max_wr)
		room = b->max_wr;
	wr = realloc(b->wr, room * sizeof(*wr));
	if (!wr)
		return ENOMEM;
	b->wr = wr;
	if (b->max_sge) {
		sge = realloc(b->sge, (size_t)room * b->max_sge * sizeof(*sge));
		if (!sge)
			return ENOMEM;
		b->sge = sge;
	}
	if (b->max_inline) {
		inl = realloc(b->inl, (size_t)room * b->max_inline);
		if (!inl)
			return ENOMEM;
		b->inl = inl;
	}
	ex = realloc(b->ex, room * sizeof(*ex));
	if (!ex)
		return ENOMEM;
	b->ex = ex;
	b->room = room;
	return 0;
}

/*
 * Starts a new WR of the batch with the QP's wr_id and wr_flags; NULL
 * (the error recorded) when the batch is failed already or full.
 */
static struct ibv_send_wr *gift_wr_new(struct ibv_qp_ex *qpx,
				       enum ibv_wr_opcode opcode)
{
	struct gift_wr_batch *b = to_batch(qpx);
	struct ibv_send_wr *wr;
	int err;

	if (!b->started || b->err) {
		gift_wr_fail(b, EINVAL);
		return NULL;
	}
	if (b->n == b->max_wr) {
		gift_wr_fail(b, ENOMEM);
		return NULL;
	}
	if (b->n == b->room) {
		err = gift_wr_grow(b);
		if (err) {
			gift_wr_fail(b, err);
			return NULL;
		}
	}
	if (qpx->wr_flags & ~(unsigned int)GIFT_SUP_WR_FLAGS) {
		gift_wr_fail(b, EINVAL);
		return NULL;
	}
	wr = &b->wr[b->n++];
	memset(wr, 0, sizeof(*wr));
	wr->wr_id = qpx->wr_id;
	wr->opcode = opcode;
	wr->send_flags = qpx->wr_flags & ~IBV_SEND_INLINE;
	return wr;
}

/* The WR a setter applies to: the last one built; NULL if none. */
static struct ibv_send_wr *gift_wr_cur(struct gift_wr_batch *b)
{
	if (!b->started || b->err || !b->n) {
		gift_wr_fail(b, EINVAL);
		return NULL;
	}
	return &b->wr[b->n - 1];
}

static void gift_wr_send(struct ibv_qp_ex *qpx)
{
	gift_wr_new(qpx, IBV_WR_SEND);
}

static void gift_wr_send_imm(struct ibv_qp_ex *qpx, __be32 imm_data)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, IBV_WR_SEND_WITH_IMM);

	if (wr)
		wr->imm_data = imm_data;
}

static void gift_wr_send_inv(struct ibv_qp_ex *qpx, uint32_t invalidate_rkey)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, IBV_WR_SEND_WITH_INV);

	if (wr)
		wr->invalidate_rkey = invalidate_rkey;
}

static void gift_wr_rdma(struct ibv_qp_ex *qpx, enum ibv_wr_opcode opcode,
			 uint32_t rkey, uint64_t remote_addr, __be32 imm_data)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, opcode);

	if (!wr)
		return;
	wr->wr.rdma.rkey = rkey;
	wr->wr.rdma.remote_addr = remote_addr;
	wr->imm_data = imm_data;
}

static void gift_wr_rdma_write(struct ibv_qp_ex *qpx, uint32_t rkey,
			       uint64_t remote_addr)
{
	gift_wr_rdma(qpx, IBV_WR_RDMA_WRITE, rkey, remote_addr, 0);
}

static void gift_wr_rdma_write_imm(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, __be32 imm_data)
{
	gift_wr_rdma(qpx, IBV_WR_RDMA_WRITE_WITH_IMM, rkey, remote_addr,
		     imm_data);
}

static void gift_wr_rdma_read(struct ibv_qp_ex *qpx, uint32_t rkey,
			      uint64_t remote_addr)
{
	gift_wr_rdma(qpx, IBV_WR_RDMA_READ, rkey, remote_addr, 0);
}

static void gift_wr_atomic(struct ibv_qp_ex *qpx, enum ibv_wr_opcode opcode,
			   uint32_t rkey, uint64_t remote_addr,
			   uint64_t compare_add, uint64_t swap)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, opcode);

	if (!wr)
		return;
	wr->wr.atomic.rkey = rkey;
	wr->wr.atomic.remote_addr = remote_addr;
	wr->wr.atomic.compare_add = compare_add;
	wr->wr.atomic.swap = swap;
}

static void gift_wr_atomic_cmp_swp(struct ibv_qp_ex *qpx, uint32_t rkey,
				   uint64_t remote_addr, uint64_t compare,
				   uint64_t swap)
{
	gift_wr_atomic(qpx, IBV_WR_ATOMIC_CMP_AND_SWP, rkey, remote_addr,
		       compare, swap);
}

static void gift_wr_atomic_fetch_add(struct ibv_qp_ex *qpx, uint32_t rkey,
				     uint64_t remote_addr, uint64_t add)
{
	gift_wr_atomic(qpx, IBV_WR_ATOMIC_FETCH_AND_ADD, rkey, remote_addr,
		       add, 0);
}

/* FLUSH and ATOMIC_WRITE: posted through the driver's QP method. */
static bool gift_wr_is_ex(const struct ibv_send_wr *wr)
{
	return wr->opcode == IBV_WR_FLUSH || wr->opcode == IBV_WR_ATOMIC_WRITE;
}

/* Starts a FLUSH or ATOMIC_WRITE; its operands go to the method's WR. */
static struct gift_post_ex_wr *gift_wr_new_ex(struct ibv_qp_ex *qpx,
					      enum ibv_wr_opcode opcode,
					      uint32_t rkey,
					      uint64_t remote_addr)
{
	struct gift_wr_batch *b = to_batch(qpx);
	struct ibv_send_wr *wr;
	struct gift_post_ex_wr *ex;

	if (!(b->dev_caps & GIFT_DEV_CAP_POST_EX)) {
		gift_wr_fail(b, EOPNOTSUPP);
		return NULL;
	}
	wr = gift_wr_new(qpx, opcode);
	if (!wr)
		return NULL;
	ex = &b->ex[b->n - 1];
	memset(ex, 0, sizeof(*ex));
	ex->wr_id = wr->wr_id;
	ex->opcode = opcode == IBV_WR_FLUSH ? IB_UVERBS_WR_FLUSH :
					      IB_UVERBS_WR_ATOMIC_WRITE;
	ex->send_flags = wr->send_flags;
	ex->rkey = rkey;
	ex->remote_addr = remote_addr;
	return ex;
}

static void gift_wr_atomic_write(struct ibv_qp_ex *qpx, uint32_t rkey,
				 uint64_t remote_addr, const void *atomic_wr)
{
	struct gift_post_ex_wr *ex;

	ex = gift_wr_new_ex(qpx, IBV_WR_ATOMIC_WRITE, rkey, remote_addr);
	if (ex)
		memcpy(ex->atomic_wr, atomic_wr, sizeof(ex->atomic_wr));
}

static void gift_wr_flush(struct ibv_qp_ex *qpx, uint32_t rkey,
			  uint64_t remote_addr, size_t len, uint8_t type,
			  uint8_t level)
{
	struct gift_post_ex_wr *ex;

	if (len > UINT32_MAX) {
		gift_wr_fail(to_batch(qpx), EINVAL);
		return;
	}
	ex = gift_wr_new_ex(qpx, IBV_WR_FLUSH, rkey, remote_addr);
	if (!ex)
		return;
	ex->length = len;
	ex->flush_type = type;
	ex->flush_level = level;
}

void giftdv_wr_flush(struct ibv_qp_ex *qpx, uint32_t rkey,
		     uint64_t remote_addr, size_t len, uint8_t type,
		     uint8_t level)
{
	if (!qpx || !gift_qp_is_ours(&qpx->qp_base) ||
	    !to_gqp(&qpx->qp_base)->batch)
		return;		/* not ours to fail: no batch to record in */
	gift_wr_flush(qpx, rkey, remote_addr, len, type, level);
}

/* Memory windows: BIND_MW with the consumer's rkey, and LOCAL_INV. */
static void gift_wr_bind_mw(struct ibv_qp_ex *qpx, struct ibv_mw *mw,
			    uint32_t rkey,
			    const struct ibv_mw_bind_info *bind_info)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, IBV_WR_BIND_MW);

	if (!wr)
		return;
	wr->bind_mw.mw = mw;
	wr->bind_mw.rkey = rkey;
	wr->bind_mw.bind_info = *bind_info;
}

static void gift_wr_local_inv(struct ibv_qp_ex *qpx, uint32_t invalidate_rkey)
{
	struct ibv_send_wr *wr = gift_wr_new(qpx, IBV_WR_LOCAL_INV);

	if (wr)
		wr->invalidate_rkey = invalidate_rkey;
}

static void gift_wr_set_ud_addr(struct ibv_qp_ex *qpx, struct ibv_ah *ah,
				uint32_t remote_qpn, uint32_t remote_qkey)
{
	struct gift_wr_batch *b = to_batch(qpx);
	struct ibv_send_wr *wr = gift_wr_cur(b);

	if (!wr)
		return;
	if (!b->ud || !ah) {
		gift_wr_fail(b, EINVAL);
		return;
	}
	wr->wr.ud.ah = ah;
	wr->wr.ud.remote_qpn = remote_qpn;
	wr->wr.ud.remote_qkey = remote_qkey;
}

/*
 * The SGEs of the current WR: @num_sge of them, copied into its slot,
 * replacing inline data or SGEs set before.
 */
static void gift_wr_set_sges(struct gift_wr_batch *b, size_t num_sge,
			     const struct ibv_sge *sg_list)
{
	struct ibv_send_wr *wr = gift_wr_cur(b);

	if (!wr)
		return;
	if (num_sge > b->max_sge) {
		gift_wr_fail(b, EINVAL);
		return;
	}
	if (num_sge)
		memcpy(&b->sge[(size_t)(b->n - 1) * b->max_sge], sg_list,
		       num_sge * sizeof(*sg_list));
	wr->num_sge = num_sge;
	wr->send_flags &= ~IBV_SEND_INLINE;
}

static void gift_wr_set_sge(struct ibv_qp_ex *qpx, uint32_t lkey,
			    uint64_t addr, uint32_t length)
{
	struct ibv_sge sge = { .addr = addr, .length = length, .lkey = lkey };

	gift_wr_set_sges(to_batch(qpx), 1, &sge);
}

static void gift_wr_set_sge_list(struct ibv_qp_ex *qpx, size_t num_sge,
				 const struct ibv_sge *sg_list)
{
	gift_wr_set_sges(to_batch(qpx), num_sge, sg_list);
}

/*
 * Inline data of the current WR: the @num_buf buffers copied one after the
 * other into its slot now. The WR then carries one SGE naming the slot
 * (none for zero bytes) and IBV_SEND_INLINE, and the kernel copies the
 * bytes from there when the batch is posted.
 */
static void gift_wr_set_inline(struct gift_wr_batch *b, size_t num_buf,
			       const struct ibv_data_buf *buf)
{
	struct ibv_send_wr *wr = gift_wr_cur(b);
	uint8_t *dst;
	size_t i, len = 0;

	if (!wr)
		return;
	for (i = 0; i < num_buf; i++) {
		if (buf[i].length > b->max_inline - len) {
			gift_wr_fail(b, EINVAL);
			return;
		}
		len += buf[i].length;
	}
	if (len && !b->max_sge) {
		gift_wr_fail(b, EINVAL);
		return;
	}
	dst = b->inl + (size_t)(b->n - 1) * b->max_inline;
	for (i = 0, len = 0; i < num_buf; i++) {
		memcpy(dst + len, buf[i].addr, buf[i].length);
		len += buf[i].length;
	}
	wr->num_sge = 0;
	if (len) {
		b->sge[(size_t)(b->n - 1) * b->max_sge] = (struct ibv_sge) {
			.addr = (uintptr_t)dst, .length = len,
		};
		wr->num_sge = 1;
	}
	wr->send_flags |= IBV_SEND_INLINE;
}

static void gift_wr_set_inline_data(struct ibv_qp_ex *qpx, void *addr,
				    size_t length)
{
	struct ibv_data_buf buf = { .addr = addr, .length = length };

	gift_wr_set_inline(to_batch(qpx), 1, &buf);
}

static void gift_wr_set_inline_data_list(struct ibv_qp_ex *qpx, size_t num_buf,
					 const struct ibv_data_buf *buf_list)
{
	gift_wr_set_inline(to_batch(qpx), num_buf, buf_list);
}

static void gift_wr_start(struct ibv_qp_ex *qpx)
{
	struct gift_wr_batch *b = to_batch(qpx);

	pthread_mutex_lock(&b->lock);
	b->started = true;
	b->err = 0;
	b->n = 0;
}

/* Ends the critical section: the batch is gone, posted or not. */
static void gift_wr_end(struct gift_wr_batch *b)
{
	b->started = false;
	b->n = 0;
	b->err = 0;
	pthread_mutex_unlock(&b->lock);
}

static void gift_wr_abort(struct ibv_qp_ex *qpx)
{
	gift_wr_end(to_batch(qpx));
}

/* The length of @wr's message; the kernel's checks of one WR. */
static int gift_wr_check(const struct gift_wr_batch *b,
			 const struct ibv_send_wr *wr, const struct ibv_sge *sge,
			 uint64_t *len)
{
	bool inl = wr->send_flags & IBV_SEND_INLINE;
	int i;

	*len = 0;
	for (i = 0; i < wr->num_sge; i++)
		*len += sge[i].length;
	if (*len > GIFT_MAX_MSG)
		return EINVAL;
	switch (wr->opcode) {
	case IBV_WR_FLUSH:
	case IBV_WR_ATOMIC_WRITE:
		/* The operands are in the method's WR; no data setter. */
		return inl || wr->num_sge ? EINVAL : 0;
	case IBV_WR_RDMA_READ:
		return inl ? EINVAL : 0;
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return inl || *len != 8 ? EINVAL : 0;
	default:
		return b->ud && !wr->wr.ud.ah ? EINVAL : 0;
	}
}

/*
 * Checks the whole batch and links it into one chain. EMSGSIZE for a UD
 * WR longer than the port's active MTU, which is asked for only when a WR
 * is longer than the smallest MTU.
 */
static int gift_wr_prepare(struct ibv_qp_ex *qpx, struct gift_wr_batch *b)
{
	struct ibv_port_attr port;
	struct ibv_send_wr *wr;
	struct ibv_sge *sge;
	uint64_t len, longest = 0;
	uint32_t i;
	int err;

	for (i = 0; i < b->n; i++) {
		wr = &b->wr[i];
		sge = b->max_sge ? &b->sge[(size_t)i * b->max_sge] : NULL;
		err = gift_wr_check(b, wr, sge, &len);
		if (err)
			return err;
		if (len > longest)
			longest = len;
		wr->sg_list = sge;
		/* Chains break around FLUSH and ATOMIC_WRITE. */
		wr->next = i + 1 < b->n && !gift_wr_is_ex(wr) &&
			   !gift_wr_is_ex(&b->wr[i + 1]) ? &b->wr[i + 1] : NULL;
	}
	if (b->ud && longest > GIFT_MIN_MTU) {
		err = ibv_query_port(qpx->qp_base.context, 1, &port);
		if (err)
			return err;
		if (longest > 128u << port.active_mtu)
			return EMSGSIZE;
	}
	return 0;
}

/*
 * Posts the prepared batch in order: each chain of ordinary WRs with the
 * post_send command, each FLUSH and ATOMIC_WRITE with the QP method.
 * Stops at the first error; what went before stays posted.
 */
static int gift_wr_post(struct gift_qp *qp, struct gift_wr_batch *b)
{
	struct ibv_send_wr *bad;
	uint32_t i = 0;
	int err = 0;

	while (!err && i < b->n) {
		if (gift_wr_is_ex(&b->wr[i])) {
			err = gift_qp_post_ex(qp, &b->ex[i]);
			i++;
			continue;
		}
		err = gift_qp_post_send(qp, &b->wr[i], &bad);
		while (i < b->n && !gift_wr_is_ex(&b->wr[i]))
			i++;
	}
	return err;
}

static int gift_wr_complete(struct ibv_qp_ex *qpx)
{
	struct gift_wr_batch *b = to_batch(qpx);
	int err;

	if (!b->started)
		return EINVAL;
	err = b->err;
	if (!err && b->n)
		err = gift_wr_prepare(qpx, b);
	if (!err && b->n)
		err = gift_wr_post(to_gqp(&qpx->qp_base), b);
	gift_wr_end(b);
	return err;
}

static void gift_qp_ex_set_ops(struct ibv_qp_ex *qpx, uint64_t ops)
{
	if (ops & IBV_QP_EX_WITH_SEND)
		qpx->wr_send = gift_wr_send;
	if (ops & IBV_QP_EX_WITH_SEND_WITH_IMM)
		qpx->wr_send_imm = gift_wr_send_imm;
	if (ops & IBV_QP_EX_WITH_SEND_WITH_INV)
		qpx->wr_send_inv = gift_wr_send_inv;
	if (ops & IBV_QP_EX_WITH_RDMA_WRITE)
		qpx->wr_rdma_write = gift_wr_rdma_write;
	if (ops & IBV_QP_EX_WITH_RDMA_WRITE_WITH_IMM)
		qpx->wr_rdma_write_imm = gift_wr_rdma_write_imm;
	if (ops & IBV_QP_EX_WITH_RDMA_READ)
		qpx->wr_rdma_read = gift_wr_rdma_read;
	if (ops & IBV_QP_EX_WITH_ATOMIC_CMP_AND_SWP)
		qpx->wr_atomic_cmp_swp = gift_wr_atomic_cmp_swp;
	if (ops & IBV_QP_EX_WITH_ATOMIC_FETCH_AND_ADD)
		qpx->wr_atomic_fetch_add = gift_wr_atomic_fetch_add;
	if (ops & IBV_QP_EX_WITH_ATOMIC_WRITE)
		qpx->wr_atomic_write = gift_wr_atomic_write;
	/* Only offered when this libibverbs has the field (gift_qp_ex_check) */
	if (ops & IBV_QP_EX_WITH_FLUSH)
		qpx->wr_flush = gift_wr_flush;
	if (ops & IBV_QP_EX_WITH_BIND_MW)
		qpx->wr_bind_mw = gift_wr_bind_mw;
	if (ops & IBV_QP_EX_WITH_LOCAL_INV)
		qpx->wr_local_inv = gift_wr_local_inv;

	qpx->wr_set_ud_addr = gift_wr_set_ud_addr;
	qpx->wr_set_inline_data = gift_wr_set_inline_data;
	qpx->wr_set_inline_data_list = gift_wr_set_inline_data_list;
	qpx->wr_set_sge = gift_wr_set_sge;
	qpx->wr_set_sge_list = gift_wr_set_sge_list;
	qpx->wr_start = gift_wr_start;
	qpx->wr_complete = gift_wr_complete;
	qpx->wr_abort = gift_wr_abort;
}

/**
 * gift_qp_ex_init() - give a new QP the ibv_wr_*() API
 * @qp: the QP, created by the kernel
 * @attr: attributes checked by gift_qp_ex_check(), with the capabilities
 *	the kernel granted
 *
 * Return: 0, ENOMEM, or EOPNOTSUPP (gift_qp_mark_ex()).
 */
int gift_qp_ex_init(struct gift_qp *qp, const struct ibv_qp_init_attr_ex *attr)
{
	struct gift_wr_batch *b;
	int err;

	err = gift_qp_mark_ex(qp);
	if (err)
		return err;
	b = calloc(1, sizeof(*b));
	if (!b)
		return ENOMEM;
	pthread_mutex_init(&b->lock, NULL);
	b->ud = attr->qp_type == IBV_QPT_UD;
	b->max_wr = attr->cap.max_send_wr;
	b->max_sge = attr->cap.max_send_sge;
	b->max_inline = attr->cap.max_inline_data;
	b->dev_caps = to_gctx(attr->pd->context)->dev_caps;
	qp->batch = b;

	gift_qp_ex_set_ops(&qp->vqp.qp_ex, attr->send_ops_flags);
	return 0;
}

/* Frees what gift_qp_ex_init() made; any QP. */
void gift_qp_ex_fini(struct gift_qp *qp)
{
	struct gift_wr_batch *b = qp->batch;

	if (!b)
		return;
	pthread_mutex_destroy(&b->lock);
	free(b->wr);
	free(b->sge);
	free(b->inl);
	free(b->ex);
	free(b);
	qp->batch = NULL;
}
