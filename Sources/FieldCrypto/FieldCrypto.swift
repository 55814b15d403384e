// FieldCrypto module.
