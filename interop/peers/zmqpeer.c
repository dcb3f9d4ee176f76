/*
 * zmqpeer: a ZeroMQ (libzmq 4.3, epgm over libpgm) peer for relmcast's
 * interop tests. Written for these tests against zmq.h; run it only inside
 * the test network namespaces (scripts/interop).
 *
 *   zmqpeer pub -e ENDPOINT -n COUNT [-t TIMEOUT_MS] [-l LINGER_MS]
 *   zmqpeer sub -e ENDPOINT -n COUNT [-t TIMEOUT_MS] [-g GROUP]
 *
 * ENDPOINT is epgm://IFADDR;GROUP:PORT. Both set ZMQ_RATE to 100000 kbit/s
 * (the default, 100 kbit/s, is far too slow for a test) and unlimited high
 * water marks (a PUB drops what exceeds its HWM). stdout, one line each:
 *
 *   ready          (sub) the group is joined; (pub) about to publish
 *   MESSAGE        (sub) one message: its frames joined by one space
 *   done N         N messages received or published
 *
 * The publisher's message i is zmsg(i): every 5th a two-frame message
 * "topic-I" "body-I-" + letters, every 7th (i%7 == 3) a single 3000-byte
 * frame "big-I-" + letters (it spans several PGM packets), the others a
 * single frame "msg-I-" + (i*13)%200 letters; letter j is 'a'+(i+j)%26.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <zmq.h>

static void die(const char *what)
{
	fprintf(stderr, "zmqpeer: %s: %s\n", what, zmq_strerror(zmq_errno()));
	exit(1);
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static void setint(void *s, int opt, int v, const char *what)
{
	if (zmq_setsockopt(s, opt, &v, sizeof v) != 0)
		die(what);
}

/* letters appends n letters for message i to b at off; returns the end. */
static size_t letters(char *b, size_t off, long i, size_t n)
{
	for (size_t j = 0; j < n; j++)
		b[off + j] = (char)('a' + (i + (long)j) % 26);
	return off + n;
}

static void publish(void *s, long i)
{
	static char b[4096];
	size_t n;
	if (i % 5 == 0) {
		n = (size_t)snprintf(b, sizeof b, "topic-%ld", i);
		if (zmq_send(s, b, n, ZMQ_SNDMORE) < 0)
			die("zmq_send");
		n = (size_t)snprintf(b, sizeof b, "body-%ld-", i);
		n = letters(b, n, i, (size_t)(i * 13 % 200));
	} else if (i % 7 == 3) {
		n = (size_t)snprintf(b, sizeof b, "big-%ld-", i);
		n = letters(b, n, i, 3000 - n);
	} else {
		n = (size_t)snprintf(b, sizeof b, "msg-%ld-", i);
		n = letters(b, n, i, (size_t)(i * 13 % 200));
	}
	if (zmq_send(s, b, n, 0) < 0)
		die("zmq_send");
}

static int run_pub(void *ctx, const char *ep, long count, long timeout_ms, long linger_ms)
{
	void *s = zmq_socket(ctx, ZMQ_PUB);
	if (!s)
		die("zmq_socket");
	setint(s, ZMQ_RATE, 100000, "ZMQ_RATE");
	setint(s, ZMQ_SNDHWM, 0, "ZMQ_SNDHWM");
	setint(s, ZMQ_LINGER, 2000, "ZMQ_LINGER");
	if (zmq_connect(s, ep) != 0)
		die("zmq_connect");
	/* The PGM engine starts in ZeroMQ's I/O thread, and a PUB drops what
	 * it publishes before the engine's subscribe-all arrives. */
	sleep_ms(1000);
	printf("ready\n");
	fflush(stdout);
	const long long deadline = now_ms() + timeout_ms;
	long i = 0;
	for (; i < count && now_ms() < deadline; i++)
		publish(s, i);
	/* Stay to answer NAKs: repairs come from the socket while it lives. */
	sleep_ms(linger_ms);
	zmq_close(s); /* pgm_close(sock, TRUE): SPMs with OPT_FIN */
	printf("done %ld\n", i);
	fflush(stdout);
	return i == count ? 0 : 2;
}

/* joined reports whether /proc/net/igmp lists group (this namespace). */
static int joined(const char *group)
{
	struct in_addr a;
	if (inet_pton(AF_INET, group, &a) != 1)
		return 1; /* not IPv4: do not wait */
	char want[16];
	snprintf(want, sizeof want, "%08X", a.s_addr);
	FILE *f = fopen("/proc/net/igmp", "r");
	if (!f)
		return 1;
	char line[256];
	int found = 0;
	while (!found && fgets(line, sizeof line, f))
		found = strstr(line, want) != NULL;
	fclose(f);
	return found;
}

static int run_sub(void *ctx, const char *ep, long count, long timeout_ms, const char *group)
{
	void *s = zmq_socket(ctx, ZMQ_SUB);
	if (!s)
		die("zmq_socket");
	setint(s, ZMQ_RATE, 100000, "ZMQ_RATE");
	setint(s, ZMQ_RCVHWM, 0, "ZMQ_RCVHWM");
	setint(s, ZMQ_RCVTIMEO, 100, "ZMQ_RCVTIMEO");
	setint(s, ZMQ_LINGER, 0, "ZMQ_LINGER");
	if (zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0) != 0)
		die("ZMQ_SUBSCRIBE");
	if (zmq_connect(s, ep) != 0)
		die("zmq_connect");
	const long long deadline = now_ms() + timeout_ms;
	/* zmq_connect returns before the I/O thread joins the group. */
	for (int k = 0; k < 500 && !joined(group); k++)
		sleep_ms(10);
	printf("ready\n");
	fflush(stdout);
	long got = 0;
	zmq_msg_t m;
	zmq_msg_init(&m);
	int first = 1;
	while (got < count && now_ms() < deadline) {
		if (zmq_msg_recv(&m, s, 0) < 0) {
			if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
				continue;
			die("zmq_msg_recv");
		}
		if (!first)
			putchar(' ');
		fwrite(zmq_msg_data(&m), 1, zmq_msg_size(&m), stdout);
		first = !zmq_msg_more(&m);
		if (first) {
			putchar('\n');
			got++;
		}
	}
	zmq_msg_close(&m);
	printf("done %ld\n", got);
	fflush(stdout);
	zmq_close(s);
	return got == count ? 0 : 2;
}

static void usage(void)
{
	fprintf(stderr, "usage: zmqpeer pub|sub -e ENDPOINT -n COUNT [-t MS] [-l MS] [-g GROUP]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *ep = NULL, *group = "239.192.0.1";
	long count = 0, timeout_ms = 60000, linger_ms = 3000;
	if (argc < 2)
		usage();
	const char *mode = argv[1];
	optind = 2;
	int c;
	while ((c = getopt(argc, argv, "e:n:t:l:g:")) != -1) {
		switch (c) {
		case 'e': ep = optarg; break;
		case 'n': count = atol(optarg); break;
		case 't': timeout_ms = atol(optarg); break;
		case 'l': linger_ms = atol(optarg); break;
		case 'g': group = optarg; break;
		default: usage();
		}
	}
	if (!ep || count < 1 || timeout_ms < 1 || linger_ms < 0)
		usage();
	void *ctx = zmq_ctx_new();
	if (!ctx)
		die("zmq_ctx_new");
	int rc;
	if (strcmp(mode, "pub") == 0)
		rc = run_pub(ctx, ep, count, timeout_ms, linger_ms);
	else if (strcmp(mode, "sub") == 0)
		rc = run_sub(ctx, ep, count, timeout_ms, group);
	else
		usage();
	zmq_ctx_term(ctx);
	return rc;
}
