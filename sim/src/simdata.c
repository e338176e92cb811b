/* simdata: being written. */
