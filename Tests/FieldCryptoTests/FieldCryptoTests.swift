// FieldCryptoTests
