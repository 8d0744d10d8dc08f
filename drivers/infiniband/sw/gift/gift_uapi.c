// SPDX-License-Identifier: GPL-2.0
/*
 * rdma_gift driver-specific uverbs methods (ioctl interface), defined in
 * include/uapi/rdma/gift-abi.h and called by the provider's giftdv_*()
 * functions.
 *
 * GIFT_IB_METHOD_MR_QUERY on UVERBS_OBJECT_MR tells how a user MR holds
 * its pages: how many it spans, how many a gift MR holds by reference
 * because they were shared copy-on-write at registration, and how many
 * are stale (the process no longer maps them at their address).
 *
 * ib_core locks the MR's uobject for reading while the handler runs;
 * rereg and dereg lock it exclusively, so the MR's umem cannot be
 * replaced or released under the handler.
 *
 * GIFT_IB_METHOD_QP_POST_EX on UVERBS_OBJECT_QP posts one RDMA FLUSH or
 * ATOMIC WRITE, which the uverbs post_send command cannot carry. The QP's
 * uobject is locked for reading, as post_send locks it.
 * GIFT_IB_METHOD_QP_POST_MW on UVERBS_OBJECT_QP posts one BIND_MW or
 * LOCAL_INV work request (gift_qp_post_mw_wr()); the window and the MR
 * are named by handle here and by key in the work request (gift_mw.c).
 *
 * GIFT_IB_METHOD_SRQ_PREPARE_RESIZE on UVERBS_OBJECT_SRQ makes the new
 * ring of a mapped SRQ's resize (gift_srq_prepare_resize()); the SRQ's
 * uobject is locked for reading, as post_srq_recv locks it (the SRQ's
 * resize_lock serialises the two resize steps).
 */

#define UVERBS_MODULE_NAME gift_ib
#include <rdma/uverbs_ioctl.h>
#include <rdma/uverbs_named_ioctl.h>
#include <rdma/uverbs_std_types.h>

#include <rdma/gift_wr.h>

#include "gift.h"
#include "gift_mr.h"
#include "gift_srq.h"
#include "gift_uapi.h"

static int gift_uapi_put_u64(struct uverbs_attr_bundle *attrs, u16 id,
			     u64 val)
{
	if (!uverbs_attr_is_valid(attrs, id))
		return 0;
	return uverbs_copy_to(attrs, id, &val, sizeof(val));
}

/**
 * gift_mr_query() - GIFT_IB_METHOD_MR_QUERY: how a user MR holds its pages
 * @attrs: the MR handle and the optional u64 outputs
 *
 * The stale page count is computed only when it is asked for, with
 * gift_umem_stale_pages().
 *
 * Context: process context; sleeps.
 *
 * Return: 0; -EINVAL for an MR without user pages (DMA or fast-register
 * MR); -EFAULT when an output cannot be written; the errors of
 * gift_umem_stale_pages().
 */
static int gift_mr_query(struct uverbs_attr_bundle *attrs)
{
	struct ib_mr *ibmr = uverbs_attr_get_obj(attrs,
						 GIFT_IB_ATTR_MR_QUERY_HANDLE);
	struct gift_umem *umem;
	u64 stale = 0;
	int err;

	if (IS_ERR(ibmr))
		return PTR_ERR(ibmr);
	umem = to_gift_mr(ibmr)->umem;
	if (!umem)
		return -EINVAL;

	if (uverbs_attr_is_valid(attrs, GIFT_IB_ATTR_MR_QUERY_STALE_PAGES)) {
		err = gift_umem_stale_pages(umem, &stale);
		if (err)
			return err;
	}
	err = gift_uapi_put_u64(attrs, GIFT_IB_ATTR_MR_QUERY_NPAGES,
				umem->npages);
	if (!err)
		err = gift_uapi_put_u64(attrs,
					GIFT_IB_ATTR_MR_QUERY_SHARED_PAGES,
					umem->nshared);
	if (!err)
		err = gift_uapi_put_u64(attrs,
					GIFT_IB_ATTR_MR_QUERY_STALE_PAGES,
					stale);
	return err;
}

static int UVERBS_HANDLER(GIFT_IB_METHOD_MR_QUERY)(struct uverbs_attr_bundle *attrs)
{
	return gift_mr_query(attrs);
}

#define GIFT_MR_QUERY_OUT(id) \
	UVERBS_ATTR_PTR_OUT(id, UVERBS_ATTR_TYPE(u64), UA_OPTIONAL)

DECLARE_UVERBS_NAMED_METHOD(GIFT_IB_METHOD_MR_QUERY,
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_MR_QUERY_HANDLE,
					    UVERBS_OBJECT_MR,
					    UVERBS_ACCESS_READ, UA_MANDATORY),
			    GIFT_MR_QUERY_OUT(GIFT_IB_ATTR_MR_QUERY_NPAGES),
			    GIFT_MR_QUERY_OUT(GIFT_IB_ATTR_MR_QUERY_SHARED_PAGES),
			    GIFT_MR_QUERY_OUT(GIFT_IB_ATTR_MR_QUERY_STALE_PAGES));

ADD_UVERBS_METHODS(gift_mr_methods, UVERBS_OBJECT_MR,
		   &UVERBS_METHOD(GIFT_IB_METHOD_MR_QUERY));

#define GIFT_POST_EX_FLAGS	(IB_SEND_SIGNALED | IB_SEND_FENCE | \
				 IB_SEND_SOLICITED)

/**
 * gift_qp_post_ex_user() - GIFT_IB_METHOD_QP_POST_EX: one FLUSH or ATOMIC
 *	WRITE on a user QP
 * @attrs: the QP handle and struct gift_post_ex_wr
 *
 * Context: process context.
 *
 * Return: 0; -EINVAL for another opcode, a QP that is not RC, send flags
 * other than signaled, fenced or solicited, non-zero reserved bytes, or
 * what gift_post_send() refuses; -ENOMEM for a full send queue; -EFAULT
 * when the WR cannot be read.
 */
static int gift_qp_post_ex_user(struct uverbs_attr_bundle *attrs)
{
	struct ib_qp *ibqp = uverbs_attr_get_obj(attrs,
						 GIFT_IB_ATTR_QP_POST_EX_HANDLE);
	struct gift_post_ex_wr uwr;
	struct gift_ex_wr ex = {};
	int err;

	if (IS_ERR(ibqp))
		return PTR_ERR(ibqp);
	err = uverbs_copy_from(&uwr, attrs, GIFT_IB_ATTR_QP_POST_EX_WR);
	if (err)
		return err;
	if ((uwr.opcode != IB_UVERBS_WR_FLUSH &&
	     uwr.opcode != IB_UVERBS_WR_ATOMIC_WRITE) ||
	    ibqp->qp_type != IB_QPT_RC ||
	    (uwr.send_flags & ~GIFT_POST_EX_FLAGS) ||
	    memchr_inv(uwr.reserved, 0, sizeof(uwr.reserved)))
		return -EINVAL;

	ex.wr.wr_id = uwr.wr_id;
	ex.wr.opcode = uwr.opcode == IB_UVERBS_WR_FLUSH ? IB_WR_FLUSH :
							  IB_WR_ATOMIC_WRITE;
	ex.wr.send_flags = uwr.send_flags;
	ex.remote_addr = uwr.remote_addr;
	ex.rkey = uwr.rkey;
	ex.length = uwr.length;
	ex.flush_type = uwr.flush_type;
	ex.flush_level = uwr.flush_level;
	memcpy(ex.atomic_wr, uwr.atomic_wr, sizeof(ex.atomic_wr));
	return gift_qp_post_ex(ibqp, &ex);
}

static int UVERBS_HANDLER(GIFT_IB_METHOD_QP_POST_EX)(struct uverbs_attr_bundle *attrs)
{
	return gift_qp_post_ex_user(attrs);
}

DECLARE_UVERBS_NAMED_METHOD(GIFT_IB_METHOD_QP_POST_EX,
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_QP_POST_EX_HANDLE,
					    UVERBS_OBJECT_QP,
					    UVERBS_ACCESS_READ, UA_MANDATORY),
			    UVERBS_ATTR_PTR_IN(GIFT_IB_ATTR_QP_POST_EX_WR,
					       UVERBS_ATTR_TYPE(struct gift_post_ex_wr),
					       UA_MANDATORY));

ADD_UVERBS_METHODS(gift_qp_methods, UVERBS_OBJECT_QP,
		   &UVERBS_METHOD(GIFT_IB_METHOD_QP_POST_EX));

/**
 * gift_qp_post_mw() - GIFT_IB_METHOD_QP_POST_MW: queue a BIND_MW/LOCAL_INV
 * @attrs: the QP, the work request, and for a bind the window and the MR
 *
 * Context: process context.
 *
 * Return: 0; -EINVAL for an unknown opcode, access or flag bit, a bind
 * without a window; the errors of gift_qp_post_mw_wr().
 */
static int gift_qp_post_mw(struct uverbs_attr_bundle *attrs)
{
	struct ib_qp *ibqp = uverbs_attr_get_obj(attrs,
						 GIFT_IB_ATTR_QP_POST_MW_QP_HANDLE);
	struct gift_mw_bind bind = {};
	struct gift_post_mw_wr wr;
	enum ib_wr_opcode opcode;
	struct ib_mw *ibmw;
	struct ib_mr *ibmr;
	int err;

	if (IS_ERR(ibqp))
		return PTR_ERR(ibqp);
	err = uverbs_copy_from_or_zero(&wr, attrs, GIFT_IB_ATTR_QP_POST_MW_WR);
	if (err)
		return err;
	switch (wr.opcode) {
	case IB_UVERBS_WR_LOCAL_INV:
		opcode = IB_WR_LOCAL_INV;
		break;
	case IB_UVERBS_WR_BIND_MW:
		opcode = IB_WR_BIND_MW;
		ibmw = uverbs_attr_get_obj(attrs,
					   GIFT_IB_ATTR_QP_POST_MW_MW_HANDLE);
		if (IS_ERR(ibmw))
			return -EINVAL;
		ibmr = uverbs_attr_get_obj(attrs,
					   GIFT_IB_ATTR_QP_POST_MW_MR_HANDLE);
		bind.mw_index = to_gift_ib_mw(ibmw)->mw->index;
		bind.lkey = IS_ERR(ibmr) ? 0 : ibmr->lkey;
		bind.rkey = wr.rkey;
		bind.addr = wr.addr;
		bind.length = wr.length;
		bind.access = wr.access;
		break;
	default:
		return -EINVAL;
	}
	return gift_qp_post_mw_wr(to_gift_qp(ibqp), wr.wr_id, wr.send_flags,
				  opcode, wr.rkey, &bind);
}

static int UVERBS_HANDLER(GIFT_IB_METHOD_QP_POST_MW)(struct uverbs_attr_bundle *attrs)
{
	return gift_qp_post_mw(attrs);
}

DECLARE_UVERBS_NAMED_METHOD(GIFT_IB_METHOD_QP_POST_MW,
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_QP_POST_MW_QP_HANDLE,
					    UVERBS_OBJECT_QP,
					    UVERBS_ACCESS_READ, UA_MANDATORY),
			    UVERBS_ATTR_PTR_IN(GIFT_IB_ATTR_QP_POST_MW_WR,
					       UVERBS_ATTR_STRUCT(struct gift_post_mw_wr,
								  rkey),
					       UA_MANDATORY),
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_QP_POST_MW_MW_HANDLE,
					    UVERBS_OBJECT_MW,
					    UVERBS_ACCESS_READ, UA_OPTIONAL),
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_QP_POST_MW_MR_HANDLE,
					    UVERBS_OBJECT_MR,
					    UVERBS_ACCESS_READ, UA_OPTIONAL));

ADD_UVERBS_METHODS(gift_qp_mw_methods, UVERBS_OBJECT_QP,
		   &UVERBS_METHOD(GIFT_IB_METHOD_QP_POST_MW));

static int UVERBS_HANDLER(GIFT_IB_METHOD_SRQ_PREPARE_RESIZE)(struct uverbs_attr_bundle *attrs)
{
	struct ib_srq *ibsrq =
		uverbs_attr_get_obj(attrs, GIFT_IB_ATTR_SRQ_PREPARE_HANDLE);
	struct gift_wq_ring_resp resp;
	u32 max_wr;
	int err;

	if (IS_ERR(ibsrq))
		return PTR_ERR(ibsrq);
	err = uverbs_copy_from(&max_wr, attrs, GIFT_IB_ATTR_SRQ_PREPARE_MAX_WR);
	if (err)
		return err;
	err = gift_srq_prepare_resize(to_gift_srq(ibsrq), max_wr,
				      attrs->context, &resp);
	if (err)
		return err;
	return uverbs_copy_to(attrs, GIFT_IB_ATTR_SRQ_PREPARE_RESP, &resp,
			      sizeof(resp));
}

DECLARE_UVERBS_NAMED_METHOD(GIFT_IB_METHOD_SRQ_PREPARE_RESIZE,
			    UVERBS_ATTR_IDR(GIFT_IB_ATTR_SRQ_PREPARE_HANDLE,
					    UVERBS_OBJECT_SRQ,
					    UVERBS_ACCESS_READ, UA_MANDATORY),
			    UVERBS_ATTR_PTR_IN(GIFT_IB_ATTR_SRQ_PREPARE_MAX_WR,
					       UVERBS_ATTR_TYPE(u32),
					       UA_MANDATORY),
			    UVERBS_ATTR_PTR_OUT(GIFT_IB_ATTR_SRQ_PREPARE_RESP,
						UVERBS_ATTR_TYPE(struct gift_wq_ring_resp),
						UA_MANDATORY));

ADD_UVERBS_METHODS(gift_srq_methods, UVERBS_OBJECT_SRQ,
		   &UVERBS_METHOD(GIFT_IB_METHOD_SRQ_PREPARE_RESIZE));

/* Set as ib_device.driver_def of every gift device. */
const struct uapi_definition gift_uapi_defs[] = {
	UAPI_DEF_CHAIN_OBJ_TREE(UVERBS_OBJECT_MR, &gift_mr_methods),
	UAPI_DEF_CHAIN_OBJ_TREE(UVERBS_OBJECT_QP, &gift_qp_methods),
	UAPI_DEF_CHAIN_OBJ_TREE(UVERBS_OBJECT_QP, &gift_qp_mw_methods),
	UAPI_DEF_CHAIN_OBJ_TREE(UVERBS_OBJECT_SRQ, &gift_srq_methods),
	{},
};
