/* report: being written. */
