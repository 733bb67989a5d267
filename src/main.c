/* trainyard: run Kubeflow training jobs on this machine, or behind a Kubernetes API. */
#include "cli/cli.h"

int main(int argc, char **argv) { return ty_cli_main(argc, argv); }
