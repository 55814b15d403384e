#ifndef FORECOURT_CLIBPQ_SHIM_H
#define FORECOURT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
