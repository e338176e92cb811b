/* solar: being written. */
