/*
 * The output folder of `mgx sim` and `mgx sim --sweep`: making it, and rendering the gnuplot
 * scripts the simulator writes into it.
 */
#ifndef MGX_CTL_SIM_OUT_H
#define MGX_CTL_SIM_OUT_H

/* mkdir -p; 0 when path is a folder afterwards, -1 with errno otherwise. */
int ctl_sim_make_dir(const char *path);

/* Runs gnuplot on DIR/SCRIPT inside DIR. A missing or failing gnuplot is a warning on stderr,
 * not a failure: the script is left for the user to render. quiet hides gnuplot's own output. */
void ctl_sim_render_plots(const char *dir, int quiet, const char *script);

#endif
