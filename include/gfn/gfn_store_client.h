/*
 * gfn_store_client.h - the object store from another process.
 *
 * An engine started with gfn_config.store_socket listens on that unix
 * socket. A client process attaches to it and creates, fills, seals, reads
 * and releases objects in place: the engine passes it the shared-memory
 * segments (memfd) its objects live in, and the bytes never travel over
 * the socket. Only the small requests that change an object's state do.
 *
 * Tenants: the engine derives the client's tenant from the uid the kernel
 * reports for the socket (tenant = uid + 1), never from anything the
 * client says. A client sees and maps only its own tenant's segments, and
 * every call on an object of another tenant fails with GFN_EACCES, even
 * with the right id.
 *
 * The calls have the ownership rules and statuses of the gfn_object_*
 * calls in gfn.h, with these additions:
 *  - A client may only release references it holds itself (GFN_ESTATE
 *    otherwise, even when other processes hold some).
 *  - When the client's connection closes (gfn_store_client_detach, exit,
 *    a crash, SIGKILL) the engine gives back every reference it held;
 *    objects it created and never sealed are freed.
 *  - GFN_EINVAL when the engine finds a slot header in the segment
 *    scribbled on (it restores it) or the client finds one that does not
 *    match the engine's answer; GFN_ESHUTDOWN when the engine has gone;
 *    GFN_ETIMEDOUT when it does not answer within 30 s.
 * Pointers handed out (map, get) point into the shared segments and are
 * valid as gfn.h says (until sealed, until released). Memory of another
 * object of the same tenant is reachable through them, as in any shared
 * memory; the engine never trusts what lies there.
 *
 * A handle may be used from several threads at once (calls are serialised
 * on its connection). It must not be used across fork(). Calls set the
 * thread's gfn_error_detail() on failure, with the engine's own message
 * when the engine refused.
 */
#ifndef GFN_GFN_STORE_CLIENT_H
#define GFN_GFN_STORE_CLIENT_H

#include <gfn/gfn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct gfn_store_client gfn_store_client;

/*
 * Connect to the engine listening on socket_path. On success *out owns
 * the connection (give it back with gfn_store_client_detach). GFN_ESYS
 * when the socket cannot be reached (e.g. no engine), GFN_EINVAL for a
 * path that is too long.
 */
GFN_API gfn_status gfn_store_client_attach(const char *socket_path,
                                           gfn_store_client **out);
/*
 * Close the connection: the engine gives back everything this client
 * holds. Unmaps the segments; pointers from map and get become invalid.
 * NULL is a no-op.
 */
GFN_API void gfn_store_client_detach(gfn_store_client *c);

/* The tenant the engine assigned to this client. */
GFN_API uint32_t gfn_store_client_tenant(const gfn_store_client *c);

/*
 * As gfn_object_create: the client owns one reference to *out. The object
 * goes on the NUMA node this thread runs on (as the client reports it).
 */
GFN_API gfn_status gfn_store_client_create(gfn_store_client *c, gfn_dtype dtype,
                                           int ndim, const int64_t *shape,
                                           gfn_object *out);
/*
 * As gfn_object_create_on: the object goes in a segment on NUMA node
 * numa_node (the node of the device that will read it; -1: no hint, as
 * gfn_store_client_create). GFN_EINVAL for a node the engine does not
 * know. The hint decides placement only, never access.
 */
GFN_API gfn_status gfn_store_client_create_on(gfn_store_client *c,
                                              gfn_dtype dtype, int ndim,
                                              const int64_t *shape,
                                              int numa_node, gfn_object *out);
/* As gfn_object_write: copies into the shared segment, in this process. */
GFN_API gfn_status gfn_store_client_write(gfn_store_client *c, gfn_object obj,
                                          size_t off, const void *src,
                                          size_t len);
/* As gfn_object_map: a writable pointer into the shared segment. */
GFN_API gfn_status gfn_store_client_map(gfn_store_client *c, gfn_object obj,
                                        void **data, size_t *size);
/* As gfn_object_seal. */
GFN_API gfn_status gfn_store_client_seal(gfn_store_client *c, gfn_object obj);
/*
 * As gfn_object_get: one more reference, owned by this client, and a view
 * whose data points into the shared segment (no copy).
 */
GFN_API gfn_status gfn_store_client_get(gfn_store_client *c, gfn_object obj,
                                        gfn_object_view *view);
/* As gfn_object_release, for a reference this client holds. */
GFN_API gfn_status gfn_store_client_release(gfn_store_client *c,
                                            gfn_object obj);
/* As gfn_object_delete. */
GFN_API gfn_status gfn_store_client_delete(gfn_store_client *c, gfn_object obj);

#ifdef __cplusplus
}
#endif
#endif /* GFN_GFN_STORE_CLIENT_H */
