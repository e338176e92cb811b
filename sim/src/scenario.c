/* scenario: being written. */
