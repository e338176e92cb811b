/* battery: being written. */
