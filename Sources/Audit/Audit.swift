// Audit module.
