// Dealers module.
