/* The command line: one file per subcommand, dispatched from a table in cli.c. */
#ifndef TY_CLI_CLI_H
#define TY_CLI_CLI_H

int ty_cli_main(int argc, char **argv);

/* The subcommands, each in its own file. */
int ty_cli_run(int argc, char **argv);  /* run.c */
int ty_cli_shim(int argc, char **argv); /* shim.c */
int ty_cli_server(int argc, char **argv); /* server.c */

#endif
