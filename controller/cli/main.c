/* The `mgx` executable: everything lives in the controller library. */
#include "cli/cli.h"

int main(int argc, char **argv)
{
    return ctl_main(argc, argv);
}
