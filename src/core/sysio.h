/* sysio.h: recv, send and epoll_wait of the data path as plain system calls.
 *
 * glibc's wrappers of these are thread-cancellation points: in a multi-threaded process each
 * call switches asynchronous cancellation on and off around the system call, about 35
 * instructions a call, four or five calls a transaction. Shoal never cancels a thread, so the
 * data path calls the kernel through syscall(2), which is no cancellation point; errno and the
 * return value are the same. Sanitizer builds keep the wrappers: ASan checks the buffers of
 * recv/send and TSan models their synchronization. */
#ifndef SHOAL_SYSIO_H
#define SHOAL_SYSIO_H

#include <stddef.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define SHOAL_SYSIO_WRAPPED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                     \
    __has_feature(memory_sanitizer)
#define SHOAL_SYSIO_WRAPPED 1
#endif
#endif

static inline ssize_t sys_recv(int fd, void *buf, size_t len, int flags)
{
#ifdef SHOAL_SYSIO_WRAPPED
	return recv(fd, buf, len, flags);
#else
	return syscall(SYS_recvfrom, fd, buf, len, flags, NULL, NULL);
#endif
}

static inline ssize_t sys_send(int fd, const void *buf, size_t len, int flags)
{
#ifdef SHOAL_SYSIO_WRAPPED
	return send(fd, buf, len, flags);
#else
	return syscall(SYS_sendto, fd, buf, len, flags, NULL, 0);
#endif
}

static inline int sys_epoll_wait(int epfd, struct epoll_event *evs, int max, int ms)
{
#ifdef SHOAL_SYSIO_WRAPPED
	return epoll_wait(epfd, evs, max, ms);
#else
	/* epoll_pwait with no signal mask is epoll_wait, and exists on every architecture */
	return (int)syscall(SYS_epoll_pwait, epfd, evs, max, ms, NULL, (size_t)8);
#endif
}

#endif
