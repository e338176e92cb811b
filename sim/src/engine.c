/* engine: being written. */
