/* load: being written. */
