#ifndef FORECOURT_COPENSSL_SHIM_H
#define FORECOURT_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/rand.h>
#endif
