/*
 * The output folder of `mgx sim` and `mgx sim --sweep` (sim_out.h).
 */
#define _GNU_SOURCE
#include "cli/sim_out.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

int ctl_sim_make_dir(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        buf[i] = c;
    }
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

void ctl_sim_render_plots(const char *dir, int quiet, const char *script)
{
    fflush(NULL); /* the child must not write our buffers again */
    pid_t pid = fork();
    if (pid == 0) {
        if (chdir(dir) != 0)
            _exit(126);
        if (quiet && !freopen("/dev/null", "w", stderr))
            _exit(126);
        execlp("gnuplot", "gnuplot", script, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) < 0 || !WIFEXITED(status)) {
        fprintf(stderr, "mgx sim: could not run gnuplot; %s/%s renders the plots\n", dir, script);
        return;
    }
    if (WEXITSTATUS(status) == 127)
        fprintf(stderr, "mgx sim: gnuplot not found (apt-get install gnuplot-nox); "
                        "%s/%s renders the plots\n",
                dir, script);
    else if (WEXITSTATUS(status) != 0)
        fprintf(stderr, "mgx sim: gnuplot failed on %s/%s\n", dir, script);
}
