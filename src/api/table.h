/* Tables (meta.k8s.io/v1 Table): what the API server sends when kubectl asks for
 * `application/json;as=Table;v=v1;g=meta.k8s.io`, so `kubectl get` prints the columns users
 * expect.
 *
 * Columns per resource, as a real cluster with Kubeflow installed prints them:
 * pods: Name, Ready ("1/1"), Status (kubectl's reason: Running, Completed, Error, OOMKilled,
 * CrashLoopBackOff, Terminating, Pending...), Restarts ("2 (5s ago)"), Age, then priority 1
 * (shown by -o wide): IP, Node, Nominated Node, Readiness Gates;
 * pytorchjobs/tfjobs: Name, State (the type of the last condition), Age;
 * services: Name, Type, Cluster-IP, External-IP, Port(s), Age, (wide) Selector;
 * nodes: Name, Status, Roles, Age, Version, (wide) Internal-IP, External-IP, OS-Image,
 * Kernel-Version, Container-Runtime; namespaces: Name, Status, Age;
 * events: Last Seen, Type, Reason, Object, Message; priorityclasses: Name, Value,
 * Global-Default, Age, PreemptionPolicy; the Kueue kinds as their CRDs' printer columns say
 * (missing values are null cells, which kubectl prints as <none>): clusterqueues: Name, Cohort,
 * (wide) Strategy, Pending Workloads, (wide) Admitted Workloads, Age; localqueues: Name,
 * ClusterQueue, Pending Workloads, Admitted Workloads, Age; workloads: Name, Queue, Reserved in,
 * Admitted, Finished, Age; workloadpriorityclasses: Name, Value, Age; anything else (resource
 * flavors): Name, Age.
 * Ages are formatted as kubectl does (ty_time_format_age). Each row carries the object as
 * `include_object` asks: "Object" (the whole object), "Metadata" (the default: a
 * PartialObjectMetadata with apiVersion meta.k8s.io/v1) or "None".
 *
 * Returns a new Table object; `objects` is an array of objects of `resource`. Its metadata
 * is empty: the caller sets resourceVersion (and continue) as for a list. Every column is
 * filled, wide ones included (priority 1), as the API server does; kubectl hides them without
 * -o wide. Pods that succeeded or failed carry the row condition Completed, so kubectl can
 * tell them apart. */
#ifndef TY_API_TABLE_H
#define TY_API_TABLE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "api/kinds.h"
#include "base/buf.h"

json_t *ty_table_build(const char *resource, const json_t *objects, const char *include_object,
                       int64_t now_ns);

/* The same Table written as text, row by row, for lists of thousands of objects whose rows
 * carry no more than their metadata (include_object "Metadata" or "None", not "Object"). The
 * text equals ty_table_build()'s answer for the same objects.
 * ty_table_row_source() is what a row's cells read of an object's JSON text, found without
 * parsing the rest: the values at the paths the resource's printer reads ("metadata.name";
 * "status.conditions.-1.type", the last element of an array, put in an array of its own), or
 * the whole object parsed for printers that read more. NULL when the text does not parse.
 * ty_table_text_begin() appends the Table up to its first row, with `metadata` (JSON text)
 * as its metadata; ty_table_text_row() one row (`first`: no comma before it) from the row
 * source and the object's metadata as JSON text, copied as it is into the row's
 * PartialObjectMetadata; the caller closes it with "]}". */
json_t *ty_table_row_source(const char *resource, const char *text, size_t len);
void ty_table_text_begin(ty_buf *b, const char *resource, const char *metadata);
void ty_table_text_row(ty_buf *b, bool first, const char *resource, const json_t *obj,
                       const char *meta_text, size_t meta_len, const char *include_object,
                       int64_t now_ns);

/* A custom resource kind's printer as its CRD's additionalPrinterColumns (a new array): the
 * columns of its Table that have a JSONPath, in order (Name left out: kubectl always prints
 * it; Age as `.metadata.creationTimestamp`); empty for a kind without a printer. */
json_t *ty_table_crd_columns(const ty_kind_info *k);

#endif
