// The SIP edge's batched UDP socket (src/edge/batch-socket.ts wraps it). Node's dgram reads one
// datagram per recvmsg and calls into JS once per datagram with an rinfo object; this reads up to
// `batch` datagrams with one recvmmsg into a preallocated area and calls JS once per read with
// their lengths and sources in typed arrays, and sends what JS queued with sendmmsg.
//
// Under load the socket paces its reads: once `paceAfter` wakeups within one millisecond have each
// emptied its queue, it stops asking to be woken for each datagram and reads on a 1 ms tick
// instead, until a tick finds nothing (or a full batch). A wakeup (two epoll_waits, a recvmmsg, a
// sendmmsg and a call into JS) costs the same for one datagram as for a batch; at 3,750 answered
// calls/s a wakeup read 7.5 datagrams and a tick 13. A tick's wait adds at most a millisecond a
// hop, against SIP's 500 ms T1.
//
// The socket reads once start() is called (the edge first finishes setting up what a datagram
// needs). JS sees: data (Buffer, datagram i at i * SLOT), meta (Int32Array, per datagram: length, source
// port, family 4|6, and the microseconds it waited in the receive queue by the kernel's receive
// timestamp, -1 when there is none) and addr (Uint8Array, 16 bytes per datagram: the source
// address, IPv4 in the first 4). They are rewritten by the next read: JS must not keep views into
// `data`.
#define NAPI_VERSION 8
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/filter.h>
#include <netinet/in.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

// Larger than any UDP payload, so nothing is truncated; the 64 extra bytes keep the slots' first
// cache lines from all landing in the same cache sets.
#define SLOT (65536 + 64)
#define META 4
// Room for one SCM_TIMESTAMPNS control message a datagram.
#define CTL CMSG_SPACE(sizeof(struct timespec))
#define TX_BYTES (512 * 1024)
#define PACE_MS 1

typedef struct {
  napi_env env;
  int fd;
  int family;
  unsigned batch;
  uv_poll_t poll;
  // What the socket wants (UV_READABLE once started, UV_WRITABLE while sends wait) and what the
  // poll asks for: the same, less UV_READABLE while pacing.
  int events;
  int polling;
  int closed;
  int closed_handles;
  uv_timer_t tick;
  int pacing;
  unsigned pace_after;
  uint64_t wake_ms;
  unsigned wakes;
  napi_ref self;
  napi_ref on_batch;
  napi_ref on_error;
  napi_ref buffers[3];
  napi_async_context async;
  char *data;
  int32_t *meta;
  uint8_t *addr;
  struct mmsghdr *rx;
  struct iovec *rx_iov;
  struct sockaddr_storage *rx_from;
  char *rx_ctl;
  // Sends queued by JS, flushed from tx_head; the arena is reused once everything is out.
  char *tx_arena;
  size_t tx_used;
  unsigned tx_max;
  unsigned tx_head;
  unsigned tx_count;
  struct mmsghdr *tx;
  struct iovec *tx_iov;
  struct sockaddr_storage *tx_to;
} sock_t;

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "batch_socket: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

static napi_value throw_errno(napi_env env, int err, const char *what) {
  char message[160];
  snprintf(message, sizeof message, "%s: %s", what, strerror(err));
  napi_value code, msg, error;
  napi_create_string_utf8(env, uv_err_name(uv_translate_sys_error(err)), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, message, NAPI_AUTO_LENGTH, &msg);
  napi_create_error(env, code, msg, &error);
  napi_set_named_property(env, error, "code", code);
  napi_throw(env, error);
  return NULL;
}

static sock_t *unwrap(napi_env env, napi_value value) {
  sock_t *s = NULL;
  if (napi_unwrap(env, value, (void **)&s) != napi_ok || s == NULL) {
    napi_throw_type_error(env, NULL, "not a batch socket");
    return NULL;
  }
  if (s->closed) {
    napi_throw_error(env, "ERR_SOCKET_DGRAM_NOT_RUNNING", "batch socket is closed");
    return NULL;
  }
  return s;
}

/** Parses `host` into `to` for a socket of `family` (an IPv6 socket reaches IPv4 hosts as ::ffff:a.b.c.d). */
static int parse_address(int family, const char *host, int port, struct sockaddr_storage *to, socklen_t *len) {
  memset(to, 0, sizeof *to);
  if (family == 4) {
    struct sockaddr_in *in = (struct sockaddr_in *)to;
    in->sin_family = AF_INET;
    in->sin_port = htons(port);
    *len = sizeof *in;
    return inet_pton(AF_INET, host, &in->sin_addr) == 1;
  }
  struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)to;
  in6->sin6_family = AF_INET6;
  in6->sin6_port = htons(port);
  *len = sizeof *in6;
  if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) return 1;
  struct in_addr v4;
  if (inet_pton(AF_INET, host, &v4) != 1) return 0;
  in6->sin6_addr.s6_addr[10] = 0xff;
  in6->sin6_addr.s6_addr[11] = 0xff;
  memcpy(&in6->sin6_addr.s6_addr[12], &v4, 4);
  return 1;
}

/** Tells JS of a failure outside a call from JS (from the event loop): through its async context. */
static void report(sock_t *s, int err, int from_loop) {
  napi_env env = s->env;
  napi_value fn, self, args[1], result;
  if (napi_get_reference_value(env, s->on_error, &fn) != napi_ok || fn == NULL) return;
  napi_get_reference_value(env, s->self, &self);
  napi_create_string_utf8(env, uv_err_name(uv_translate_sys_error(err)), NAPI_AUTO_LENGTH, &args[0]);
  if (from_loop) napi_make_callback(env, s->async, self, fn, 1, args, &result);
  else napi_call_function(env, self, fn, 1, args, &result);
}

static void set_events(sock_t *s, int events);

/** Sends what is queued; stops at EAGAIN (the rest waits for the socket to be writable). */
static void flush(sock_t *s, int from_loop) {
  while (s->tx_head < s->tx_count) {
    int sent = sendmmsg(s->fd, s->tx + s->tx_head, s->tx_count - s->tx_head, MSG_DONTWAIT);
    if (sent > 0) {
      s->tx_head += sent;
      continue;
    }
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // The datagram at the head failed on its own (no route, say): report it and go on.
    int err = errno;
    s->tx_head++;
    report(s, err, from_loop);
    if (s->closed) return;
  }
  int reading = s->events & UV_READABLE;
  if (s->tx_head == s->tx_count) {
    s->tx_head = s->tx_count = 0;
    s->tx_used = 0;
    set_events(s, reading);
  } else {
    set_events(s, reading | UV_WRITABLE);
  }
}

/** Microseconds from the kernel's receive timestamp of `msg` to `now`, or -1 without one. */
static int32_t waited_us(struct msghdr *msg, const struct timespec *now) {
  for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_TIMESTAMPNS) continue;
    struct timespec at;
    memcpy(&at, CMSG_DATA(c), sizeof at);
    long long us = (long long)(now->tv_sec - at.tv_sec) * 1000000 + (now->tv_nsec - at.tv_nsec) / 1000;
    // The wall clock may step back between the two readings.
    return us < 0 ? 0 : us > INT32_MAX ? INT32_MAX : (int32_t)us;
  }
  return -1;
}

/** One recvmmsg, and its datagrams handed to JS; returns how many (0 when none were waiting). */
static int read_batch(sock_t *s) {
  napi_env env = s->env;
  for (unsigned i = 0; i < s->batch; i++) {
    s->rx[i].msg_hdr.msg_namelen = sizeof(struct sockaddr_storage);
    s->rx[i].msg_hdr.msg_controllen = CTL;
  }
  int got;
  do got = recvmmsg(s->fd, s->rx, s->batch, MSG_DONTWAIT, NULL);
  while (got < 0 && errno == EINTR);
  if (got < 0 && errno != EAGAIN && errno != EWOULDBLOCK) report(s, errno, 1);
  if (got > 0) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    for (int i = 0; i < got; i++) {
      int32_t *m = s->meta + i * META;
      m[3] = waited_us(&s->rx[i].msg_hdr, &now);
      uint8_t *a = s->addr + i * 16;
      struct sockaddr_storage *from = &s->rx_from[i];
      m[0] = (int32_t)s->rx[i].msg_len;
      if (from->ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)from;
        m[1] = ntohs(in->sin_port);
        m[2] = 4;
        memcpy(a, &in->sin_addr, 4);
      } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)from;
        m[1] = ntohs(in6->sin6_port);
        // The rules know IPv4 callers of a dual-stack socket as a.b.c.d, not ::ffff:a.b.c.d.
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
          m[2] = 4;
          memcpy(a, &in6->sin6_addr.s6_addr[12], 4);
        } else {
          m[2] = 6;
          memcpy(a, &in6->sin6_addr, 16);
        }
      }
    }
    napi_value fn, self, count, result;
    napi_get_reference_value(env, s->on_batch, &fn);
    napi_get_reference_value(env, s->self, &self);
    napi_create_uint32(env, (uint32_t)got, &count);
    if (napi_make_callback(env, s->async, self, fn, 1, &count, &result) == napi_pending_exception) {
      napi_value error;
      napi_get_and_clear_last_exception(env, &error);
      napi_fatal_exception(env, error);
    }
  }
  return got < 0 ? 0 : got;
}

static void apply_events(sock_t *s);
static void on_tick(uv_timer_t *timer);

/** Counts a wakeup that emptied the queue; the `pace_after`th within a millisecond starts the tick. */
static void count_wakeup(sock_t *s) {
  if (s->pace_after == 0 || s->closed) return;
  uint64_t now = uv_now(s->tick.loop);
  if (now != s->wake_ms) {
    s->wake_ms = now;
    s->wakes = 0;
  }
  if (++s->wakes < s->pace_after) return;
  s->pacing = 1;
  apply_events(s);
  uv_timer_start(&s->tick, on_tick, PACE_MS, PACE_MS);
}

static void on_poll(uv_poll_t *handle, int status, int events) {
  sock_t *s = handle->data;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  if (status < 0) {
    report(s, -status, 1);
  } else {
    if (events & UV_WRITABLE) flush(s, 1);
    if (!s->closed && (events & UV_READABLE)) {
      int got = read_batch(s);
      // A full batch leaves more to read at once: the wakeups already carry all they can.
      if (got > 0 && got < (int)s->batch) count_wakeup(s);
    }
  }
  napi_close_handle_scope(env, scope);
}

static void on_tick(uv_timer_t *timer) {
  sock_t *s = timer->data;
  napi_env env = s->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return;
  int got = read_batch(s);
  // A quiet millisecond: back to a wakeup a datagram. A full batch: back to a wakeup a batch,
  // which reads the rest at once, a batch each turn of the loop.
  if ((got == 0 || got == (int)s->batch) && !s->closed) {
    uv_timer_stop(&s->tick);
    s->pacing = 0;
    apply_events(s);
  }
  napi_close_handle_scope(env, scope);
}

static void apply_events(sock_t *s) {
  int want = s->pacing ? s->events & ~UV_READABLE : s->events;
  if (s->closed || s->polling == want) return;
  s->polling = want;
  if (want == 0) uv_poll_stop(&s->poll);
  else uv_poll_start(&s->poll, want, on_poll);
}

static void set_events(sock_t *s, int events) {
  if (s->closed) return;
  s->events = events;
  apply_events(s);
}

static void release(sock_t *s) {
  free(s->rx);
  free(s->rx_iov);
  free(s->rx_from);
  free(s->rx_ctl);
  free(s->tx);
  free(s->tx_iov);
  free(s->tx_to);
  free(s->tx_arena);
  s->rx = NULL;
  s->rx_iov = NULL;
  s->rx_from = NULL;
  s->rx_ctl = NULL;
  s->tx = NULL;
  s->tx_iov = NULL;
  s->tx_to = NULL;
  s->tx_arena = NULL;
}

static void finalize(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  sock_t *s = data;
  release(s);
  free(s);
}

static napi_value buffer_of(napi_env env, sock_t *s, int index, size_t bytes, void **data) {
  napi_value buffer;
  if (napi_create_buffer(env, bytes, data, &buffer) != napi_ok) return NULL;
  napi_create_reference(env, buffer, 1, &s->buffers[index]);
  return buffer;
}

/** open(family, host, port, reusePort, spread, recvBufferSize, batch, paceAfter, onBatch, onError) → socket; paceAfter 0: never pace. */
static napi_value open_socket(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10], self;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 10) {
    napi_throw_type_error(env, NULL, "open(family, host, port, reusePort, spread, recvBufferSize, batch, paceAfter, onBatch, onError)");
    return NULL;
  }
  int32_t family, port, spread, rcvbuf, batch, pace_after;
  bool reuse;
  char host[64];
  size_t host_len;
  CHECK(napi_get_value_int32(env, argv[0], &family));
  CHECK(napi_get_value_string_utf8(env, argv[1], host, sizeof host, &host_len));
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_bool(env, argv[3], &reuse));
  CHECK(napi_get_value_int32(env, argv[4], &spread));
  CHECK(napi_get_value_int32(env, argv[5], &rcvbuf));
  CHECK(napi_get_value_int32(env, argv[6], &batch));
  CHECK(napi_get_value_int32(env, argv[7], &pace_after));
  if ((family != 4 && family != 6) || port < 0 || port > 65535 || batch < 1 || batch > 1024 || pace_after < 0) {
    napi_throw_range_error(env, NULL, "bad family, port, batch or paceAfter");
    return NULL;
  }
  struct sockaddr_storage at;
  socklen_t at_len;
  if (!parse_address(family, host, port, &at, &at_len)) {
    napi_throw_type_error(env, "EINVAL", "not an IP address of the socket's family");
    return NULL;
  }
  int fd = socket(family == 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return throw_errno(env, errno, "socket");
  int on = 1, off = 0;
  // As Node's udp6 does: a socket on :: hears IPv4 callers too.
  if (family == 6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off) < 0) goto fail;
  if (reuse && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0) goto fail;
  if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0) goto fail;
  // Each datagram's arrival time, to tell how long it waited (the edge sheds new calls past a
  // bound); without it JS falls back to how long the queue has stayed non-empty.
  (void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  if (bind(fd, (struct sockaddr *)&at, at_len) < 0) {
    int err = errno;
    close(fd);
    return throw_errno(env, err, "bind");
  }
  if (reuse && spread > 1) {
    // The kernel's default picks a group's socket by a hash of the source address and port, so
    // one busy trunk (one address, one port) would land on one process: pick one at random
    // instead, as processes reading one shared socket would take turns.
    struct sock_filter code[] = {
        {BPF_LD | BPF_W | BPF_ABS, 0, 0, SKF_AD_OFF + SKF_AD_RANDOM},
        {BPF_ALU | BPF_MOD | BPF_K, 0, 0, (uint32_t)spread},
        {BPF_RET | BPF_A, 0, 0, 0},
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    if (setsockopt(fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, &prog, sizeof prog) < 0) goto fail;
  }

  sock_t *s = calloc(1, sizeof *s);
  if (s == NULL) {
    close(fd);
    return throw_errno(env, ENOMEM, "open");
  }
  s->env = env;
  s->fd = fd;
  s->family = family;
  s->batch = (unsigned)batch;
  s->pace_after = (unsigned)pace_after;
  s->tx_max = (unsigned)batch * 4;
  s->rx = calloc(batch, sizeof *s->rx);
  s->rx_iov = calloc(batch, sizeof *s->rx_iov);
  s->rx_from = calloc(batch, sizeof *s->rx_from);
  s->rx_ctl = calloc(batch, CTL);
  s->tx = calloc(s->tx_max, sizeof *s->tx);
  s->tx_iov = calloc(s->tx_max, sizeof *s->tx_iov);
  s->tx_to = calloc(s->tx_max, sizeof *s->tx_to);
  s->tx_arena = malloc(TX_BYTES);
  if (!s->rx || !s->rx_iov || !s->rx_from || !s->rx_ctl || !s->tx || !s->tx_iov || !s->tx_to || !s->tx_arena) {
    close(fd);
    release(s);
    free(s);
    return throw_errno(env, ENOMEM, "open");
  }
  napi_value data, meta_ab, addr_ab, meta, addr;
  void *p;
  if ((data = buffer_of(env, s, 0, (size_t)batch * SLOT, &p)) == NULL) goto fail_js;
  s->data = p;
  if (napi_create_arraybuffer(env, (size_t)batch * META * sizeof(int32_t), &p, &meta_ab) != napi_ok) goto fail_js;
  s->meta = p;
  if (napi_create_arraybuffer(env, (size_t)batch * 16, &p, &addr_ab) != napi_ok) goto fail_js;
  s->addr = p;
  napi_create_typedarray(env, napi_int32_array, (size_t)batch * META, meta_ab, 0, &meta);
  napi_create_typedarray(env, napi_uint8_array, (size_t)batch * 16, addr_ab, 0, &addr);
  napi_create_reference(env, meta, 1, &s->buffers[1]);
  napi_create_reference(env, addr, 1, &s->buffers[2]);
  for (int i = 0; i < batch; i++) {
    s->rx_iov[i].iov_base = s->data + (size_t)i * SLOT;
    s->rx_iov[i].iov_len = SLOT;
    s->rx[i].msg_hdr.msg_iov = &s->rx_iov[i];
    s->rx[i].msg_hdr.msg_iovlen = 1;
    s->rx[i].msg_hdr.msg_name = &s->rx_from[i];
    s->rx[i].msg_hdr.msg_control = s->rx_ctl + (size_t)i * CTL;
  }
  for (unsigned i = 0; i < s->tx_max; i++) {
    s->tx[i].msg_hdr.msg_iov = &s->tx_iov[i];
    s->tx[i].msg_hdr.msg_iovlen = 1;
    s->tx[i].msg_hdr.msg_name = &s->tx_to[i];
  }

  napi_value name;
  napi_create_object(env, &self);
  napi_set_named_property(env, self, "data", data);
  napi_set_named_property(env, self, "meta", meta);
  napi_set_named_property(env, self, "addr", addr);
  napi_create_string_utf8(env, "ipwarden:BatchSocket", NAPI_AUTO_LENGTH, &name);
  if (napi_wrap(env, self, s, finalize, NULL, NULL) != napi_ok) goto fail_js;
  // Held until close: an open socket is not collected while the event loop polls it.
  napi_create_reference(env, self, 1, &s->self);
  napi_create_reference(env, argv[8], 1, &s->on_batch);
  napi_create_reference(env, argv[9], 1, &s->on_error);
  napi_async_init(env, self, name, &s->async);
  uv_loop_t *loop;
  napi_get_uv_event_loop(env, &loop);
  uv_poll_init(loop, &s->poll, fd);
  s->poll.data = s;
  // Running only while it paces, when it stands for the poll in keeping the process alive.
  uv_timer_init(loop, &s->tick);
  s->tick.data = s;
  return self;

fail_js:
  close(fd);
  release(s);
  free(s);
  napi_throw_error(env, NULL, "batch_socket: cannot allocate its buffers");
  return NULL;
fail : {
  int err = errno;
  close(fd);
  return throw_errno(env, err, "setsockopt");
}
}

/** address(socket) → [host, port]. */
static napi_value address(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result, host, port;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  struct sockaddr_storage at;
  socklen_t len = sizeof at;
  if (getsockname(s->fd, (struct sockaddr *)&at, &len) < 0) return throw_errno(env, errno, "getsockname");
  char text[INET6_ADDRSTRLEN];
  int p;
  if (at.ss_family == AF_INET) {
    inet_ntop(AF_INET, &((struct sockaddr_in *)&at)->sin_addr, text, sizeof text);
    p = ntohs(((struct sockaddr_in *)&at)->sin_port);
  } else {
    inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&at)->sin6_addr, text, sizeof text);
    p = ntohs(((struct sockaddr_in6 *)&at)->sin6_port);
  }
  CHECK(napi_create_array_with_length(env, 2, &result));
  CHECK(napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &host));
  CHECK(napi_create_int32(env, p, &port));
  napi_set_element(env, result, 0, host);
  napi_set_element(env, result, 1, port);
  return result;
}

/**
 * queue(socket, bytes, port, host) → true, or false when the datagram was dropped because the
 * queue is full of datagrams the kernel would not take yet. Throws on a bad address.
 */
static napi_value queue(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4], result;
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  void *bytes;
  size_t length;
  int32_t port;
  char host[64];
  size_t host_len;
  if (napi_get_buffer_info(env, argv[1], &bytes, &length) != napi_ok) {
    napi_throw_type_error(env, NULL, "bytes must be a Buffer");
    return NULL;
  }
  CHECK(napi_get_value_int32(env, argv[2], &port));
  CHECK(napi_get_value_string_utf8(env, argv[3], host, sizeof host, &host_len));
  if (length > TX_BYTES) return throw_errno(env, EMSGSIZE, "send");
  if (s->tx_count == s->tx_max || s->tx_used + length > TX_BYTES) flush(s, 0);
  if (s->closed) return NULL;
  bool accepted = s->tx_count < s->tx_max && s->tx_used + length <= TX_BYTES;
  if (accepted) {
    unsigned i = s->tx_count;
    socklen_t to_len;
    if (port < 0 || port > 65535 || !parse_address(s->family, host, port, &s->tx_to[i], &to_len)) {
      napi_throw_type_error(env, "EINVAL", "not an IP address the socket can send to");
      return NULL;
    }
    memcpy(s->tx_arena + s->tx_used, bytes, length);
    s->tx_iov[i].iov_base = s->tx_arena + s->tx_used;
    s->tx_iov[i].iov_len = length;
    s->tx[i].msg_hdr.msg_namelen = to_len;
    s->tx_used += length;
    s->tx_count++;
  }
  CHECK(napi_get_boolean(env, accepted, &result));
  return result;
}

/** start(socket): reads from now on (what arrived since open waits in the kernel's queue). */
static napi_value start_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = unwrap(env, argv[0]);
  if (s != NULL) set_events(s, s->events | UV_READABLE);
  return NULL;
}

/** flush(socket): sends the queue now (what the kernel will not take yet goes when it is writable). */
static napi_value flush_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = unwrap(env, argv[0]);
  if (s != NULL) flush(s, 0);
  return NULL;
}

static void after_close(uv_handle_t *handle) {
  sock_t *s = handle->data;
  // The poll and the tick are closed together; the second to finish releases the socket.
  if (++s->closed_handles < 2) return;
  napi_env env = s->env;
  napi_async_destroy(env, s->async);
  napi_delete_reference(env, s->on_batch);
  napi_delete_reference(env, s->on_error);
  for (int i = 0; i < 3; i++) napi_delete_reference(env, s->buffers[i]);
  // The wrapper may now be collected; its finalizer frees `s`.
  napi_delete_reference(env, s->self);
}

/** close(socket): stops reading; queued datagrams not yet taken by the kernel are dropped. */
static napi_value close_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  sock_t *s = unwrap(env, argv[0]);
  if (s == NULL) return NULL;
  s->closed = 1;
  // Stopped first (libuv forgets the descriptor), closed at once: the port is free on return.
  uv_poll_stop(&s->poll);
  close(s->fd);
  uv_close((uv_handle_t *)&s->poll, after_close);
  uv_close((uv_handle_t *)&s->tick, after_close);
  return NULL;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"open", NULL, open_socket, NULL, NULL, NULL, napi_default, NULL},
      {"address", NULL, address, NULL, NULL, NULL, napi_default, NULL},
      {"queue", NULL, queue, NULL, NULL, NULL, napi_default, NULL},
      {"start", NULL, start_js, NULL, NULL, NULL, napi_default, NULL},
      {"flush", NULL, flush_js, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, close_js, NULL, NULL, NULL, napi_default, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
