/*
 * store_proto.h - the messages between the store's listener and client
 * processes (store_server.c, store_client.c). Internal: not API.
 *
 * A SOCK_SEQPACKET unix socket carries one fixed-size request and one
 * fixed-size reply per call, so a message is never split or merged and a
 * message of any other size is garbage. The first request must be ATTACH.
 * The reply to SEGMENT carries the segment's memfd (SCM_RIGHTS). Every
 * reply carries the store's segment epoch: when it changes, the client
 * asks which of its mapped segments still exist (SEG_LIVE) and unmaps
 * the others. Both ends are on one machine, so fields are in host order;
 * fixed-width types and explicit padding keep the layout the same for
 * every compiler.
 */
#ifndef GFN_ENGINE_STORE_PROTO_H
#define GFN_ENGINE_STORE_PROTO_H

#include <stdint.h>

#include "gfn/gfn.h"

#define GFN_SHM_PROTO_MAGIC 0x53464e47u /* "GNFS" */
/* 2: CREATE carries a NUMA placement hint and the client's node. */
#define GFN_SHM_PROTO_VERSION 2u
#define GFN_SHM_LIVE_MAX 32 /* segments asked about in one SEG_LIVE */

enum gfn_shm_op {
	GFN_SHM_OP_ATTACH = 1, /* handshake: the reply names the tenant */
	GFN_SHM_OP_CREATE,     /* reserve an object: one reference */
	GFN_SHM_OP_MAP,        /* where an unsealed object lies */
	GFN_SHM_OP_SEAL,       /* make it immutable */
	GFN_SHM_OP_GET,        /* one more reference to a sealed object */
	GFN_SHM_OP_RELEASE,    /* give one back */
	GFN_SHM_OP_DELETE,     /* stop the id resolving */
	GFN_SHM_OP_SEGMENT,    /* the memfd of a segment, with the reply */
	GFN_SHM_OP_SEG_LIVE,   /* which of these segments still exist */
	GFN_SHM_OP_END         /* first value that is not an op */
};

typedef struct gfn_shm_req {
	uint32_t magic;                  /* GFN_SHM_PROTO_MAGIC */
	uint16_t version;                /* GFN_SHM_PROTO_VERSION */
	uint16_t op;                     /* enum gfn_shm_op */
	uint32_t seq;                    /* echoed by the reply */
	uint32_t dtype;                  /* CREATE */
	int32_t ndim;                    /* CREATE */
	uint32_t seg;                    /* SEGMENT: its id */
	uint64_t id_hi, id_lo;           /* the object, for object ops */
	int64_t shape[GFN_MAX_DIMS];     /* CREATE */
	uint32_t nsegs;                  /* SEG_LIVE: entries in segs */
	uint32_t segs[GFN_SHM_LIVE_MAX]; /* SEG_LIVE: segment ids */
	int32_t node;        /* CREATE: NUMA node wanted, -1: no hint */
	int32_t client_node; /* CREATE: node the client runs on, -1: unknown */
	uint32_t pad;        /* zero */
} gfn_shm_req;

typedef struct gfn_shm_rep {
	uint32_t magic;              /* GFN_SHM_PROTO_MAGIC */
	uint16_t version;            /* GFN_SHM_PROTO_VERSION */
	uint16_t op;                 /* the request's op */
	uint32_t seq;                /* the request's seq */
	int32_t status;              /* gfn_status of the call */
	uint32_t tenant;             /* the client's tenant */
	uint32_t epoch;              /* segment epoch of the store */
	uint64_t id_hi, id_lo;       /* CREATE: the new object */
	uint32_t seg;                /* segment of the object */
	uint32_t dtype;              /* object: element type */
	int32_t ndim;                /* object: dimensions */
	int32_t node;                /* object: NUMA node of its segment */
	uint64_t seg_size;           /* bytes of that segment */
	uint64_t off;                /* its slot header in the segment */
	uint64_t size;               /* object bytes */
	int64_t shape[GFN_MAX_DIMS]; /* object extents */
	uint64_t live;               /* SEG_LIVE: bit k for segs[k] */
	char detail[256];            /* detail message of a failure */
} gfn_shm_rep;

_Static_assert(sizeof(gfn_shm_req) == 248, "request layout");
_Static_assert(sizeof(gfn_shm_rep) == 408, "reply layout");

#endif /* GFN_ENGINE_STORE_PROTO_H */
