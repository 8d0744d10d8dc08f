// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libgift: mapped work queues.
 *
 * A QP's send queue (RC and UC) and receive queue (without an SRQ) are
 * rings the kernel maps into the process (struct gift_wq_ring and the
 * protocol in rdma/gift-abi.h). ibv_post_recv() writes receive work
 * requests into its ring and never enters the kernel, but to flush what
 * it posts after the QP entered ERR. ibv_post_send() writes send work
 * requests into its ring and enters the kernel at most once per call,
 * to ring the doorbell (the post_send command without work requests),
 * which copies them into the kernel's send queue and starts the engine;
 * while the engine runs (GIFT_WQ_RING_ENGINE) it takes them itself.
 * BIND_MW and LOCAL_INV still go through the driver's method; the kernel
 * takes what the ring holds first, so the order of a chain is kept.
 *
 * Everything the kernel would refuse with an errno is refused here, with
 * the same errno, before the slot is written: a slot the kernel finds
 * invalid fails the whole QP.
 */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#include "gift.h"

/* The kernel's limit on a message (GIFT_MAX_MSG_SIZE). */
#define GIFT_WQ_MAX_MSG		(1ULL << 31)
#define GIFT_WQ_SEND_FLAGS	(IBV_SEND_FENCE | IBV_SEND_SIGNALED | \
				 IBV_SEND_SOLICITED | IBV_SEND_INLINE)

int gift_wq_map(struct gift_wq *wq, int cmd_fd,
		const struct gift_wq_ring_resp *resp, bool send,
		uint32_t max_sge, uint32_t max_inline)
{
	uint64_t need;
	void *p;

	wq->ring = NULL;
	if (!resp->mmap_length)
		return 0;
	need = (uint64_t)max_sge * sizeof(struct ib_uverbs_sge);
	if (send) {
		if (need < max_inline)
			need = max_inline;
		need += sizeof(struct gift_swqe);
	} else {
		need += sizeof(struct gift_rwqe);
	}
	if (!resp->size || (resp->size & (resp->size - 1)) ||
	    resp->stride < need ||
	    resp->mmap_length < GIFT_WQ_RING_WQE_OFFSET +
				(uint64_t)resp->size * resp->stride)
		return EPROTO;
	p = mmap(NULL, resp->mmap_length, PROT_READ | PROT_WRITE, MAP_SHARED,
		 cmd_fd, resp->mmap_offset);
	if (p == MAP_FAILED)
		return errno;
	wq->ring = p;
	wq->slots = (char *)p + GIFT_WQ_RING_WQE_OFFSET;
	wq->len = resp->mmap_length;
	wq->size = resp->size;
	wq->stride = resp->stride;
	wq->prod = __atomic_load_n(&wq->ring->prod, __ATOMIC_RELAXED);
	wq->max_sge = max_sge;
	wq->max_inline = max_inline;
	return 0;
}

void gift_wq_unmap(struct gift_wq *wq)
{
	if (wq->ring)
		munmap(wq->ring, wq->len);
	wq->ring = NULL;
}

static void *gift_wq_slot(struct gift_wq *wq, uint32_t idx)
{
	return (char *)wq->slots + (size_t)(idx & (wq->size - 1)) * wq->stride;
}

static bool gift_wq_full(struct gift_wq *wq)
{
	uint32_t cons = __atomic_load_n(&wq->ring->cons, __ATOMIC_ACQUIRE);

	return wq->prod - cons >= wq->size;
}

/* Makes the slots written so far visible to the kernel. */
static void gift_wq_publish(struct gift_wq *wq)
{
	__atomic_store_n(&wq->ring->prod, wq->prod, __ATOMIC_RELEASE);
}

static bool gift_swqe_opcode_ok(enum ibv_qp_type type, enum ibv_wr_opcode op)
{
	switch (op) {
	case IBV_WR_SEND:
	case IBV_WR_SEND_WITH_IMM:
	case IBV_WR_RDMA_WRITE:
	case IBV_WR_RDMA_WRITE_WITH_IMM:
		return true;
	case IBV_WR_SEND_WITH_INV:
	case IBV_WR_RDMA_READ:
	case IBV_WR_ATOMIC_CMP_AND_SWP:
	case IBV_WR_ATOMIC_FETCH_AND_ADD:
		return type == IBV_QPT_RC;
	default:
		return false;
	}
}

static bool gift_swqe_inline_ok(enum ibv_wr_opcode op)
{
	return op == IBV_WR_SEND || op == IBV_WR_SEND_WITH_IMM ||
	       op == IBV_WR_SEND_WITH_INV || op == IBV_WR_RDMA_WRITE ||
	       op == IBV_WR_RDMA_WRITE_WITH_IMM;
}

static bool gift_swqe_atomic(enum ibv_wr_opcode op)
{
	return op == IBV_WR_ATOMIC_CMP_AND_SWP ||
	       op == IBV_WR_ATOMIC_FETCH_AND_ADD;
}

/* Checks @wr as the kernel's post_send would: 0 or EINVAL. */
static int gift_swqe_check(struct gift_qp *qp, const struct ibv_send_wr *wr,
			   uint64_t *len)
{
	struct gift_wq *wq = &qp->sq;
	int i;

	if (!gift_swqe_opcode_ok(qp->vqp.qp.qp_type, wr->opcode) ||
	    wr->num_sge < 0 || (uint32_t)wr->num_sge > wq->max_sge)
		return EINVAL;
	*len = 0;
	for (i = 0; i < wr->num_sge; i++)
		*len += wr->sg_list[i].length;
	if (*len > GIFT_WQ_MAX_MSG ||
	    ((wr->send_flags & IBV_SEND_INLINE) &&
	     (*len > wq->max_inline || !gift_swqe_inline_ok(wr->opcode))) ||
	    (gift_swqe_atomic(wr->opcode) && *len != 8))
		return EINVAL;
	return 0;
}

static void gift_swqe_fill(struct gift_swqe *s, const struct ibv_send_wr *wr,
			   uint64_t len)
{
	char *tail = (char *)(s + 1);
	int i;

	s->wr_id = wr->wr_id;
	s->opcode = wr->opcode;
	s->send_flags = wr->send_flags & GIFT_WQ_SEND_FLAGS;
	/* imm_data and invalidate_rkey share their storage. */
	s->ex = wr->invalidate_rkey;
	s->num_sge = 0;
	s->inline_len = 0;
	if (gift_swqe_atomic(wr->opcode)) {
		s->remote_addr = wr->wr.atomic.remote_addr;
		s->compare_add = wr->wr.atomic.compare_add;
		s->swap = wr->wr.atomic.swap;
		s->rkey = wr->wr.atomic.rkey;
	} else {
		s->remote_addr = wr->wr.rdma.remote_addr;
		s->rkey = wr->wr.rdma.rkey;
	}
	if (wr->send_flags & IBV_SEND_INLINE) {
		for (i = 0; i < wr->num_sge; i++) {
			memcpy(tail, (void *)(uintptr_t)wr->sg_list[i].addr,
			       wr->sg_list[i].length);
			tail += wr->sg_list[i].length;
		}
		s->inline_len = len;
		return;
	}
	s->num_sge = wr->num_sge;
	/* struct ibv_sge and struct ib_uverbs_sge: addr, length, lkey. */
	memcpy(tail, wr->sg_list, wr->num_sge * sizeof(struct ib_uverbs_sge));
}

static bool gift_qp_can_send(const struct gift_qp *qp)
{
	return qp->state != IBV_QPS_RESET && qp->state != IBV_QPS_INIT &&
	       qp->state != IBV_QPS_RTR;
}

/*
 * After a doorbell that failed (EINVAL: the QP is not in a state that
 * sends, which another thread may just have set; ENOMEM or EINTR in
 * uverbs three times): the @posted WRs published since @undo either went
 * to the kernel anyway (false: the call's result stands) or are withdrawn
 * (true: the call fails at its first WR with the doorbell's errno).
 *
 * The kernel's cons past @undo means it has them all: an engine pass or
 * another post took them (it takes everything prod shows at once), or a
 * RESET dropped them (as it drops WRs posted just before it). Otherwise
 * prod goes back to @undo. What the kernel took without freeing a slot
 * yet cannot be seen from here: if it did, prod is now behind what it
 * took, which it treats as a corrupt ring, failing the QP. That needs
 * uverbs to fail three doorbells in a row while an engine pass runs:
 * only injected failures get there (a RESET sets cons to the prod it
 * finds, so the check above sees it).
 */
static bool gift_wq_withdraw(struct gift_wq *wq, uint32_t undo,
			     unsigned int posted)
{
	uint32_t cons = __atomic_load_n(&wq->ring->cons, __ATOMIC_ACQUIRE);

	if (cons - undo - 1 < posted)
		return false;
	wq->prod = undo;
	gift_wq_publish(wq);
	return true;
}

int gift_wq_post_send(struct gift_qp *qp, struct ibv_send_wr *wr,
		      struct ibv_send_wr **bad_wr)
{
	struct ibv_send_wr *first = wr, *kbad;
	struct gift_wq *wq = &qp->sq;
	unsigned int posted = 0;
	uint64_t len;
	uint32_t undo;
	int ret = 0;

	pthread_mutex_lock(&wq->lock);
	undo = wq->prod;
	if (!gift_qp_can_send(qp)) {
		ret = EINVAL;
		*bad_wr = wr;
		goto out;
	}
	for (; wr; wr = wr->next) {
		if (gift_wr_is_mw(wr)) {
			/*
			 * The kernel takes the ring's WRs before this one;
			 * if it refuses it (maybe before it gets there), the
			 * doorbell below takes them.
			 */
			gift_wq_publish(wq);
			ret = gift_post_mw_wr(&qp->vqp.qp, wr);
			if (ret)
				break;
			posted = 0;
			first = wr->next;
			undo = wq->prod;
			continue;
		}
		ret = gift_swqe_check(qp, wr, &len);
		if (!ret && gift_wq_full(wq))
			ret = ENOMEM;
		if (ret)
			break;
		gift_swqe_fill(gift_wq_slot(wq, wq->prod), wr, len);
		wq->prod++;
		posted++;
	}
	if (ret)
		*bad_wr = wr;
	if (posted) {
		int db = 0, tries = 0;

		gift_wq_publish(wq);
		/*
		 * Pairs with the kernel's barrier between clearing
		 * GIFT_WQ_RING_ENGINE and loading prod: either the running
		 * engine takes what we just posted, or we see the flag clear
		 * and ring.
		 */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		for (;;) {
			if (__atomic_load_n(&wq->ring->flags, __ATOMIC_RELAXED) &
			    GIFT_WQ_RING_ENGINE) {
				db = 0;
				break;
			}
			db = ibv_cmd_post_send(&qp->vqp.qp, NULL, &kbad);
			if (!db || (db != ENOMEM && db != EINTR) || ++tries == 3)
				break;
		}
		if (db && gift_wq_withdraw(wq, undo, posted)) {
			ret = db;
			*bad_wr = first;
		}
	}
out:
	pthread_mutex_unlock(&wq->lock);
	return ret;
}

/*
 * Writes receive WRs into @wq until one fails: the number written, *@ret
 * 0 or the errno of *@bad_wr. The caller holds wq->lock and publishes.
 */
static unsigned int gift_wq_put_recvs(struct gift_wq *wq,
				      struct ibv_recv_wr *wr,
				      struct ibv_recv_wr **bad_wr, int *ret)
{
	unsigned int posted = 0;
	struct gift_rwqe *s;

	*ret = 0;
	for (; wr; wr = wr->next) {
		if (wr->num_sge < 0 || (uint32_t)wr->num_sge > wq->max_sge)
			*ret = EINVAL;
		else if (gift_wq_full(wq))
			*ret = ENOMEM;
		if (*ret) {
			*bad_wr = wr;
			break;
		}
		s = gift_wq_slot(wq, wq->prod);
		s->wr_id = wr->wr_id;
		s->num_sge = wr->num_sge;
		memcpy(s->sge, wr->sg_list,
		       wr->num_sge * sizeof(struct ib_uverbs_sge));
		wq->prod++;
		posted++;
	}
	return posted;
}

int gift_wq_post_srq_recv(struct gift_srq *srq, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad_wr)
{
	struct gift_wq *wq = &srq->wq;
	int ret;

	pthread_mutex_lock(&wq->lock);
	if (gift_wq_put_recvs(wq, wr, bad_wr, &ret))
		gift_wq_publish(wq);
	pthread_mutex_unlock(&wq->lock);
	return ret;
}

static int gift_srq_prepare(struct gift_srq *srq, uint32_t max_wr,
			    struct gift_wq_ring_resp *resp)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_SRQ,
			       GIFT_IB_METHOD_SRQ_PREPARE_RESIZE, 3);

	fill_attr_in_obj(cmd, GIFT_IB_ATTR_SRQ_PREPARE_HANDLE,
			 srq->ibv_srq.handle);
	fill_attr_in_ptr(cmd, GIFT_IB_ATTR_SRQ_PREPARE_MAX_WR, &max_wr);
	fill_attr_out_ptr(cmd, GIFT_IB_ATTR_SRQ_PREPARE_RESP, resp);
	return execute_ioctl(srq->ibv_srq.context, cmd);
}

/*
 * ibv_modify_srq() with IBV_SRQ_MAX_WR of a mapped SRQ: the kernel makes
 * a new ring, we map it, and modify_srq commits: the posted WRs move to
 * it at the same indices, our prod with them. On failure the SRQ keeps
 * its ring and the new one is dropped. Posts wait meanwhile.
 */
int gift_wq_resize_srq(struct gift_srq *srq, struct ibv_srq_attr *attr,
		       int attr_mask)
{
	struct gift_cmd_modify_srq cmd = {};
	struct gift_wq *wq = &srq->wq, nwq;
	struct gift_wq_ring_resp resp = {};
	int ret;

	pthread_mutex_lock(&wq->lock);
	ret = gift_srq_prepare(srq, attr->max_wr, &resp);
	if (ret)
		goto out;
	ret = gift_wq_map(&nwq, srq->ibv_srq.context->cmd_fd, &resp, false,
			  wq->max_sge, 0);
	if (!ret && !nwq.ring)
		ret = EPROTO;
	if (ret) {
		gift_srq_prepare(srq, 0, &resp);
		goto out;
	}
	cmd.flags = GIFT_MODIFY_SRQ_COMMIT;
	ret = ibv_cmd_modify_srq(&srq->ibv_srq, attr, attr_mask, &cmd.ibv_cmd,
				 sizeof(cmd));
	if (ret) {
		gift_wq_unmap(&nwq);
		gift_srq_prepare(srq, 0, &resp);
		goto out;
	}
	gift_wq_unmap(wq);
	wq->ring = nwq.ring;
	wq->slots = nwq.slots;
	wq->len = nwq.len;
	wq->size = nwq.size;
out:
	pthread_mutex_unlock(&wq->lock);
	return ret;
}

int gift_wq_post_recv(struct gift_qp *qp, struct ibv_recv_wr *wr,
		      struct ibv_recv_wr **bad_wr)
{
	struct gift_wq *wq = &qp->rq;
	struct ibv_recv_wr *kbad;
	int ret = 0;

	pthread_mutex_lock(&wq->lock);
	if (qp->state == IBV_QPS_RESET) {
		ret = EINVAL;
		*bad_wr = wr;
		goto out;
	}
	if (gift_wq_put_recvs(wq, wr, bad_wr, &ret)) {
		gift_wq_publish(wq);
		/*
		 * Pairs with the kernel's barrier between setting
		 * GIFT_WQ_RING_ERR and reading prod: either it flushes what
		 * we just posted, or we see the flag and ask it to.
		 */
		__atomic_thread_fence(__ATOMIC_SEQ_CST);
		if (__atomic_load_n(&wq->ring->flags, __ATOMIC_RELAXED) &
		    GIFT_WQ_RING_ERR)
			ibv_cmd_post_recv(&qp->vqp.qp, NULL, &kbad);
	}
out:
	pthread_mutex_unlock(&wq->lock);
	return ret;
}
