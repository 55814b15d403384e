// Identity module.
