// SPDX-License-Identifier: GPL-2.0 OR Linux-OpenIB
/*
 * libgift: libibverbs provider of the rdma_gift soft-RoCE driver.
 *
 * A thin provider: each verb is sent to the kernel as the generic uverbs
 * command (ibv_cmd_*), and the kernel driver does all the work, data path
 * included (post_send/post_recv are system calls), with one exception:
 * completions are read from a ring the kernel maps into the process
 * (gift_cq_poll_ring()). Driver data is exchanged by alloc_ucontext,
 * create_cq and resize_cq only.
 *
 * The driver lives out of tree: its devices report RDMA_DRIVER_UNKNOWN and
 * have no parent bus device, so they cannot be matched by driver id or
 * modalias. They are matched by their sysfs "hca_type" attribute instead.
 */
#include <assert.h>
#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <infiniband/cmd_ioctl.h>

#include "gift.h"
#include "giftdv.h"

static_assert(IBV_ACCESS_GIFT == IB_UVERBS_ACCESS_GIFT,
	      "IBV_ACCESS_GIFT differs from the kernel ABI");
static_assert((IBV_ACCESS_GIFT & IBV_ACCESS_OPTIONAL_RANGE) == IBV_ACCESS_GIFT,
	      "IBV_ACCESS_GIFT must be an optional access flag");
static_assert((int)GIFTDV_DEV_CAP_ACCESS_GIFT == (int)GIFT_DEV_CAP_ACCESS_GIFT,
	      "GIFTDV_DEV_CAP_ACCESS_GIFT differs from the kernel ABI");
static_assert((int)GIFTDV_DEV_CAP_POST_EX == (int)GIFT_DEV_CAP_POST_EX,
	      "GIFTDV_DEV_CAP_POST_EX differs from the kernel ABI");
static_assert((int)GIFTDV_DEV_CAP_MAPPED_WQ == (int)GIFT_DEV_CAP_MAPPED_WQ,
	      "GIFTDV_DEV_CAP_MAPPED_WQ differs from the kernel ABI");
static_assert((int)GIFTDV_DEV_CAP_MAPPED_CQ == (int)GIFT_DEV_CAP_MAPPED_CQ,
	      "GIFTDV_DEV_CAP_MAPPED_CQ differs from the kernel ABI");

static const struct verbs_device_ops gift_dev_ops;

/* Device */

static int gift_query_device_ex(struct ibv_context *ibctx,
				const struct ibv_query_device_ex_input *input,
				struct ibv_device_attr_ex *attr,
				size_t attr_size)
{
	struct gift_context *ctx = to_gctx(ibctx);
	struct ib_uverbs_ex_query_device_resp resp;
	size_t resp_size = sizeof(resp);
	uint64_t fw;
	int ret;

	ret = ibv_cmd_query_device_any(ibctx, input, attr, attr_size, &resp,
				       &resp_size);
	if (ret)
		return ret;

	/* The kernel's own rendering (get_dev_fw_str) wins when we have it */
	if (ctx->fw_ver[0]) {
		snprintf(attr->orig_attr.fw_ver, sizeof(attr->orig_attr.fw_ver),
			 "%s", ctx->fw_ver);
	} else {
		fw = resp.base.fw_ver;
		snprintf(attr->orig_attr.fw_ver, sizeof(attr->orig_attr.fw_ver),
			 "%u.%u.%u", (unsigned int)(fw >> 32) & 0xffff,
			 (unsigned int)(fw >> 16) & 0xffff,
			 (unsigned int)fw & 0xffff);
	}
	/*
	 * Memory management extensions (fast-register MRs) exist for kernel
	 * QPs only: the kernel refuses REG_MR from user QPs, and user space
	 * has no way to make an MR that LOCAL_INV or SEND_WITH_INV could
	 * invalidate. Not advertised here. (LOCAL_INV and SEND_WITH_INV do
	 * work on type 2 memory windows: IBV_DEVICE_MEM_WINDOW_TYPE_2B.)
	 */
	attr->orig_attr.device_cap_flags &= ~IBV_DEVICE_MEM_MGT_EXTENSIONS;
	if (attr_size >= offsetof(struct ibv_device_attr_ex,
				  device_cap_flags_ex) +
			 sizeof(attr->device_cap_flags_ex))
		attr->device_cap_flags_ex &= ~(uint64_t)IBV_DEVICE_MEM_MGT_EXTENSIONS;
	return 0;
}

static int gift_query_port(struct ibv_context *ibctx, uint8_t port,
			   struct ibv_port_attr *attr)
{
	struct ibv_query_port cmd = {};

	return ibv_cmd_query_port(ibctx, port, attr, &cmd, sizeof(cmd));
}

/* Protection domains and memory regions */

static struct ibv_pd *gift_alloc_pd(struct ibv_context *ibctx)
{
	struct ibv_alloc_pd cmd = {};
	struct ib_uverbs_alloc_pd_resp resp = {};
	struct ibv_pd *pd;
	int ret;

	pd = calloc(1, sizeof(*pd));
	if (!pd)
		return NULL;

	ret = ibv_cmd_alloc_pd(ibctx, pd, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(pd);
		errno = ret;
		return NULL;
	}
	return pd;
}

static int gift_dealloc_pd(struct ibv_pd *pd)
{
	int ret;

	ret = ibv_cmd_dealloc_pd(pd);
	if (ret)
		return ret;
	free(pd);
	return 0;
}

static struct ibv_mr *gift_reg_mr(struct ibv_pd *pd, void *addr, size_t len,
				  uint64_t hca_va, int access)
{
	struct ibv_reg_mr cmd = {};
	struct ib_uverbs_reg_mr_resp resp = {};
	struct verbs_mr *vmr;
	int ret;

	vmr = calloc(1, sizeof(*vmr));
	if (!vmr)
		return NULL;

	ret = ibv_cmd_reg_mr(pd, addr, len, hca_va, access, vmr, &cmd,
			     sizeof(cmd), &resp, sizeof(resp));
	if (ret) {
		free(vmr);
		errno = ret;
		return NULL;
	}
	return &vmr->ibv_mr;
}

static int gift_rereg_mr(struct verbs_mr *vmr, int flags, struct ibv_pd *pd,
			 void *addr, size_t len, int access)
{
	struct ibv_rereg_mr cmd = {};
	struct ib_uverbs_rereg_mr_resp resp = {};

	/* Same iova convention as ibv_reg_mr(): the MR starts at addr */
	return ibv_cmd_rereg_mr(vmr, flags, addr, len, (uintptr_t)addr,
				access, pd, &cmd, sizeof(cmd), &resp,
				sizeof(resp));
}

/* ODP prefetch: the kernel checks and runs it (gift_advise_mr()). */
static int gift_advise_mr(struct ibv_pd *pd, enum ibv_advise_mr_advice advice,
			  uint32_t flags, struct ibv_sge *sg_list,
			  uint32_t num_sge)
{
	return ibv_cmd_advise_mr(pd, advice, flags, sg_list, num_sge);
}

static int gift_dereg_mr(struct verbs_mr *vmr)
{
	int ret;

	ret = ibv_cmd_dereg_mr(vmr);
	if (ret)
		return ret;
	free(vmr);
	return 0;
}

/* Memory windows */

static struct ibv_mw *gift_alloc_mw(struct ibv_pd *pd, enum ibv_mw_type type)
{
	struct ib_uverbs_alloc_mw_resp resp;
	struct ibv_alloc_mw cmd;
	struct ibv_mw *mw;
	int ret;

	mw = calloc(1, sizeof(*mw));
	if (!mw)
		return NULL;
	ret = ibv_cmd_alloc_mw(pd, type, mw, &cmd, sizeof(cmd), &resp,
			       sizeof(resp));
	if (ret) {
		free(mw);
		errno = ret;
		return NULL;
	}
	return mw;
}

static int gift_dealloc_mw(struct ibv_mw *mw)
{
	int ret;

	ret = ibv_cmd_dealloc_mw(mw);
	if (ret)
		return ret;
	free(mw);
	return 0;
}

bool gift_wr_is_mw(const struct ibv_send_wr *wr)
{
	return wr->opcode == IBV_WR_BIND_MW || wr->opcode == IBV_WR_LOCAL_INV;
}

/*
 * Posts one BIND_MW or LOCAL_INV through GIFT_IB_METHOD_QP_POST_MW: uverbs'
 * post_send carries neither. 0 or a positive errno.
 */
int gift_post_mw_wr(struct ibv_qp *qp, const struct ibv_send_wr *wr)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_QP, GIFT_IB_METHOD_QP_POST_MW,
			       4);
	const struct ibv_mw_bind_info *bi = &wr->bind_mw.bind_info;
	struct gift_post_mw_wr kwr = {
		.wr_id = wr->wr_id,
		.send_flags = wr->send_flags,
	};

	fill_attr_in_obj(cmd, GIFT_IB_ATTR_QP_POST_MW_QP_HANDLE, qp->handle);
	if (wr->opcode == IBV_WR_BIND_MW) {
		if (!wr->bind_mw.mw)
			return EINVAL;
		kwr.opcode = IB_UVERBS_WR_BIND_MW;
		kwr.addr = bi->addr;
		kwr.length = bi->length;
		kwr.access = bi->mw_access_flags;
		kwr.rkey = wr->bind_mw.rkey;
		fill_attr_in_obj(cmd, GIFT_IB_ATTR_QP_POST_MW_MW_HANDLE,
				 wr->bind_mw.mw->handle);
		if (bi->mr)
			fill_attr_in_obj(cmd, GIFT_IB_ATTR_QP_POST_MW_MR_HANDLE,
					 bi->mr->handle);
	} else {
		kwr.opcode = IB_UVERBS_WR_LOCAL_INV;
		kwr.rkey = wr->invalidate_rkey;
	}
	fill_attr_in_ptr(cmd, GIFT_IB_ATTR_QP_POST_MW_WR, &kwr);
	return execute_ioctl(qp->context, cmd);
}

/*
 * Type 1 windows (ibv_bind_mw()): a BIND_MW with the next rkey. The new
 * rkey is the window's from now on; a bind that then completes in error
 * leaves the window as it was, under its old rkey (as in rdma-core's rxe).
 */
static int gift_bind_mw(struct ibv_qp *qp, struct ibv_mw *mw,
			struct ibv_mw_bind *mw_bind)
{
	struct ibv_send_wr wr = {
		.wr_id = mw_bind->wr_id,
		.opcode = IBV_WR_BIND_MW,
		.send_flags = mw_bind->send_flags,
	};
	int ret;

	if (mw->type != IBV_MW_TYPE_1)
		return EINVAL;
	wr.bind_mw.mw = mw;
	wr.bind_mw.rkey = ibv_inc_rkey(mw->rkey);
	wr.bind_mw.bind_info = mw_bind->bind_info;
	ret = gift_post_mw_wr(qp, &wr);
	if (!ret)
		mw->rkey = wr.bind_mw.rkey;
	return ret;
}

/* Completion queues */

/*
 * Maps the ring the kernel answered for @cq: 0, or a positive errno. A
 * response without a ring (a kernel that does not map CQs) leaves @cq on
 * the poll_cq command. A process out of mappings (vm.max_map_count; one
 * per CQ) gets ENOMEM, and the callers then make the CQ again unmapped:
 * its completions come through the poll_cq command instead.
 */
/* Maps the ring @resp describes; *@ring is NULL for a CQ without one. */
static int gift_cq_ring_mmap(int cmd_fd, const struct gift_cq_ring_resp *resp,
			     struct gift_cq_ring **ring)
{
	void *p;

	*ring = NULL;
	if (!resp->mmap_length)
		return 0;
	if (!resp->size || (resp->size & (resp->size - 1)) ||
	    resp->mmap_length < GIFT_CQ_RING_WC_OFFSET +
				(uint64_t)resp->size *
				sizeof(struct ib_uverbs_wc))
		return EPROTO;
	p = mmap(NULL, resp->mmap_length, PROT_READ | PROT_WRITE,
		 MAP_SHARED, cmd_fd, resp->mmap_offset);
	if (p == MAP_FAILED)
		return errno;
	*ring = p;
	return 0;
}

static int gift_cq_map(struct gift_cq *cq, int cmd_fd,
		       const struct gift_cq_ring_resp *resp)
{
	struct gift_cq_ring *ring;
	int ret;

	ret = gift_cq_ring_mmap(cmd_fd, resp, &ring);
	if (ret || !ring)
		return ret;
	cq->ring = ring;
	cq->ring_len = resp->mmap_length;
	cq->ring_size = resp->size;
	cq->cons = __atomic_load_n(&cq->ring->cons, __ATOMIC_RELAXED);
	return 0;
}

/* Puts an object with rings on @list of its context (gift_free_context()). */
static void gift_ctx_track(struct gift_context *ctx, struct list_head *list,
			   struct gift_mapped *m)
{
	pthread_mutex_lock(&ctx->mapped_lock);
	list_add_tail(list, &m->entry);
	m->on = true;
	pthread_mutex_unlock(&ctx->mapped_lock);
}

/* Takes it off its list, if it is on one. */
static void gift_ctx_untrack(struct gift_context *ctx, struct gift_mapped *m)
{
	if (!m->on)
		return;
	pthread_mutex_lock(&ctx->mapped_lock);
	list_del(&m->entry);
	m->on = false;
	pthread_mutex_unlock(&ctx->mapped_lock);
}

/* Destroying a CQ: off the list, and its ring (if it still has one) unmapped. */
static void gift_cq_unmap(struct gift_context *ctx, struct gift_cq *cq)
{
	gift_ctx_untrack(ctx, &cq->mapped);
	if (cq->ring)
		munmap(cq->ring, cq->ring_len);
	cq->ring = NULL;
}

/*
 * Maps the ring of a CQ just created (with @flags); a CQ with a ring goes
 * on its context's list. A CQ whose ring cannot be mapped is destroyed;
 * out of mappings (ENOMEM), EAGAIN asks the caller to create it again
 * without a ring.
 */
static int gift_cq_map_created(struct gift_cq *cq, struct ibv_context *ibctx,
			       const struct gift_cq_ring_resp *ring,
			       uint64_t flags)
{
	int ret;

	ret = gift_cq_map(cq, ibctx->cmd_fd, ring);
	if (!ret) {
		if (cq->ring)
			gift_ctx_track(to_gctx(ibctx),
				       &to_gctx(ibctx)->mapped_cqs, &cq->mapped);
		return 0;
	}
	ibv_cmd_destroy_cq(&cq->vcq.cq);
	return ret == ENOMEM && flags ? EAGAIN : ret;
}

static uint64_t gift_cq_req_flags(struct ibv_context *ibctx)
{
	return to_gctx(ibctx)->map_cqs ? GIFT_CREATE_CQ_MAPPED : 0;
}

static struct ibv_cq *gift_create_cq(struct ibv_context *ibctx, int cqe,
				     struct ibv_comp_channel *channel,
				     int comp_vector)
{
	struct gift_create_cq cmd = { .flags = gift_cq_req_flags(ibctx) };
	struct gift_create_cq_resp resp = {};
	struct gift_cq *cq;
	int ret;

	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;

again:
	ret = ibv_cmd_create_cq(ibctx, cqe, channel, comp_vector, &cq->vcq.cq,
				&cmd.ibv_cmd, sizeof(cmd), &resp.ibv_resp,
				sizeof(resp));
	if (ret) {
		free(cq);
		errno = ret;
		return NULL;
	}
	ret = gift_cq_map_created(cq, ibctx, &resp.drv_payload, cmd.flags);
	if (ret == EAGAIN) {
		cmd.flags = 0;
		goto again;
	}
	if (ret) {
		free(cq);
		errno = ret;
		return NULL;
	}
	pthread_mutex_init(&cq->lock, NULL);
	cq->locked = true;
	return &cq->vcq.cq;
}

/* The wc_flags and flags of @attr are checked by gift_cq_ex_check() first. */
static struct ibv_cq_ex *gift_create_cq_ex(struct ibv_context *ibctx,
					   struct ibv_cq_init_attr_ex *attr)
{
	struct gift_create_cq_ex cmd = { .flags = gift_cq_req_flags(ibctx) };
	struct gift_create_cq_ex_resp resp = {};
	struct ibv_cq_init_attr_ex kattr = {
		.cqe = attr->cqe,
		.cq_context = attr->cq_context,
		.channel = attr->channel,
		.comp_vector = attr->comp_vector,
	};
	struct gift_cq *cq;
	int ret;

	ret = gift_cq_ex_check(attr);
	if (ret) {
		errno = ret;
		return NULL;
	}
	cq = calloc(1, sizeof(*cq));
	if (!cq)
		return NULL;

	/* The kernel sees a plain CQ: the completion fields are ours */
again:
	ret = ibv_cmd_create_cq_ex(ibctx, &kattr, &cq->vcq, &cmd.ibv_cmd,
				   sizeof(cmd), &resp.ibv_resp, sizeof(resp), 0);
	if (ret) {
		free(cq);
		errno = ret;
		return NULL;
	}
	ret = gift_cq_map_created(cq, ibctx, &resp.drv_payload, cmd.flags);
	if (ret == EAGAIN) {
		cmd.flags = 0;
		goto again;
	}
	if (ret) {
		free(cq);
		errno = ret;
		return NULL;
	}
	pthread_mutex_init(&cq->lock, NULL);
	gift_cq_ex_init(cq, attr);
	return &cq->vcq.cq_ex;
}

/*
 * The poll_cq command copies the kernel's wc_flags (enum ib_wc_flags of
 * include/rdma/ib_verbs.h, no uapi) as they are, and its bits are not
 * libibverbs' (enum ibv_wc_flags): a send with invalidate would read as
 * IBV_WC_IP_CSUM_OK and a UD receive, with IB_WC_WITH_NETWORK_HDR_TYPE,
 * as IBV_WC_TM_DATA_VALID. Each kernel bit that means something to user
 * space is translated; SMAC, VLAN and the network header type have no
 * ibv_wc field and are dropped.
 */
#define GIFT_KWC_GRH		(1U << 0)
#define GIFT_KWC_WITH_IMM	(1U << 1)
#define GIFT_KWC_WITH_INVALIDATE (1U << 2)
#define GIFT_KWC_IP_CSUM_OK	(1U << 3)

static unsigned int gift_wc_flags(unsigned int kflags)
{
	unsigned int flags = 0;

	if (kflags & GIFT_KWC_GRH)
		flags |= IBV_WC_GRH;
	if (kflags & GIFT_KWC_WITH_IMM)
		flags |= IBV_WC_WITH_IMM;
	if (kflags & GIFT_KWC_WITH_INVALIDATE)
		flags |= IBV_WC_WITH_INV;
	if (kflags & GIFT_KWC_IP_CSUM_OK)
		flags |= IBV_WC_IP_CSUM_OK;
	return flags;
}

/* A completion of the ring, as ibv_cmd_poll_cq() would return it. */
static void gift_wc_from_ring(struct ibv_wc *wc, const struct ib_uverbs_wc *u)
{
	wc->wr_id = u->wr_id;
	wc->status = u->status;
	wc->opcode = u->opcode;
	wc->vendor_err = u->vendor_err;
	wc->byte_len = u->byte_len;
	wc->imm_data = u->ex.imm_data;
	wc->qp_num = u->qp_num;
	wc->src_qp = u->src_qp;
	wc->wc_flags = gift_wc_flags(u->wc_flags);
	wc->pkey_index = u->pkey_index;
	wc->slid = u->slid;
	wc->sl = u->sl;
	wc->dlid_path_bits = u->dlid_path_bits;
}

static struct ib_uverbs_wc *gift_cq_slot(struct gift_cq *cq, uint32_t i)
{
	return (void *)((char *)cq->ring + GIFT_CQ_RING_WC_OFFSET +
			(size_t)(i & (cq->ring_size - 1)) *
			sizeof(struct ib_uverbs_wc));
}

/* Bit 0 of ib_uverbs_wc.reserved: a completion of a destroyed QP. */
#define GIFT_UWC_DISCARDED 1

/*
 * The mapped ring's half of the protocol in rdma/gift-abi.h: acquire the
 * kernel's prod, read the slots, release our cons. A CQ the kernel failed
 * (overflow) fails every poll with EOVERFLOW, as the poll_cq command does;
 * a prod further from our cons than the ring is long (the process wrote
 * over its ring) fails it with EIO. Our cons and size are our own copies.
 */
static int gift_cq_poll_ring(struct gift_cq *cq, int n, struct ibv_wc *wc)
{
	struct gift_cq_ring *r = cq->ring;
	uint32_t prod, cons = cq->cons;
	struct ib_uverbs_wc *u;
	int i = 0;

	if (__atomic_load_n(&r->flags, __ATOMIC_RELAXED) & GIFT_CQ_RING_ERR) {
		errno = EOVERFLOW;
		return -1;
	}
	prod = __atomic_load_n(&r->prod, __ATOMIC_ACQUIRE);
	/* Only a write to the ring by the process itself gets us here. */
	if (prod - cons > cq->ring_size) {
		errno = EIO;
		return -1;
	}
	while (i < n && cons != prod) {
		u = gift_cq_slot(cq, cons++);
		if (!(u->reserved & GIFT_UWC_DISCARDED))
			gift_wc_from_ring(&wc[i++], u);
	}
	if (cons != cq->cons) {
		cq->cons = cons;
		__atomic_store_n(&r->cons, cons, __ATOMIC_RELEASE);
	}
	return i;
}

/*
 * Destroying a QP discards its completions still queued (as the kernel
 * does for CQs it polls itself): the QP produces no more once
 * destroy_qp has returned, so they are all before the ring's prod.
 */
static void gift_cq_discard_qp(struct gift_cq *cq, uint32_t qp_num)
{
	uint32_t i, prod;
	struct ib_uverbs_wc *u;

	if (!cq->ring)
		return;
	gift_cq_lock(cq);
	prod = __atomic_load_n(&cq->ring->prod, __ATOMIC_ACQUIRE);
	if (prod - cq->cons > cq->ring_size)
		prod = cq->cons;	/* a corrupted ring: nothing to keep */
	for (i = cq->cons; i != prod; i++) {
		u = gift_cq_slot(cq, i);
		if (u->qp_num == qp_num)
			u->reserved |= GIFT_UWC_DISCARDED;
	}
	gift_cq_unlock(cq);
}

int gift_cq_poll(struct gift_cq *cq, int n, struct ibv_wc *wc)
{
	int i, ret;

	if (cq->ring)
		return gift_cq_poll_ring(cq, n, wc);
	ret = ibv_cmd_poll_cq(&cq->vcq.cq, n, wc);
	for (i = 0; i < ret; i++)
		wc[i].wc_flags = gift_wc_flags(wc[i].wc_flags);
	return ret;
}

static int gift_resize_cq_step(struct ibv_cq *ibcq, int cqe, uint32_t op,
			       struct gift_cq_ring_resp *ring)
{
	struct gift_resize_cq cmd = { .flags = op };
	struct gift_resize_cq_resp resp = {};
	int ret;

	ret = ibv_cmd_resize_cq(ibcq, cqe, &cmd.ibv_cmd, sizeof(cmd),
				&resp.ibv_resp, sizeof(resp));
	if (!ret && ring)
		*ring = resp.drv_payload;
	return ret;
}

/*
 * A mapped CQ resizes in the kernel's two steps (gift-abi.h): the new ring
 * is prepared and mapped before the CQ moves to it, so that a CQ whose new
 * ring cannot be mapped keeps working with the old one. The completions
 * keep their indices, and so cq->cons stays. Under the CQ's lock, so that
 * no poll reads either ring meanwhile.
 */
static int gift_resize_cq(struct ibv_cq *ibcq, int cqe)
{
	struct gift_cq *cq = to_gcq(ibcq);
	struct gift_cq_ring_resp next;
	struct gift_cq_ring *ring;
	int ret;

	gift_cq_lock(cq);
	if (!cq->ring) {
		ret = gift_resize_cq_step(ibcq, cqe, 0, NULL);
		goto out;
	}
	ret = gift_resize_cq_step(ibcq, cqe, GIFT_RESIZE_CQ_PREPARE, &next);
	if (ret)
		goto out;
	ret = gift_cq_ring_mmap(ibcq->context->cmd_fd, &next, &ring);
	if (!ret && !ring)
		ret = EPROTO;
	if (ret)
		goto out_abort;
	ret = gift_resize_cq_step(ibcq, cqe, GIFT_RESIZE_CQ_COMMIT, NULL);
	if (ret) {
		munmap(ring, next.mmap_length);
		/* Nothing to drop after the kernel's own failure; harmless. */
		goto out_abort;
	}
	munmap(cq->ring, cq->ring_len);
	cq->ring = ring;
	cq->ring_len = next.mmap_length;
	cq->ring_size = next.size;
	goto out;

out_abort:
	gift_resize_cq_step(ibcq, cqe, GIFT_RESIZE_CQ_ABORT, NULL);
out:
	gift_cq_unlock(cq);
	return ret;
}

static int gift_destroy_cq(struct ibv_cq *ibcq)
{
	struct gift_cq *cq = to_gcq(ibcq);
	int ret;

	ret = ibv_cmd_destroy_cq(ibcq);
	if (ret)
		return ret;
	gift_cq_unmap(to_gctx(ibcq->context), cq);
	pthread_mutex_destroy(&cq->lock);
	free(cq);
	return 0;
}

/* Shared receive queues */

/* Off the context's list, and its ring (if it has one) unmapped. */
static void gift_srq_unmap(struct gift_context *ctx, struct gift_srq *srq)
{
	gift_ctx_untrack(ctx, &srq->mapped);
	gift_wq_unmap(&srq->wq);
}

/*
 * A mapped SRQ when the device has them: a process out of mappings gets
 * it again without a ring (its posts then are the kernel's command).
 */
static struct ibv_srq *gift_create_srq(struct ibv_pd *pd,
				       struct ibv_srq_init_attr *attr)
{
	struct gift_context *ctx = to_gctx(pd->context);
	uint64_t flags = ctx->map_wqs ? GIFT_CREATE_SRQ_MAPPED : 0;
	struct gift_cmd_create_srq_resp resp;
	struct gift_cmd_create_srq cmd;
	struct ibv_srq_init_attr a;
	struct gift_srq *srq;
	int ret;

	srq = calloc(1, sizeof(*srq));
	if (!srq)
		return NULL;
	pthread_mutex_init(&srq->wq.lock, NULL);
	do {
		memset(&cmd, 0, sizeof(cmd));
		memset(&resp, 0, sizeof(resp));
		cmd.flags = flags;
		a = *attr;
		ret = ibv_cmd_create_srq(pd, &srq->ibv_srq, &a, &cmd.ibv_cmd,
					 sizeof(cmd), &resp.ibv_resp,
					 sizeof(resp));
		if (ret)
			break;
		ret = gift_wq_map(&srq->wq, pd->context->cmd_fd,
				  &resp.drv_payload, false, a.attr.max_sge, 0);
		if (ret) {
			ibv_cmd_destroy_srq(&srq->ibv_srq);
			if (ret == ENOMEM && flags)
				ret = EAGAIN;
		}
		flags = 0;
	} while (ret == EAGAIN);
	if (ret) {
		pthread_mutex_destroy(&srq->wq.lock);
		free(srq);
		errno = ret;
		return NULL;
	}
	if (srq->wq.ring)
		gift_ctx_track(ctx, &ctx->mapped_srqs, &srq->mapped);
	*attr = a;
	return &srq->ibv_srq;
}

static int gift_modify_srq(struct ibv_srq *ibsrq, struct ibv_srq_attr *attr,
			   int attr_mask)
{
	struct gift_srq *srq = to_gsrq(ibsrq);
	struct ibv_modify_srq cmd = {};

	if (srq->wq.ring && (attr_mask & IBV_SRQ_MAX_WR))
		return gift_wq_resize_srq(srq, attr, attr_mask);
	return ibv_cmd_modify_srq(ibsrq, attr, attr_mask, &cmd, sizeof(cmd));
}

static int gift_post_srq_recv(struct ibv_srq *ibsrq, struct ibv_recv_wr *wr,
			      struct ibv_recv_wr **bad_wr)
{
	struct gift_srq *srq = to_gsrq(ibsrq);

	if (srq->wq.ring)
		return gift_wq_post_srq_recv(srq, wr, bad_wr);
	return ibv_cmd_post_srq_recv(ibsrq, wr, bad_wr);
}

static int gift_query_srq(struct ibv_srq *srq, struct ibv_srq_attr *attr)
{
	struct ibv_query_srq cmd = {};

	return ibv_cmd_query_srq(srq, attr, &cmd, sizeof(cmd));
}

static int gift_destroy_srq(struct ibv_srq *ibsrq)
{
	struct gift_srq *srq = to_gsrq(ibsrq);
	int ret;

	ret = ibv_cmd_destroy_srq(ibsrq);
	if (ret)
		return ret;
	gift_srq_unmap(to_gctx(ibsrq->context), srq);
	pthread_mutex_destroy(&srq->wq.lock);
	free(srq);
	return 0;
}

/* Queue pairs */

static struct gift_qp *gift_qp_alloc(void)
{
	struct gift_qp *qp = calloc(1, sizeof(*qp));

	if (!qp)
		return NULL;
	pthread_mutex_init(&qp->sq.lock, NULL);
	pthread_mutex_init(&qp->rq.lock, NULL);
	qp->state = IBV_QPS_RESET;
	return qp;
}

static void gift_qp_free(struct gift_qp *qp)
{
	pthread_mutex_destroy(&qp->sq.lock);
	pthread_mutex_destroy(&qp->rq.lock);
	free(qp);
}

/* The queues of a QP of @type (with or without an SRQ) we ask mapped. */
static uint64_t gift_qp_req_flags(struct ibv_context *ibctx,
				  enum ibv_qp_type type, bool srq)
{
	uint64_t flags = 0;

	if (!to_gctx(ibctx)->map_wqs)
		return 0;
	if (type == IBV_QPT_RC || type == IBV_QPT_UC)
		flags |= GIFT_CREATE_QP_MAPPED_SQ;
	if (!srq)
		flags |= GIFT_CREATE_QP_MAPPED_RQ;
	return flags;
}

/* Off the context's list, and its rings (if it has any) unmapped. */
static void gift_qp_unmap(struct gift_context *ctx, struct gift_qp *qp)
{
	gift_ctx_untrack(ctx, &qp->mapped);
	gift_wq_unmap(&qp->sq);
	gift_wq_unmap(&qp->rq);
}

/*
 * Maps the rings of a QP just created, whose caps are in @cap. A QP whose
 * rings cannot be mapped is destroyed; out of mappings (ENOMEM), EAGAIN
 * asks the caller to create it again without rings.
 */
static int gift_qp_map_created(struct gift_qp *qp, struct ibv_context *ibctx,
			       const struct gift_create_qp_resp *resp,
			       const struct ibv_qp_cap *cap, uint64_t flags)
{
	struct gift_context *ctx = to_gctx(ibctx);
	int ret;

	ret = gift_wq_map(&qp->sq, ibctx->cmd_fd, &resp->sq, true,
			  cap->max_send_sge, cap->max_inline_data);
	if (!ret)
		ret = gift_wq_map(&qp->rq, ibctx->cmd_fd, &resp->rq, false,
				  cap->max_recv_sge, 0);
	if (ret) {
		gift_qp_unmap(ctx, qp);
		ibv_cmd_destroy_qp(&qp->vqp.qp);
		return ret == ENOMEM && flags ? EAGAIN : ret;
	}
	if (qp->sq.ring || qp->rq.ring)
		gift_ctx_track(ctx, &ctx->mapped_qps, &qp->mapped);
	return 0;
}

static struct ibv_qp *gift_create_qp(struct ibv_pd *pd,
				     struct ibv_qp_init_attr *attr)
{
	uint64_t flags = gift_qp_req_flags(pd->context, attr->qp_type,
					   attr->srq);
	struct gift_cmd_create_qp_resp resp;
	struct gift_cmd_create_qp cmd;
	struct ibv_qp_init_attr a;
	struct gift_qp *qp;
	int ret;

	qp = gift_qp_alloc();
	if (!qp)
		return NULL;
	do {
		memset(&cmd, 0, sizeof(cmd));
		memset(&resp, 0, sizeof(resp));
		cmd.flags = flags;
		a = *attr;
		ret = ibv_cmd_create_qp(pd, &qp->vqp.qp, &a, &cmd.ibv_cmd,
					sizeof(cmd), &resp.ibv_resp,
					sizeof(resp));
		if (!ret)
			ret = gift_qp_map_created(qp, pd->context, &resp.drv_payload,
						  &a.cap, flags);
		flags = 0;
	} while (ret == EAGAIN);
	if (ret) {
		gift_qp_free(qp);
		errno = ret;
		return NULL;
	}
	*attr = a;
	return &qp->vqp.qp;
}

/*
 * ibv_create_qp_ex(): a PD is required, send_ops_flags is the only
 * extension (checked by gift_qp_ex_check()); the kernel sees a plain QP.
 */
static struct ibv_qp *gift_create_qp_ex(struct ibv_context *ibctx,
					struct ibv_qp_init_attr_ex *attr)
{
	struct gift_cmd_create_qp_resp resp;
	struct gift_cmd_create_qp cmd;
	struct ibv_qp_init_attr_ex kattr;
	struct gift_qp *qp;
	uint64_t flags;
	int ret;

	ret = gift_qp_ex_check(attr, to_gctx(ibctx)->dev_caps);
	if (ret) {
		errno = ret;
		return NULL;
	}
	qp = gift_qp_alloc();
	if (!qp)
		return NULL;

	flags = gift_qp_req_flags(ibctx, attr->qp_type, attr->srq);
	do {
		memset(&cmd, 0, sizeof(cmd));
		memset(&resp, 0, sizeof(resp));
		cmd.flags = flags;
		kattr = *attr;
		kattr.comp_mask = IBV_QP_INIT_ATTR_PD;
		ret = ibv_cmd_create_qp_ex(ibctx, &qp->vqp, &kattr,
					   &cmd.ibv_cmd, sizeof(cmd),
					   &resp.ibv_resp, sizeof(resp));
		if (!ret)
			ret = gift_qp_map_created(qp, ibctx, &resp.drv_payload,
						  &kattr.cap, flags);
		flags = 0;
	} while (ret == EAGAIN);
	if (ret)
		goto out_free;
	attr->cap = kattr.cap;

	if (attr->comp_mask & IBV_QP_INIT_ATTR_SEND_OPS_FLAGS) {
		ret = gift_qp_ex_init(qp, attr);
		if (ret)
			goto out_destroy;
	}
	return &qp->vqp.qp;

out_destroy:
	gift_qp_unmap(to_gctx(ibctx), qp);
	ibv_cmd_destroy_qp(&qp->vqp.qp);
out_free:
	gift_qp_free(qp);
	errno = ret;
	return NULL;
}

/*
 * libibverbs finds the extended QP of a struct verbs_qp by a flag in its
 * comp_mask, which follows the union of struct ibv_qp and struct ibv_qp_ex.
 * Where that is depends on the size of ibv_qp_ex in the libibverbs loaded,
 * not in the rdma-core tree this provider was built against: rdma-core
 * appends to ibv_qp_ex within one private ABI (56.1 has wr_flush after 44's
 * wr_atomic_write). The loaded library is asked, once, with a probe object
 * through ibv_qp_to_qp_ex(): the offset of our own headers, or one
 * function pointer less. The library writes its comp_mask and xrcd there
 * too, so with an older library the trailing ibv_qp_ex fields it does not
 * know (wr_flush) overlap them and must stay unset: FLUSH is not offered.
 */
static const size_t gift_vqp_comp_mask_offs[] = {
	offsetof(struct verbs_qp, comp_mask),
	offsetof(struct verbs_qp, comp_mask) - sizeof(void (*)(void)),
};

static size_t gift_vqp_comp_mask_off;	/* 0: the library matched neither */
static pthread_once_t gift_vqp_once = PTHREAD_ONCE_INIT;

static void gift_vqp_probe(void)
{
	struct verbs_qp probe;
	size_t i, off;

	for (i = 0; i < sizeof(gift_vqp_comp_mask_offs) /
			sizeof(gift_vqp_comp_mask_offs[0]); i++) {
		off = gift_vqp_comp_mask_offs[i];
		memset(&probe, 0, sizeof(probe));
		*(uint32_t *)((char *)&probe + off) = VERBS_QP_EX;
		if (ibv_qp_to_qp_ex(&probe.qp) == &probe.qp_ex) {
			gift_vqp_comp_mask_off = off;
			return;
		}
	}
}

/* 0, or EOPNOTSUPP when the loaded libibverbs lays verbs_qp out unknowably */
int gift_qp_mark_ex(struct gift_qp *qp)
{
	pthread_once(&gift_vqp_once, gift_vqp_probe);
	if (!gift_vqp_comp_mask_off)
		return EOPNOTSUPP;
	*(uint32_t *)((char *)&qp->vqp + gift_vqp_comp_mask_off) |= VERBS_QP_EX;
	return 0;
}

/*
 * The WRs uverbs' post_send carries go to it in runs; each BIND_MW and
 * LOCAL_INV between them goes through gift_post_mw_wr(), in order. A run
 * is cut out of the chain by clearing the next pointer of its last WR for
 * the duration of the call (restored before returning), so the chain must
 * not be read by another thread meanwhile, as for any post_send.
 */
int gift_qp_post_send(struct gift_qp *qp, struct ibv_send_wr *wr,
		      struct ibv_send_wr **bad_wr)
{
	struct ibv_send_wr *last, *next;
	int ret;

	if (qp->sq.ring)
		return gift_wq_post_send(qp, wr, bad_wr);
	while (wr) {
		if (gift_wr_is_mw(wr)) {
			ret = gift_post_mw_wr(&qp->vqp.qp, wr);
			if (ret) {
				*bad_wr = wr;
				return ret;
			}
			wr = wr->next;
			continue;
		}
		for (last = wr; last->next && !gift_wr_is_mw(last->next);
		     last = last->next)
			;
		next = last->next;
		last->next = NULL;
		ret = ibv_cmd_post_send(&qp->vqp.qp, wr, bad_wr);
		last->next = next;
		if (ret)
			return ret;
		wr = next;
	}
	return 0;
}

static int gift_post_send(struct ibv_qp *ibqp, struct ibv_send_wr *wr,
			  struct ibv_send_wr **bad_wr)
{
	return gift_qp_post_send(to_gqp(ibqp), wr, bad_wr);
}

static int gift_post_recv(struct ibv_qp *ibqp, struct ibv_recv_wr *wr,
			  struct ibv_recv_wr **bad_wr)
{
	struct gift_qp *qp = to_gqp(ibqp);

	if (qp->rq.ring)
		return gift_wq_post_recv(qp, wr, bad_wr);
	return ibv_cmd_post_recv(ibqp, wr, bad_wr);
}

bool gift_qp_is_ours(struct ibv_qp *qp)
{
	return qp->context &&
	       verbs_get_device(qp->context->device)->ops == &gift_dev_ops;
}

int gift_qp_post_ex(struct gift_qp *qp, const struct gift_post_ex_wr *wr)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_QP, GIFT_IB_METHOD_QP_POST_EX,
			       2);

	fill_attr_in_obj(cmd, GIFT_IB_ATTR_QP_POST_EX_HANDLE,
			 qp->vqp.qp.handle);
	fill_attr_in_ptr(cmd, GIFT_IB_ATTR_QP_POST_EX_WR, wr);
	return execute_ioctl(qp->vqp.qp.context, cmd);
}

bool gift_qp_ex_has_wr_flush(void)
{
	pthread_once(&gift_vqp_once, gift_vqp_probe);
	return gift_vqp_comp_mask_off == offsetof(struct verbs_qp, comp_mask);
}

static int gift_query_qp(struct ibv_qp *qp, struct ibv_qp_attr *attr,
			 int attr_mask, struct ibv_qp_init_attr *init_attr)
{
	struct ibv_query_qp cmd = {};

	return ibv_cmd_query_qp(qp, attr, attr_mask, init_attr, &cmd,
				sizeof(cmd));
}

/*
 * The state the application moves the QP to is kept for the mapped
 * queues' checks, under both their locks so that no post sees it half
 * way (a post racing a modify_qp gets either state, as with the kernel).
 */
static int gift_modify_qp(struct ibv_qp *ibqp, struct ibv_qp_attr *attr,
			  int attr_mask)
{
	struct gift_qp *qp = to_gqp(ibqp);
	struct ibv_modify_qp cmd = {};
	int ret;

	ret = ibv_cmd_modify_qp(ibqp, attr, attr_mask, &cmd, sizeof(cmd));
	if (ret || !(attr_mask & IBV_QP_STATE))
		return ret;
	pthread_mutex_lock(&qp->sq.lock);
	pthread_mutex_lock(&qp->rq.lock);
	qp->state = attr->qp_state;
	pthread_mutex_unlock(&qp->rq.lock);
	pthread_mutex_unlock(&qp->sq.lock);
	return 0;
}

static int gift_destroy_qp(struct ibv_qp *ibqp)
{
	struct gift_qp *qp = to_gqp(ibqp);
	uint32_t qp_num = ibqp->qp_num;
	struct ibv_cq *scq = ibqp->send_cq, *rcq = ibqp->recv_cq;
	int ret;

	ret = ibv_cmd_destroy_qp(ibqp);
	if (ret)
		return ret;
	gift_qp_unmap(to_gctx(ibqp->context), qp);
	if (scq)
		gift_cq_discard_qp(to_gcq(scq), qp_num);
	if (rcq && rcq != scq)
		gift_cq_discard_qp(to_gcq(rcq), qp_num);
	gift_qp_ex_fini(qp);
	gift_qp_free(qp);
	return 0;
}

/* Address handles */

static struct ibv_ah *gift_create_ah(struct ibv_pd *pd,
				     struct ibv_ah_attr *attr)
{
	struct ib_uverbs_create_ah_resp resp = {};
	struct ibv_ah *ah;
	int ret;

	ah = calloc(1, sizeof(*ah));
	if (!ah)
		return NULL;

	ret = ibv_cmd_create_ah(pd, ah, attr, &resp, sizeof(resp));
	if (ret) {
		free(ah);
		errno = ret;
		return NULL;
	}
	return ah;
}

static int gift_destroy_ah(struct ibv_ah *ah)
{
	int ret;

	ret = ibv_cmd_destroy_ah(ah);
	if (ret)
		return ret;
	free(ah);
	return 0;
}

/* Context */

/*
 * Rings of CQs, QPs and SRQs the application did not destroy are unmapped
 * here: each holds the uverbs file open, and the kernel would keep the
 * context (its MRs' pages included) until the process exits. Those
 * objects are gone with the context, as every object of it.
 */
static void gift_free_context(struct ibv_context *ibctx)
{
	struct gift_context *ctx = to_gctx(ibctx);
	struct gift_srq *srq;
	struct gift_cq *cq;
	struct gift_qp *qp;

	list_for_each(&ctx->mapped_srqs, srq, mapped.entry)
		gift_wq_unmap(&srq->wq);
	list_for_each(&ctx->mapped_cqs, cq, mapped.entry)
		if (cq->ring)
			munmap(cq->ring, cq->ring_len);
	list_for_each(&ctx->mapped_qps, qp, mapped.entry) {
		gift_wq_unmap(&qp->sq);
		gift_wq_unmap(&qp->rq);
	}
	pthread_mutex_destroy(&ctx->mapped_lock);
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
}

/*
 * The posts go through the mapped rings (gift_wq.c) or, for queues that
 * are not mapped, the kernel's commands: ibv_cmd_post_send/recv/srq_recv
 * return a positive errno and set *bad_wr, as the verbs API wants, and so
 * does ibv_cmd_req_notify_cq. poll_cq reads the CQ's ring (gift_poll_cq()
 * first hands out completions an extended-CQ poll fetched). Multicast
 * attach/detach have no object to track.
 */
static const struct verbs_context_ops gift_ctx_ops = {
	.advise_mr = gift_advise_mr,
	.alloc_mw = gift_alloc_mw,
	.alloc_pd = gift_alloc_pd,
	.bind_mw = gift_bind_mw,
	.attach_mcast = ibv_cmd_attach_mcast,
	.create_ah = gift_create_ah,
	.create_cq = gift_create_cq,
	.create_cq_ex = gift_create_cq_ex,
	.create_qp = gift_create_qp,
	.create_qp_ex = gift_create_qp_ex,
	.create_srq = gift_create_srq,
	.dealloc_mw = gift_dealloc_mw,
	.dealloc_pd = gift_dealloc_pd,
	.dereg_mr = gift_dereg_mr,
	.destroy_ah = gift_destroy_ah,
	.destroy_cq = gift_destroy_cq,
	.destroy_qp = gift_destroy_qp,
	.destroy_srq = gift_destroy_srq,
	.detach_mcast = ibv_cmd_detach_mcast,
	.free_context = gift_free_context,
	.modify_qp = gift_modify_qp,
	.modify_srq = gift_modify_srq,
	.poll_cq = gift_poll_cq,
	.post_recv = gift_post_recv,
	.post_send = gift_post_send,
	.post_srq_recv = gift_post_srq_recv,
	.query_device_ex = gift_query_device_ex,
	.query_port = gift_query_port,
	.query_qp = gift_query_qp,
	.query_srq = gift_query_srq,
	.reg_mr = gift_reg_mr,
	.req_notify_cq = ibv_cmd_req_notify_cq,
	.rereg_mr = gift_rereg_mr,
	.resize_cq = gift_resize_cq,
};

static struct verbs_context *gift_alloc_context(struct ibv_device *ibdev,
						int cmd_fd, void *private_data)
{
	struct verbs_device *vdev = verbs_get_device(ibdev);
	struct gift_get_context cmd = {};
	struct gift_get_context_resp resp = {};
	struct gift_context *ctx;
	int ret;

	/* The kernel driver registers with RDMA_DRIVER_UNKNOWN too */
	ctx = verbs_init_and_alloc_context(ibdev, cmd_fd, ctx, ibv_ctx,
					   RDMA_DRIVER_UNKNOWN);
	if (!ctx)
		return NULL;

	ret = ibv_cmd_get_context(&ctx->ibv_ctx, &cmd.ibv_cmd, sizeof(cmd),
				  &resp.ibv_resp, sizeof(resp));
	if (ret) {
		verbs_err(&ctx->ibv_ctx, "GET_CONTEXT failed: %s\n",
			  strerror(ret));
		goto err;
	}
	if (resp.abi_version != GIFT_UVERBS_ABI_VERSION) {
		verbs_err(&ctx->ibv_ctx,
			  "kernel ABI version %u, provider supports %u\n",
			  resp.abi_version, GIFT_UVERBS_ABI_VERSION);
		ret = EPROTO;
		goto err;
	}
	ctx->abi_version = resp.abi_version;
	ctx->dev_caps = resp.dev_caps;
	pthread_mutex_init(&ctx->mapped_lock, NULL);
	list_head_init(&ctx->mapped_cqs);
	list_head_init(&ctx->mapped_qps);
	list_head_init(&ctx->mapped_srqs);
	ctx->map_cqs = resp.dev_caps & GIFT_DEV_CAP_MAPPED_CQ;
	/* GIFT_MAPPED_CQ=0: poll through the kernel, to compare the two. */
	if (ctx->map_cqs && getenv("GIFT_MAPPED_CQ") &&
	    !strcmp(getenv("GIFT_MAPPED_CQ"), "0"))
		ctx->map_cqs = false;
	ctx->map_wqs = resp.dev_caps & GIFT_DEV_CAP_MAPPED_WQ;
	/* GIFT_MAPPED_WQ=0: post through the kernel's commands. */
	if (ctx->map_wqs && getenv("GIFT_MAPPED_WQ") &&
	    !strcmp(getenv("GIFT_MAPPED_WQ"), "0"))
		ctx->map_wqs = false;

	if (ibv_read_ibdev_sysfs_file(ctx->fw_ver, sizeof(ctx->fw_ver),
				      vdev->sysfs, "fw_ver") <= 0)
		ctx->fw_ver[0] = '\0';

	verbs_set_ops(&ctx->ibv_ctx, &gift_ctx_ops);
	return &ctx->ibv_ctx;

err:
	verbs_uninit_context(&ctx->ibv_ctx);
	free(ctx);
	errno = ret;
	return NULL;
}

static struct verbs_device *gift_alloc_device(struct verbs_sysfs_dev *sysfs)
{
	struct gift_device *dev;

	dev = calloc(1, sizeof(*dev));
	if (!dev)
		return NULL;
	return &dev->ibv_dev;
}

static void gift_uninit_device(struct verbs_device *vdev)
{
	free(container_of(vdev, struct gift_device, ibv_dev));
}

/*
 * Our devices are those whose hca_type attribute reads GIFT_HCA_TYPE; the
 * name is chosen by the user (rdma link add NAME type gift ...) and means
 * nothing. Devices without the attribute belong to somebody else.
 */
static bool gift_match_device(struct verbs_sysfs_dev *sysfs)
{
	char hca_type[32];
	int len;

	len = ibv_read_ibdev_sysfs_file(hca_type, sizeof(hca_type), sysfs,
					"hca_type");
	/* On success the buffer is NUL terminated, one '\n' already gone */
	if (len <= 0)
		return false;
	len = strlen(hca_type);
	while (len > 0 && isspace((unsigned char)hca_type[len - 1]))
		hca_type[--len] = '\0';

	return strcmp(hca_type, GIFT_HCA_TYPE) == 0;
}

/*
 * Nothing to match by driver id, modalias or name. The table must exist all
 * the same: libibverbs walks it unconditionally when it looks for the
 * provider of a device that has a driver id (try_drivers()), so a NULL table
 * crashes ibv_get_device_list() as soon as e.g. an rxe device is present.
 * With no entry matching, the verdict is gift_match_device()'s alone.
 */
static const struct verbs_match_ent gift_match_table[] = {
	{},
};

static const struct verbs_device_ops gift_dev_ops = {
	.name = "gift",
	.match_min_abi_version = GIFT_UVERBS_ABI_VERSION,
	.match_max_abi_version = GIFT_UVERBS_ABI_VERSION,
	.match_table = gift_match_table,
	.match_device = gift_match_device,
	.alloc_device = gift_alloc_device,
	.uninit_device = gift_uninit_device,
	.alloc_context = gift_alloc_context,
};

PROVIDER_DRIVER(gift, gift_dev_ops);

/* Direct verbs */

int giftdv_query_device(struct ibv_context *ibctx,
			struct giftdv_device_attr *attr)
{
	struct gift_context *ctx;

	if (!ibctx || verbs_get_device(ibctx->device)->ops != &gift_dev_ops)
		return EOPNOTSUPP;
	if (!attr)
		return EINVAL;

	ctx = to_gctx(ibctx);
	/* No optional field is defined yet: comp_mask reports none filled */
	memset(attr, 0, sizeof(*attr));
	attr->dev_caps = ctx->dev_caps;
	attr->abi_version = ctx->abi_version;
	return 0;
}

int giftdv_query_mr(struct ibv_mr *mr, struct giftdv_mr_attr *attr)
{
	DECLARE_COMMAND_BUFFER(cmd, UVERBS_OBJECT_MR, GIFT_IB_METHOD_MR_QUERY,
			       4);
	uint64_t npages = 0, shared = 0, stale = 0;
	int ret;

	if (!mr || !mr->context ||
	    verbs_get_device(mr->context->device)->ops != &gift_dev_ops)
		return EOPNOTSUPP;
	if (!attr || attr->comp_mask)
		return EINVAL;
	if (!(to_gctx(mr->context)->dev_caps & GIFT_DEV_CAP_ACCESS_GIFT))
		return EOPNOTSUPP;

	fill_attr_in_obj(cmd, GIFT_IB_ATTR_MR_QUERY_HANDLE, mr->handle);
	fill_attr_out_ptr(cmd, GIFT_IB_ATTR_MR_QUERY_NPAGES, &npages);
	fill_attr_out_ptr(cmd, GIFT_IB_ATTR_MR_QUERY_SHARED_PAGES, &shared);
	fill_attr_out_ptr(cmd, GIFT_IB_ATTR_MR_QUERY_STALE_PAGES, &stale);
	ret = execute_ioctl(mr->context, cmd);
	if (ret)
		return ret;

	attr->npages = npages;
	attr->shared_pages = shared;
	attr->stale_pages = stale;
	return 0;
}

int giftdv_mr_stale_pages(struct ibv_mr *mr, uint64_t *stale)
{
	struct giftdv_mr_attr attr = {};
	int ret;

	if (!stale)
		return EINVAL;
	ret = giftdv_query_mr(mr, &attr);
	if (!ret)
		*stale = attr.stale_pages;
	return ret;
}

static void gift_wq_describe(const struct gift_wq *wq, struct giftdv_wq *out)
{
	if (!out)
		return;
	memset(out, 0, sizeof(*out));
	if (!wq->ring)
		return;
	out->ring = wq->ring;
	out->slots = wq->slots;
	out->size = wq->size;
	out->stride = wq->stride;
}

int giftdv_query_qp_wqs(struct ibv_qp *ibqp, struct giftdv_wq *sq,
			struct giftdv_wq *rq)
{
	struct gift_qp *qp = to_gqp(ibqp);

	if (!gift_qp_is_ours(ibqp))
		return EOPNOTSUPP;
	gift_wq_describe(&qp->sq, sq);
	gift_wq_describe(&qp->rq, rq);
	return 0;
}

int giftdv_query_srq_wq(struct ibv_srq *ibsrq, struct giftdv_wq *wq)
{
	struct gift_srq *srq = to_gsrq(ibsrq);

	if (!ibsrq->context ||
	    verbs_get_device(ibsrq->context->device)->ops != &gift_dev_ops)
		return EOPNOTSUPP;
	pthread_mutex_lock(&srq->wq.lock);
	gift_wq_describe(&srq->wq, wq);
	pthread_mutex_unlock(&srq->wq.lock);
	return 0;
}
