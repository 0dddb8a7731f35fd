/* LD_PRELOAD shim that sets TCP_NODELAY on every socket accept() returns, so the libmilter
 * reference milter can also be measured with the socket option tls-milter sets itself.
 * On a unix socket setsockopt fails with EOPNOTSUPP, which is ignored.
 * Build: cc -O2 -shared -fPIC -o nodelay-preload.so nodelay-preload.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>

int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	static int (*real_accept)(int, struct sockaddr *, socklen_t *);
	int one = 1;
	int conn;

	if (real_accept == NULL)
		real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	conn = real_accept(fd, addr, len);
	if (conn >= 0)
		(void)setsockopt(conn, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return conn;
}
