/* pv: being written. */
