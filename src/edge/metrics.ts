// The edge's Prometheus counters, all named ipwarden_sip_*. Counted per packet, so each series is
// bound once (../metrics.ts) and a count is one increment.
import { Gauge, type Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram, type CounterSeries } from '../metrics.ts';
import type { StreamTransport } from './endpoint.ts';
import type { Outcome } from './pipeline.ts';
import type { StreamEvents } from './streams.ts';

export interface EdgeMetrics {
  count(outcome: Outcome): void;
  received(): void;
  socketError(): void;
  /** How long the receive queue had been non-empty when a datagram was read, ms. */
  queueDelay(ms: number): void;
  /** An outbound request sent from this address (a dedicated IP, or the main socket's). */
  sentFrom(ip: string): void;
  /** TCP and TLS connections: accepted, refused and closed by reason, messages read. */
  stream: StreamEvents;
  /** The connections open now, read at each scrape. */
  watchConnections(open: () => Record<StreamTransport, number>): void;
}

export function createEdgeMetrics(registry: Registry): EdgeMetrics {
  const family = (name: string, help: string) => new LabelledCounter(`ipwarden_sip_${name}`, help).register(registry);
  // An unlabelled counter is shown (as 0) from the start.
  const single = (name: string, help: string) => family(name, help).seriesOf('', {});
  const received = single('packets_received_total', 'UDP datagrams received by the SIP edge');
  const forwarded = byLabel(family('packets_forwarded_total', 'SIP messages relayed, by direction'), 'direction');
  const rejected = byLabel(family('requests_rejected_total', 'SIP requests refused, by reason'), 'reason');
  const malformed = single('packets_malformed_total', 'Datagrams dropped as unparsable SIP');
  const dropped = byLabel(family('packets_dropped_total', 'SIP messages dropped unanswered, by reason'), 'reason');
  const socketErrors = single('socket_errors_total', 'Errors reported by the edge socket (failed sends)');
  const queueDelay = new LabelledHistogram(
    'ipwarden_sip_queue_delay_seconds',
    'How long a datagram waited in the receive queue (kernel timestamps; else how long the queue had been non-empty) when read (new calls get 503 past 0.1 s)',
    [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  )
    .register(registry)
    .seriesOf('', {});
  // api.md §7.1; its refusals are the 403s in requests_rejected_total{reason="dedicated_ip_not_assigned"}.
  const egress = byLabel(family('egress_requests_total', 'Outbound requests sent to carriers, by the address they left from'), 'ip');
  const accepted = byLabel(family('connections_accepted_total', 'TCP and TLS connections accepted, by transport'), 'transport');
  const refused = byLabels(family('connections_refused_total', 'TCP and TLS connections refused by a limit, by transport and limit (per_source, total)'), 'transport', 'reason');
  const closed = byLabels(family('connections_closed_total', 'TCP and TLS connections the edge closed, by transport and reason (malformed, buffer, idle)'), 'transport', 'reason');
  const messages = byLabel(family('stream_messages_received_total', 'SIP messages read from TCP and TLS connections, by transport'), 'transport');

  return {
    received: () => void received.value++,
    socketError: () => void socketErrors.value++,
    queueDelay: (ms) => queueDelay.observe(ms / 1000),
    sentFrom: (ip) => void egress(ip).value++,
    stream: {
      accepted: (transport) => void accepted(transport).value++,
      refused: (transport, reason) => void refused(transport, reason).value++,
      closed: (transport, reason) => void closed(transport, reason).value++,
      message: (transport) => void messages(transport).value++,
    },
    watchConnections(open) {
      new Gauge({
        name: 'ipwarden_sip_connections_open',
        help: 'TCP and TLS connections open, accepted and opened by the edge, by transport',
        labelNames: ['transport'],
        registers: [registry],
        collect() {
          for (const [transport, count] of Object.entries(open())) this.set({ transport }, count);
        },
      });
    },
    count(outcome) {
      switch (outcome.action) {
        case 'forward':
          forwarded(outcome.direction).value++;
          return;
        case 'reject':
          rejected(outcome.reason).value++;
          return;
        case 'drop':
          dropped(outcome.reason).value++;
          return;
        case 'malformed':
          malformed.value++;
          return;
      }
    },
  };
}

/** The series of one label's value, bound on first use (the values are constant strings). */
function byLabel(counter: LabelledCounter, label: string): (value: string) => CounterSeries {
  const bound = new Map<string, CounterSeries>();
  return (value) => {
    let series = bound.get(value);
    if (series === undefined) bound.set(value, (series = counter.seriesOf(value, { [label]: value })));
    return series;
  };
}

/** The series of two labels' values, bound on first use. */
function byLabels(counter: LabelledCounter, first: string, second: string): (a: string, b: string) => CounterSeries {
  const bound = new Map<string, CounterSeries>();
  return (a, b) => {
    const key = `${a} ${b}`;
    let series = bound.get(key);
    if (series === undefined) bound.set(key, (series = counter.seriesOf(key, { [first]: a, [second]: b })));
    return series;
  };
}
