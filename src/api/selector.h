/* Label and field selectors, as the Kubernetes API parses and matches them.
 *
 * Label selectors: equality (`a=b`, `a==b`, `a!=b`), set-based (`a in (x,y)`, `a notin (x)`,
 * `a`, `!a`), comma-separated requirements all of which must hold; keys and values checked as
 * Kubernetes checks them. Field selectors: `field=value`, `field==value`, `field!=value`,
 * comma-separated; the fields a resource supports are `metadata.name`, `metadata.namespace` for
 * every resource, plus per resource what the API server supports (pods: `spec.nodeName`,
 * `spec.restartPolicy`, `spec.schedulerName`, `spec.serviceAccountName`, `status.phase`,
 * `status.podIP`, `status.nominatedNodeName`; events: `involvedObject.kind`,
 * `involvedObject.name`, `involvedObject.namespace`, `involvedObject.uid`, `reason`, `type`,
 * `source`; namespaces: `status.phase`); an unsupported field is an error naming it, as the
 * API server's `field label not supported: x`.
 *
 * Ownership: the selector owns its copies; ty_selector_free accepts NULL. */
#ifndef TY_API_SELECTOR_H
#define TY_API_SELECTOR_H

#include <jansson.h>
#include <stdbool.h>

#include "base/error.h"

typedef struct ty_selector ty_selector;

/* An empty or NULL string is a selector that matches everything. */
int ty_label_selector_parse(const char *text, ty_selector **out, ty_error *err);
bool ty_label_selector_matches(const ty_selector *sel, const json_t *obj);
/* `resource` is the plural resource name ("pods") deciding which fields are allowed. */
int ty_field_selector_parse(const char *resource, const char *text, ty_selector **out,
                            ty_error *err);
bool ty_field_selector_matches(const ty_selector *sel, const json_t *obj);
/* The same decision read from the object's compact JSON text (the store's), unparsed. */
bool ty_field_selector_matches_text(const ty_selector *sel, const char *text, size_t len);
void ty_selector_free(ty_selector *sel);

/* Whether `labels` (a JSON object of strings, or NULL) matches a metav1.LabelSelector object
 * ({matchLabels, matchExpressions[{key, operator In|NotIn|Exists|DoesNotExist, values}]}), as
 * namespaceSelector and nodeAffinity use them. NULL or {} matches everything; an expression
 * with an unknown operator matches nothing (the API validated it before). */
bool ty_label_selector_object_matches(const json_t *selector, const json_t *labels);

#endif
