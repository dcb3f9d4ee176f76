/*
 * pgmpeer: an OpenPGM (libpgm 5.3) peer for relmcast's interop tests.
 * Written for these tests against libpgm's public headers; run it only
 * inside the test network namespaces (scripts/interop).
 *
 *   pgmpeer recv -i IFADDR -g GROUP -p PORT -n COUNT [-t TIMEOUT_MS] [-w RXW_SQNS]
 *   pgmpeer send -i IFADDR -g GROUP -p PORT -n COUNT [-t TIMEOUT_MS] [-w TXW_SQNS]
 *                [-r ODATA_BYTES_PER_S] [-s MINSIZE] [-S MAXSIZE] [-l LINGER_MS]
 *
 * Both use UDP encapsulation with the unicast and multicast ports equal to
 * PORT (the epgm convention), and print on stdout, one line each:
 *
 *   ready                 joined and connected
 *   data LEN FNV          (recv) one message: length and FNV-1a 64 in hex
 *   reset                 (recv) unrecoverable loss reported by libpgm
 *   sent N                (send) N messages sent; lingering for repairs
 *   done N                the end: N messages received or sent
 *
 * The sender's message i is numbered(i): MINSIZE..MAXSIZE bytes (the
 * size varies with i), the first 8 bytes i big-endian, then byte j is
 * (i*31 + j*7) & 0xff. It sends from a 16-byte aligned buffer and only
 * messages of one TPDU (MAXSIZE <= 1400): libpgm 5.3's SSE2
 * checksum-and-copy crashes otherwise (research/openpgm.md §11.1).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pgm/pgm.h>

struct opts {
	const char *mode, *ifaddr, *group;
	int port;
	long count;
	long timeout_ms;
	int window;
	int rate;
	int minsize, maxsize;
	long linger_ms;
};

static void die(const char *what, pgm_error_t *err)
{
	fprintf(stderr, "pgmpeer: %s: %s\n", what, err && err->message ? err->message : "failed");
	if (err)
		pgm_error_free(err);
	exit(1);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return h;
}

#define FNV_OFFSET 0xcbf29ce484222325ULL

static size_t numbered(unsigned char *buf, long i, int minsize, int maxsize)
{
	size_t n = (size_t)minsize + (size_t)((i * 7919L) % (maxsize - minsize + 1));
	for (int k = 0; k < 8; k++)
		buf[k] = (unsigned char)((uint64_t)i >> (56 - 8 * k));
	for (size_t j = 8; j < n; j++)
		buf[j] = (unsigned char)((i * 31 + (long)j * 7) & 0xff);
	return n;
}

static void setopt(pgm_sock_t *sock, int level, int name, const void *val, socklen_t len, const char *what)
{
	if (!pgm_setsockopt(sock, level, name, val, len)) {
		fprintf(stderr, "pgmpeer: setting %s failed\n", what);
		exit(1);
	}
}

static void setint(pgm_sock_t *sock, int name, int v, const char *what)
{
	setopt(sock, IPPROTO_PGM, name, &v, sizeof v, what);
}

/* open creates, configures, binds and connects the PGM socket. */
static pgm_sock_t *open_sock(const struct opts *o, int sender)
{
	pgm_error_t *err = NULL;
	struct pgm_addrinfo_t *ai = NULL;
	char network[256];
	snprintf(network, sizeof network, "%s;%s", o->ifaddr, o->group);
	if (!pgm_getaddrinfo(network, NULL, &ai, &err))
		die("pgm_getaddrinfo", err);

	pgm_sock_t *sock = NULL;
	if (!pgm_socket(&sock, ai->ai_send_addrs[0].gsr_group.ss_family, SOCK_SEQPACKET, IPPROTO_UDP, &err))
		die("pgm_socket", err);

	/* One port for unicast and multicast, as ZeroMQ's epgm does. */
	setint(sock, PGM_UDP_ENCAP_UCAST_PORT, o->port, "PGM_UDP_ENCAP_UCAST_PORT");
	setint(sock, PGM_UDP_ENCAP_MCAST_PORT, o->port, "PGM_UDP_ENCAP_MCAST_PORT");
	setint(sock, PGM_MTU, 1500, "PGM_MTU");
	int rcvbuf = 4 << 20;
	setopt(sock, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf, "SO_RCVBUF");
	if (sender) {
		setint(sock, PGM_SEND_ONLY, 1, "PGM_SEND_ONLY");
		setint(sock, PGM_TXW_SQNS, o->window, "PGM_TXW_SQNS");
		setint(sock, PGM_ODATA_MAX_RTE, o->rate, "PGM_ODATA_MAX_RTE");
		setint(sock, PGM_AMBIENT_SPM, (int)pgm_secs(30), "PGM_AMBIENT_SPM");
		const int heartbeat[] = {
			(int)pgm_msecs(100), (int)pgm_msecs(100), (int)pgm_msecs(100),
			(int)pgm_msecs(100), (int)pgm_msecs(1300), (int)pgm_secs(7),
			(int)pgm_secs(16), (int)pgm_secs(25), (int)pgm_secs(30),
		};
		setopt(sock, IPPROTO_PGM, PGM_HEARTBEAT_SPM, heartbeat, sizeof heartbeat, "PGM_HEARTBEAT_SPM");
	} else {
		setint(sock, PGM_RECV_ONLY, 1, "PGM_RECV_ONLY");
		setint(sock, PGM_RXW_SQNS, o->window, "PGM_RXW_SQNS");
		setint(sock, PGM_PEER_EXPIRY, (int)pgm_secs(300), "PGM_PEER_EXPIRY");
		setint(sock, PGM_SPMR_EXPIRY, (int)pgm_msecs(25), "PGM_SPMR_EXPIRY");
		setint(sock, PGM_NAK_BO_IVL, (int)pgm_msecs(50), "PGM_NAK_BO_IVL");
		setint(sock, PGM_NAK_RPT_IVL, (int)pgm_msecs(200), "PGM_NAK_RPT_IVL");
		setint(sock, PGM_NAK_RDATA_IVL, (int)pgm_msecs(200), "PGM_NAK_RDATA_IVL");
		setint(sock, PGM_NAK_DATA_RETRIES, 50, "PGM_NAK_DATA_RETRIES");
		setint(sock, PGM_NAK_NCF_RETRIES, 50, "PGM_NAK_NCF_RETRIES");
	}

	struct pgm_sockaddr_t addr;
	memset(&addr, 0, sizeof addr);
	addr.sa_port = (uint16_t)o->port;
	addr.sa_addr.sport = DEFAULT_DATA_SOURCE_PORT; /* random */
	uint32_t seed[2] = {(uint32_t)getpid(), (uint32_t)now_ms()};
	if (!pgm_gsi_create_from_data(&addr.sa_addr.gsi, (const uint8_t *)seed, sizeof seed))
		die("pgm_gsi_create_from_data", NULL);

	struct pgm_interface_req_t ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ir_interface = ai->ai_recv_addrs[0].gsr_interface;
	if (!pgm_bind3(sock, &addr, sizeof addr, &ifr, sizeof ifr, &ifr, sizeof ifr, &err))
		die("pgm_bind3", err);
	for (unsigned k = 0; k < ai->ai_recv_addrs_len; k++)
		setopt(sock, IPPROTO_PGM, PGM_JOIN_GROUP, &ai->ai_recv_addrs[k], sizeof(struct group_req), "PGM_JOIN_GROUP");
	setopt(sock, IPPROTO_PGM, PGM_SEND_GROUP, &ai->ai_send_addrs[0], sizeof(struct group_req), "PGM_SEND_GROUP");
	pgm_freeaddrinfo(ai);

	setint(sock, PGM_MULTICAST_LOOP, 0, "PGM_MULTICAST_LOOP");
	setint(sock, PGM_MULTICAST_HOPS, 1, "PGM_MULTICAST_HOPS");
	setint(sock, PGM_NOBLOCK, 1, "PGM_NOBLOCK");
	if (!pgm_connect(sock, &err))
		die("pgm_connect", err);
	return sock;
}

/* wait polls the socket's descriptors for at most ms (and at least 1 ms). */
static void wait_sock(pgm_sock_t *sock, short events, long ms)
{
	struct pollfd fds[8];
	int n = 8;
	memset(fds, 0, sizeof fds);
	if (pgm_poll_info(sock, fds, &n, events) < 0)
		n = 0;
	if (ms < 1)
		ms = 1;
	poll(fds, (nfds_t)n, (int)ms);
}

/* remain reads a PGM_TIME_REMAIN or PGM_RATE_REMAIN in ms, at most cap. */
static long remain(pgm_sock_t *sock, int opt, long cap)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (!pgm_getsockopt(sock, IPPROTO_PGM, opt, &tv, &len))
		return cap;
	long ms = tv.tv_sec * 1000 + tv.tv_usec / 1000;
	return ms < cap ? ms : cap;
}

static int run_recv(const struct opts *o)
{
	pgm_sock_t *sock = open_sock(o, 0);
	printf("ready\n");
	fflush(stdout);
	const int64_t deadline = now_ms() + o->timeout_ms;
	long got = 0;
	struct pgm_msgv_t msgv;
	while (got < o->count && now_ms() < deadline) {
		size_t bytes = 0;
		pgm_error_t *err = NULL;
		const int st = pgm_recvmsg(sock, &msgv, 0, &bytes, &err);
		switch (st) {
		case PGM_IO_STATUS_NORMAL: {
			uint64_t h = FNV_OFFSET;
			size_t len = 0;
			for (uint32_t k = 0; k < msgv.msgv_len; k++) {
				const struct pgm_sk_buff_t *skb = msgv.msgv_skb[k];
				h = fnv1a(h, skb->data, skb->len);
				len += skb->len;
			}
			printf("data %zu %016" PRIx64 "\n", len, h);
			got++;
			break;
		}
		case PGM_IO_STATUS_RESET:
			printf("reset\n");
			if (err)
				pgm_error_free(err);
			break;
		case PGM_IO_STATUS_TIMER_PENDING:
			fflush(stdout);
			wait_sock(sock, POLLIN, remain(sock, PGM_TIME_REMAIN, 100));
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			fflush(stdout);
			wait_sock(sock, POLLIN, remain(sock, PGM_RATE_REMAIN, 100));
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			fflush(stdout);
			wait_sock(sock, POLLIN, 100);
			break;
		default:
			die("pgm_recvmsg", err);
		}
	}
	printf("done %ld\n", got);
	fflush(stdout);
	pgm_close(sock, TRUE);
	return got == o->count ? 0 : 2;
}

/* service lets libpgm process what came upstream (NAKs: NCF at once,
 * RDATA one per call) and run its timers (SPMs). libpgm does all this
 * only inside its receive calls, and sends at most one RDATA per call. */
static void service(pgm_sock_t *sock)
{
	char buf[64];
	for (int k = 0; k < 16; k++) {
		size_t bytes;
		pgm_error_t *err = NULL;
		const int st = pgm_recv(sock, buf, sizeof buf, 0, &bytes, &err);
		if (err)
			pgm_error_free(err);
		if (st == PGM_IO_STATUS_ERROR || st == PGM_IO_STATUS_EOF)
			return;
	}
}

static int run_send(const struct opts *o)
{
	pgm_sock_t *sock = open_sock(o, 1);
	printf("ready\n");
	fflush(stdout);
	unsigned char *buf = aligned_alloc(16, 2048);
	if (!buf)
		die("aligned_alloc", NULL);
	const int64_t deadline = now_ms() + o->timeout_ms;
	long sent = 0;
	size_t len = numbered(buf, 0, o->minsize, o->maxsize);
	while (sent < o->count && now_ms() < deadline) {
		const int st = pgm_send(sock, buf, len, NULL);
		service(sock);
		switch (st) {
		case PGM_IO_STATUS_NORMAL:
			sent++;
			len = numbered(buf, sent, o->minsize, o->maxsize);
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			wait_sock(sock, POLLIN, remain(sock, PGM_RATE_REMAIN, 10));
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			wait_sock(sock, POLLIN | POLLOUT, 10);
			break;
		default:
			die("pgm_send", NULL);
		}
	}
	printf("sent %ld\n", sent);
	fflush(stdout);
	const int64_t end = now_ms() + o->linger_ms;
	while (now_ms() < end) {
		service(sock);
		wait_sock(sock, POLLIN, remain(sock, PGM_TIME_REMAIN, 2));
	}
	pgm_close(sock, TRUE); /* three SPMs with OPT_FIN */
	printf("done %ld\n", sent);
	fflush(stdout);
	free(buf);
	return sent == o->count ? 0 : 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: pgmpeer recv|send -i IFADDR -g GROUP -p PORT -n COUNT [-t MS] [-w SQNS] [-r BYTES/S] [-s MIN] [-S MAX] [-l MS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct opts o = {
		.group = "239.192.0.1", .port = 7500, .count = 1000, .timeout_ms = 60000,
		.window = 4096, .rate = 2000000, .minsize = 8, .maxsize = 1400, .linger_ms = 2000,
	};
	if (argc < 2)
		usage();
	o.mode = argv[1];
	optind = 2;
	int c;
	while ((c = getopt(argc, argv, "i:g:p:n:t:w:r:s:S:l:")) != -1) {
		switch (c) {
		case 'i': o.ifaddr = optarg; break;
		case 'g': o.group = optarg; break;
		case 'p': o.port = atoi(optarg); break;
		case 'n': o.count = atol(optarg); break;
		case 't': o.timeout_ms = atol(optarg); break;
		case 'w': o.window = atoi(optarg); break;
		case 'r': o.rate = atoi(optarg); break;
		case 's': o.minsize = atoi(optarg); break;
		case 'S': o.maxsize = atoi(optarg); break;
		case 'l': o.linger_ms = atol(optarg); break;
		default: usage();
		}
	}
	if (!o.ifaddr || o.port <= 0 || o.port > 65535 || o.count < 1 || o.timeout_ms < 1 ||
	    o.minsize < 8 || o.maxsize < o.minsize || o.maxsize > 1400)
		usage();
	pgm_error_t *err = NULL;
	if (!pgm_init(&err))
		die("pgm_init", err);
	int rc;
	if (strcmp(o.mode, "recv") == 0)
		rc = run_recv(&o);
	else if (strcmp(o.mode, "send") == 0)
		rc = run_send(&o);
	else
		usage();
	pgm_shutdown();
	return rc;
}
