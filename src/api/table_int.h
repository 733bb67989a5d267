/* Private to src/api: the Tables' printers (table.c) that the registry of kinds (kinds.c)
 * points each kind at. */
#ifndef TY_API_TABLE_INT_H
#define TY_API_TABLE_INT_H

struct ty_table_kind;

extern const struct ty_table_kind ty_table_pods;
extern const struct ty_table_kind ty_table_jobs; /* PyTorchJob, TFJob */
extern const struct ty_table_kind ty_table_services;
extern const struct ty_table_kind ty_table_nodes;
extern const struct ty_table_kind ty_table_namespaces;
extern const struct ty_table_kind ty_table_events;
extern const struct ty_table_kind ty_table_clusterqueues;
extern const struct ty_table_kind ty_table_localqueues;
extern const struct ty_table_kind ty_table_workloads;
extern const struct ty_table_kind ty_table_workloadpriorityclasses;
extern const struct ty_table_kind ty_table_priorityclasses;
extern const struct ty_table_kind ty_table_persistentvolumes;
extern const struct ty_table_kind ty_table_persistentvolumeclaims;

#endif
