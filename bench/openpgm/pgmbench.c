/*
 * pgmbench: the OpenPGM end of a bench/ measurement, written for this
 * project against Debian's libpgm-dev (OpenPGM 5.3, pkg-config
 * openpgm-5.3). One sender or one receiver per process, PGM in UDP
 * encapsulation on one port for multicast and unicast, the message layout
 * of bench/cmd/benchpeer (8-byte number, 8-byte send time in Unix ns,
 * then a pattern; number 2^64-1 ends the run). Prints one JSON line on
 * stdout at the end, with the field names benchpeer uses.
 *
 *   pgmbench send --group G --port P [--size N] [--duration-ms D] [--rate MSGS/S] [--mtu M] [--timeout-ms T]
 *   pgmbench recv --group G --port P [--size N] [--mtu M] [--timeout-ms T] [--latency]
 *
 * OpenPGM's sender takes each message as one TPDU here (--mtu must leave
 * room for --size): it crashes on multi-TPDU APDUs from buffers that are
 * not 16-byte aligned, so messages come from an aligned buffer and never
 * fragment. Run only inside scripts/netns: it refuses otherwise.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <pgm/pgm.h>

#define HEADER 16
#define END_MARKER UINT64_MAX
#define MAX_SIZE 65535

static volatile sig_atomic_t stop_flag;
static void on_signal(int sig) { (void)sig; stop_flag = 1; }

static struct {
	const char *mode, *group, *ifaddr;
	int port, size, mtu, rate_bytes;
	long duration_ms, timeout_ms;
	double rate; /* messages per second; 0: as fast as OpenPGM goes */
	bool latency;
} opt = {.group = "239.192.0.1", .ifaddr = "127.0.0.1", .port = 7500, .size = 1000,
	 .mtu = 1500, .duration_ms = 2000, .timeout_ms = 60000};

static uint8_t pattern[256 + MAX_SIZE];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *b)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

static void fill(uint8_t *b, size_t len, uint64_t n, int64_t t)
{
	put64(b, n);
	put64(b + 8, (uint64_t)t);
	memcpy(b + HEADER, pattern + n % 251, len - HEADER);
}

static void die(const char *what, pgm_error_t *err)
{
	fprintf(stderr, "pgmbench %s: %s: %s\n", opt.mode, what, err && err->message ? err->message : "failed");
	exit(1);
}

static void set(pgm_sock_t *sock, int level, int name, const void *v, socklen_t len, const char *what)
{
	if (!pgm_setsockopt(sock, level, name, v, len))
		die(what, NULL);
}

static void seti(pgm_sock_t *sock, int name, int v, const char *what)
{
	set(sock, IPPROTO_PGM, name, &v, sizeof v, what);
}

static pgm_sock_t *open_socket(bool sender)
{
	pgm_error_t *err = NULL;
	struct pgm_addrinfo_t *ai = NULL;
	char network[256];
	snprintf(network, sizeof network, "%s;%s", opt.ifaddr, opt.group);
	if (!pgm_getaddrinfo(network, NULL, &ai, &err))
		die("parse network", err);
	pgm_sock_t *sock = NULL;
	sa_family_t family = ai->ai_send_addrs[0].gsr_group.ss_family;
	if (!pgm_socket(&sock, family, SOCK_SEQPACKET, IPPROTO_UDP, &err))
		die("create socket", err);
	seti(sock, PGM_UDP_ENCAP_UCAST_PORT, opt.port, "encap unicast port");
	seti(sock, PGM_UDP_ENCAP_MCAST_PORT, opt.port, "encap multicast port");
	seti(sock, PGM_MTU, opt.mtu, "mtu");
	int bufsize = 16 << 20;
	set(sock, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize, "SO_RCVBUF");
	set(sock, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize, "SO_SNDBUF");
	if (sender) {
		seti(sock, PGM_SEND_ONLY, 1, "send only");
		seti(sock, PGM_TXW_SQNS, 16384, "transmit window");
		/* Bytes/s on the wire: large enough not to limit, or the rate. */
		seti(sock, PGM_TXW_MAX_RTE, opt.rate_bytes, "rate");
		seti(sock, PGM_AMBIENT_SPM, 1000 * 1000, "ambient spm");
		int hb[] = {1000, 1000, 2000, 4000, 8000, 16000, 32000, 64000, 128000, 256000, 512000, 1000000};
		set(sock, IPPROTO_PGM, PGM_HEARTBEAT_SPM, hb, sizeof hb, "heartbeat spm");
	} else {
		seti(sock, PGM_RECV_ONLY, 1, "receive only");
		seti(sock, PGM_PASSIVE, 0, "not passive");
		seti(sock, PGM_RXW_SQNS, 65536, "receive window");
		seti(sock, PGM_PEER_EXPIRY, 300 * 1000 * 1000, "peer expiry");
		seti(sock, PGM_SPMR_EXPIRY, 250 * 1000, "spmr expiry");
		seti(sock, PGM_NAK_BO_IVL, 10 * 1000, "nak back-off");
		seti(sock, PGM_NAK_RPT_IVL, 100 * 1000, "nak repeat");
		seti(sock, PGM_NAK_RDATA_IVL, 200 * 1000, "nak rdata wait");
		seti(sock, PGM_NAK_DATA_RETRIES, 10, "nak data retries");
		seti(sock, PGM_NAK_NCF_RETRIES, 10, "nak ncf retries");
	}
	struct pgm_sockaddr_t addr;
	memset(&addr, 0, sizeof addr);
	addr.sa_port = (uint16_t)opt.port;
	addr.sa_addr.sport = (uint16_t)(1024 + getpid() % 60000);
	if (addr.sa_addr.sport == opt.port)
		addr.sa_addr.sport++;
	if (!pgm_gsi_create_from_hostname(&addr.sa_addr.gsi, &err))
		die("gsi", err);
	struct pgm_interface_req_t ifr;
	memset(&ifr, 0, sizeof ifr);
	ifr.ir_interface = ai->ai_recv_addrs[0].gsr_interface;
	memcpy(&ifr.ir_address, &ai->ai_send_addrs[0].gsr_addr, sizeof ifr.ir_address);
	if (!pgm_bind3(sock, &addr, sizeof addr, &ifr, sizeof ifr, &ifr, sizeof ifr, &err))
		die("bind", err);
	for (unsigned i = 0; i < ai->ai_recv_addrs_len; i++)
		set(sock, IPPROTO_PGM, PGM_JOIN_GROUP, &ai->ai_recv_addrs[i], sizeof(struct group_req), "join");
	set(sock, IPPROTO_PGM, PGM_SEND_GROUP, &ai->ai_send_addrs[0], sizeof(struct group_req), "send group");
	pgm_freeaddrinfo(ai);
	seti(sock, PGM_MULTICAST_LOOP, 1, "multicast loop");
	seti(sock, PGM_MULTICAST_HOPS, 1, "hops");
	seti(sock, PGM_NOBLOCK, 1, "non-blocking");
	if (!pgm_connect(sock, &err))
		die("connect", err);
	return sock;
}

/* wait_io polls the socket's descriptors (POLLIN on the receive and
 * pending sockets, POLLOUT on the send socket if out) for at most
 * timeout_ms. */
static void wait_io(pgm_sock_t *sock, bool out, int timeout_ms)
{
	struct pollfd fds[3];
	int n = 0, fd;
	socklen_t len = sizeof fd;
	if (pgm_getsockopt(sock, IPPROTO_PGM, PGM_RECV_SOCK, &fd, &len))
		fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	len = sizeof fd;
	if (pgm_getsockopt(sock, IPPROTO_PGM, PGM_PENDING_SOCK, &fd, &len))
		fds[n++] = (struct pollfd){.fd = fd, .events = POLLIN};
	len = sizeof fd;
	if (out && pgm_getsockopt(sock, IPPROTO_PGM, PGM_SEND_SOCK, &fd, &len))
		fds[n++] = (struct pollfd){.fd = fd, .events = POLLOUT};
	poll(fds, n, timeout_ms);
}

static int remain_ms(pgm_sock_t *sock, int name)
{
	struct timeval tv;
	socklen_t len = sizeof tv;
	if (!pgm_getsockopt(sock, IPPROTO_PGM, name, &tv, &len))
		return 1;
	int ms = (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000);
	return ms < 0 ? 0 : ms > 100 ? 100 : ms;
}

/* upstream lets the source handle NAKs and SPMRs: OpenPGM does that only
 * inside the receive calls. Bounded: 64 calls. */
static void upstream(pgm_sock_t *sock)
{
	char buf[64];
	for (int i = 0; i < 64; i++) {
		size_t bytes = 0;
		pgm_error_t *err = NULL;
		int st = pgm_recv(sock, buf, sizeof buf, 0, &bytes, &err);
		if (err)
			pgm_error_free(err);
		if (st != PGM_IO_STATUS_NORMAL)
			break;
	}
}

static int do_send(void)
{
	pgm_sock_t *sock = open_socket(true);
	fprintf(stderr, "ready\n");
	size_t cap = ((size_t)opt.size + 15) & ~(size_t)15;
	uint8_t *buf = aligned_alloc(16, cap);
	if (!buf)
		die("alloc", NULL);
	int64_t start = now_ns(), deadline = start + opt.duration_ms * 1000000;
	uint64_t i = 0;
	for (;;) {
		if ((i & 63) == 0 && now_ns() >= deadline)
			break;
		if (opt.rate > 0) {
			double due = (double)(now_ns() - start) * opt.rate / 1e9;
			if ((double)i >= due) {
				upstream(sock);
				usleep(50);
				continue;
			}
		}
		fill(buf, (size_t)opt.size, i, now_ns());
		size_t sent = 0;
		int st = pgm_send(sock, buf, (size_t)opt.size, &sent);
		switch (st) {
		case PGM_IO_STATUS_NORMAL:
			i++;
			if ((i & 255) == 0)
				upstream(sock);
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			upstream(sock);
			wait_io(sock, false, remain_ms(sock, PGM_RATE_REMAIN));
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			upstream(sock);
			wait_io(sock, true, 1);
			break;
		default:
			die("send", NULL);
		}
	}
	int64_t end = now_ns();
	/* The end marker, then serve repairs until told to stop. */
	for (int tries = 0; tries < 100000 && !stop_flag; tries++) {
		fill(buf, (size_t)opt.size, END_MARKER, now_ns());
		size_t sent = 0;
		int st = pgm_send(sock, buf, (size_t)opt.size, &sent);
		if (st == PGM_IO_STATUS_NORMAL)
			break;
		upstream(sock);
		wait_io(sock, true, 1);
	}
	int64_t until = now_ns() + opt.timeout_ms * 1000000;
	while (!stop_flag && now_ns() < until) {
		upstream(sock);
		wait_io(sock, false, 10);
	}
	printf("{\"msgs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"start_ns\":%" PRId64 ",\"end_ns\":%" PRId64 "}\n",
	       i, i * (uint64_t)opt.size, start, end);
	fflush(stdout);
	pgm_close(sock, false);
	free(buf);
	return 0;
}

static int cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return x < y ? -1 : x > y;
}

static int do_recv(void)
{
	pgm_sock_t *sock = open_socket(false);
	fprintf(stderr, "ready\n");
	uint64_t msgs = 0, bytes = 0, ok = 0, bad = 0, missing = 0, ooo = 0, resets = 0, next = 0;
	int64_t first = 0, last = 0;
	bool end = false;
	size_t nlat = 0, maxlat = opt.latency ? 4u << 20 : 0;
	int64_t *lat = maxlat ? malloc(maxlat * sizeof *lat) : NULL;
	struct pgm_msgv_t msgv[64];
	int64_t deadline = now_ns() + opt.timeout_ms * 1000000;
	/* Stop at the end marker, at --timeout-ms, or when nothing came for
	 * 2 s after the first message (the end marker is not coming). */
	while (!end && !stop_flag && now_ns() < deadline && !(msgs > 0 && now_ns() - last > 2000000000)) {
		size_t got = 0;
		pgm_error_t *err = NULL;
		int st = pgm_recvmsgv(sock, msgv, 64, 0, &got, &err);
		if (err)
			pgm_error_free(err);
		switch (st) {
		case PGM_IO_STATUS_NORMAL: {
			int64_t now = now_ns();
			for (size_t j = 0; got > 0 && j < 64; j++) {
				for (uint32_t k = 0; k < msgv[j].msgv_len; k++) {
					struct pgm_sk_buff_t *skb = msgv[j].msgv_skb[k];
					const uint8_t *b = skb->data;
					size_t len = skb->len;
					got -= len < got ? len : got;
					if (len < HEADER) {
						bad++;
						continue;
					}
					uint64_t n = get64(b);
					if (n == END_MARKER) {
						end = true;
						continue;
					}
					if (msgs++ == 0)
						first = now;
					last = now;
					bytes += len;
					bool good = memcmp(b + HEADER, pattern + n % 251, len - HEADER) == 0;
					if (!good)
						bad++;
					else if (n == next)
						ok++, next++;
					else if (n > next)
						ok++, missing += n - next, next = n + 1;
					else
						ooo++;
					if (good && nlat < maxlat)
						lat[nlat++] = now - (int64_t)get64(b + 8);
				}
			}
			break;
		}
		case PGM_IO_STATUS_TIMER_PENDING:
			wait_io(sock, false, remain_ms(sock, PGM_TIME_REMAIN));
			break;
		case PGM_IO_STATUS_RATE_LIMITED:
			wait_io(sock, false, remain_ms(sock, PGM_RATE_REMAIN));
			break;
		case PGM_IO_STATUS_WOULD_BLOCK:
			wait_io(sock, false, 100);
			break;
		case PGM_IO_STATUS_RESET:
			resets++; /* unrecoverable loss */
			break;
		default:
			die("receive", NULL);
		}
	}
	printf("{\"msgs\":%" PRIu64 ",\"bytes\":%" PRIu64 ",\"first_ns\":%" PRId64 ",\"last_ns\":%" PRId64
	       ",\"ok\":%" PRIu64 ",\"bad\":%" PRIu64 ",\"missing\":%" PRIu64 ",\"out_of_order\":%" PRIu64
	       ",\"end\":%s,\"loss_events\":%" PRIu64,
	       msgs, bytes, first, last, ok, bad, missing, ooo, end ? "true" : "false", resets);
	if (nlat > 0) {
		qsort(lat, nlat, sizeof *lat, cmp64);
#define Q(p) lat[(size_t)((p) * (double)nlat) < nlat ? (size_t)((p) * (double)nlat) : nlat - 1]
		printf(",\"latency\":{\"n\":%zu,\"p50\":%" PRId64 ",\"p99\":%" PRId64 ",\"p999\":%" PRId64 ",\"max\":%" PRId64 "}",
		       nlat, Q(0.5), Q(0.99), Q(0.999), lat[nlat - 1]);
	}
	printf("}\n");
	fflush(stdout);
	pgm_close(sock, false);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: pgmbench send|recv [--group G] [--port P] [--size N] [--duration-ms D] [--rate R] [--mtu M] [--timeout-ms T] [--latency]\n");
		return 2;
	}
	const char *ns = getenv("RELMCAST_NETNS");
	if (!ns || strcmp(ns, "1") != 0) {
		fprintf(stderr, "pgmbench: refusing to open sockets outside scripts/netns (RELMCAST_NETNS=1)\n");
		return 2;
	}
	opt.mode = argv[1];
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--latency")) {
			opt.latency = true;
			continue;
		}
		if (!v) {
			fprintf(stderr, "pgmbench: %s needs a value\n", a);
			return 2;
		}
		i++;
		if (!strcmp(a, "--group"))
			opt.group = v;
		else if (!strcmp(a, "--iface-addr"))
			opt.ifaddr = v;
		else if (!strcmp(a, "--port"))
			opt.port = atoi(v);
		else if (!strcmp(a, "--size"))
			opt.size = atoi(v);
		else if (!strcmp(a, "--mtu"))
			opt.mtu = atoi(v);
		else if (!strcmp(a, "--duration-ms"))
			opt.duration_ms = atol(v);
		else if (!strcmp(a, "--timeout-ms"))
			opt.timeout_ms = atol(v);
		else if (!strcmp(a, "--rate"))
			opt.rate = atof(v);
		else {
			fprintf(stderr, "pgmbench: unknown flag %s\n", a);
			return 2;
		}
	}
	if (opt.size < HEADER || opt.size > MAX_SIZE || opt.port <= 0 || opt.port > 65535 || opt.timeout_ms <= 0) {
		fprintf(stderr, "pgmbench: bad --size, --port or --timeout-ms\n");
		return 2;
	}
	/* OpenPGM's own rate limit (bytes/s on the wire) as high as it goes,
	 * so that it never limits: --rate paces the sends instead. */
	opt.rate_bytes = INT32_MAX;
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (uint8_t)i;
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	pgm_error_t *err = NULL;
	if (!pgm_init(&err))
		die("init", err);
	int rc = !strcmp(opt.mode, "send") ? do_send() : !strcmp(opt.mode, "recv") ? do_recv() : 2;
	pgm_shutdown();
	return rc;
}
