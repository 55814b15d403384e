// ForecourtCoreTests
