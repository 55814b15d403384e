// ForecourtClient module.
