/* agent: being written. */
