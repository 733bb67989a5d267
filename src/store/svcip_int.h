/* ClusterIP allocation for Services, as kube-apiserver's service registry does it.
 *
 * A Service that needs a cluster IP (every type but ExternalName) and asks for none (clusterIP
 * absent or "") gets a free address of the service CIDR (default 10.96.0.0/12, set with
 * ty_store_set_service_cidr) at create: a random one above the range's static band (the first
 * min(max(16, size/16), 256) addresses, kept for addresses users ask for), the static band
 * when the rest is full; never the network or broadcast address. An asked-for address must be
 * an IPv4 address in the range and free among the stored Services, else the create fails
 * with INVALID and the API server's words. "None" (headless) takes no address. On update the
 * address is immutable: an update without one keeps the stored one, another one fails; a
 * Service turned from ExternalName gets one. clusterIPs mirrors clusterIP. An address is free
 * again once its Service is deleted or no longer holds it.
 *
 * The addresses in use are tracked from a watch on the store's Services, made (with a list
 * of the stored ones) at the first Service written: creates, updates, deletes and cascades
 * all pass through it.
 *
 * Not part of the public API: store.c calls ty_svcip_prepare() on each Service it creates or
 * updates, before storing it. */
#ifndef TY_STORE_SVCIP_INT_H
#define TY_STORE_SVCIP_INT_H

#include <jansson.h>

#include "base/error.h"
#include "store/store.h"

typedef struct ty_svcip ty_svcip;

/* Sets the range of *a (made when NULL) to `cidr` ("A.B.C.D/N", N from 12 to 30). Fails,
 * changing nothing, when it is not one. */
int ty_svcip_set_cidr(ty_svcip **a, ty_store *s, const char *cidr, ty_error *err);
/* Fills in or checks spec.clusterIP and spec.clusterIPs of `svc` (about to be stored),
 * created when `cur` is NULL, else replacing `cur`. Fails with TY_STORE_INVALID (422) or, with
 * the range full, TY_STORE_INTERNAL. *a is made with the default range when NULL. */
int ty_svcip_prepare(ty_svcip **a, ty_store *s, json_t *svc, const json_t *cur, ty_error *err);
void ty_svcip_free(ty_svcip *a, ty_store *s);

#endif
