// Orders module.
