"""Push metrics of a Katib trial to trainyard, as Katib's `report_metrics` does.

trainyard gives every trial's containers KATIB_TRIAL_NAME, KATIB_TRIAL_NAMESPACE and (under
`trainyard server`) TRAINYARD_METRICS_URL, the trial's Push endpoint:

    POST <server>/apis/kubeflow.org/v1beta1/namespaces/<ns>/trials/<trial>/metrics
    {"metrics": {"accuracy": 0.93, "loss": 0.21}}

Use from the trial:  from report_metrics import report_metrics; report_metrics({"accuracy": a})
or as a command:    python3 report_metrics.py accuracy=0.93 loss=0.21
Only the standard library is used, so any image with a Python runs it."""
import json
import os
import sys
import time
import urllib.request


def report_metrics(metrics, url=None, timeout=10):
    url = url or os.environ.get("TRAINYARD_METRICS_URL")
    if not url:
        raise RuntimeError("TRAINYARD_METRICS_URL is not set: is this a trial of an "
                           "Experiment with metricsCollectorSpec.collector.kind Push?")
    body = json.dumps({"metrics": {k: float(v) for k, v in metrics.items()},
                       "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    req = urllib.request.Request(url, data=body.encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    token = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    if os.path.exists(token):
        req.add_header("Authorization", "Bearer " + open(token).read().strip())
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status


if __name__ == "__main__":
    report_metrics(dict(a.split("=", 1) for a in sys.argv[1:]))
