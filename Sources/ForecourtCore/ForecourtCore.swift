// ForecourtCore module.
