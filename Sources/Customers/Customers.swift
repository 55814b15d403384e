// Customers module.
