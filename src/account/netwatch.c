/* SPDX-License-Identifier: GPL-3.0-or-later */
/* Network changes from the kernel's rtnetlink groups: new or removed
 * addresses, routes and links. Only the fact of a change is used; what
 * changed is for the next pass to find out. */
#include "config.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "account/account.h"

int
fm_netwatch_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | SOCK_NONBLOCK,
	                NETLINK_ROUTE);
	if (fd < 0)
		return -1;
	struct sockaddr_nl sa;
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR |
	               RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

bool
fm_netwatch_read(int fd)
{
	bool changed = false;
	char buf[8192];
	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			/* ENOBUFS: changes were lost, so something changed. */
			if (errno == ENOBUFS)
				changed = true;
			break;
		}
		if (n == 0)
			break;
		int len = (int)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf;
		     NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
			switch (h->nlmsg_type) {
			case RTM_NEWADDR:
			case RTM_DELADDR:
			case RTM_NEWROUTE:
			case RTM_DELROUTE:
			case RTM_NEWLINK:
			case RTM_DELLINK:
				changed = true;
				break;
			default:
				break;
			}
		}
	}
	return changed;
}
