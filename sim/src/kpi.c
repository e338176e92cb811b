/* kpi: being written. */
