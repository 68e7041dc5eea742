/*
 * store_server.h - the store's unix-socket listener, through which client
 * processes attach to it (store_server.c). Internal: not API.
 */
#ifndef GFN_ENGINE_STORE_SERVER_H
#define GFN_ENGINE_STORE_SERVER_H

#include "gfn/gfn.h"

struct gfn_store;
typedef struct gfn_store_server gfn_store_server;

/*
 * Listen on path (a SOCK_SEQPACKET unix socket, mode 0666: who may attach
 * is decided by the directory it is in; what a client may touch, by its
 * uid) and serve client processes on one thread. A stale socket file left
 * by a dead engine is replaced; a live one is GFN_EEXIST. A connection
 * that has not attached within attach_timeout_ms (0: 10 s) is dropped.
 */
gfn_status gfn__store_server_start(struct gfn_store *st, const char *path,
                                   unsigned attach_timeout_ms,
                                   gfn_store_server **out);
/*
 * Stop: close every connection (giving back what each client held), the
 * socket and its file, and join the thread. NULL is a no-op.
 */
void gfn__store_server_stop(gfn_store_server *srv);

#endif /* GFN_ENGINE_STORE_SERVER_H */
