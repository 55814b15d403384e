#ifndef FORECOURT_CLIBPQ_SHIM_H
#define FORECOURT_CLIBPQ_SHIM_H
#include <libpq-fe.h>
#ifdef __linux__
/* For the pool's reactor, which waits on libpq's sockets (docs/architecture.md, "Threads"). */
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
#endif
