// Events module.
