/*
 * mgx controller: the command-line front end. One program, `mgx`, with git-style subcommands.
 * Each subcommand is a function taking argc/argv so tests can run it in-process; they write to
 * stdout/stderr and return a process exit status.
 */
#ifndef MGX_CLI_H
#define MGX_CLI_H

#ifdef __cplusplus
extern "C" {
#endif

/* Exit statuses shared by every subcommand. */
enum { CTL_EXIT_OK = 0, CTL_EXIT_FAILURE = 1, CTL_EXIT_USAGE = 2 };

int ctl_main(int argc, char **argv);
int ctl_cmd_market(int argc, char **argv);
int ctl_cmd_sim(int argc, char **argv);
/* `mgx sim --sweep`: ctl_cmd_sim hands every command line with --sweep to it (cmd_sweep.c). */
int ctl_cmd_sim_sweep(int argc, char **argv);
int ctl_cmd_meter(int argc, char **argv);
int ctl_cmd_controller(int argc, char **argv);
int ctl_cmd_agent(int argc, char **argv);
int ctl_cmd_keygen(int argc, char **argv);
int ctl_cmd_participant(int argc, char **argv);
/* `mgx participant meter-key` (cmd_meter_key.c), reached through ctl_cmd_participant. */
int ctl_cmd_meter_key(int argc, char **argv);
int ctl_cmd_ledger(int argc, char **argv);
int ctl_cmd_doctor(int argc, char **argv);
int ctl_cmd_witness(int argc, char **argv);
int ctl_cmd_cluster(int argc, char **argv);
int ctl_cmd_web(int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif
