// Live figures: this node's decisions and SIP requests per second, from GET /v2/stats every two
// seconds (the counters' differences), drawn as two small line charts.

import { useEffect, useState } from 'preact/hooks';
import { api } from './api.ts';
import { Problem, Section } from './ui.tsx';

interface Stats {
  decisions: { allowed: number; denied: number };
  sip: { forwarded: number; rejected: number };
}
type Rates = { allowed: number; denied: number; forwarded: number; rejected: number };

const EVERY_MS = 2000;
const KEEP = 60;

export function Live({ superduper }: { superduper: boolean }) {
  const [rates, setRates] = useState<Rates[]>([]);
  const [error, setError] = useState<unknown>(undefined);
  useEffect(() => {
    if (!superduper) return;
    let last: { at: number; stats: Stats } | undefined;
    let stopped = false;
    const sample = async () => {
      try {
        const stats = (await api<Stats>('GET', '/stats')).data;
        const at = performance.now();
        if (last && !stopped) {
          const seconds = (at - last.at) / 1000;
          const rate = (now: number, before: number) => Math.max(0, (now - before) / seconds);
          const point = {
            allowed: rate(stats.decisions.allowed, last.stats.decisions.allowed),
            denied: rate(stats.decisions.denied, last.stats.decisions.denied),
            forwarded: rate(stats.sip.forwarded, last.stats.sip.forwarded),
            rejected: rate(stats.sip.rejected, last.stats.sip.rejected),
          };
          setRates((shown) => [...shown, point].slice(-KEEP));
        }
        last = { at, stats };
        setError(undefined);
      } catch (e) {
        setError(e);
      }
    };
    void sample();
    const timer = setInterval(() => void sample(), EVERY_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [superduper]);

  if (!superduper) {
    return (
      <Section title="Live figures">
        <p>These figures cover every tenant of this node, so only the platform's superduper administrator sees them.</p>
      </Section>
    );
  }
  return (
    <>
      <Problem error={error} />
      <Chart title="Decisions per second" rates={rates} series={[['allowed', 'Allowed', 'allow'], ['denied', 'Denied', 'deny']]} />
      <Chart title="SIP packets per second" rates={rates} series={[['forwarded', 'Forwarded', 'allow'], ['rejected', 'Rejected', 'deny']]} />
    </>
  );
}

const W = 600;
const H = 160;

function Chart({ title, rates, series }: { title: string; rates: Rates[]; series: [keyof Rates, string, string][] }) {
  const top = niceCeiling(Math.max(1, ...rates.flatMap((r) => series.map(([key]) => r[key]))));
  const x = (i: number) => (i / (KEEP - 1)) * W;
  const y = (v: number) => H - (v / top) * H;
  const latest = rates.at(-1);
  const summary = series.map(([key, label]) => `${label} ${format(latest?.[key] ?? 0)}/s`).join(', ');
  return (
    <Section title={title}>
      <p class="figures" aria-live="polite">
        {series.map(([key, label, tone]) => (
          <span key={key} class={`figure ${tone}`}>
            {label} <strong>{format(latest?.[key] ?? 0)}</strong>/s
          </span>
        ))}
      </p>
      <svg class="chart" viewBox={`-40 -10 ${W + 50} ${H + 30}`} role="img" aria-label={`${title}, last two minutes: ${summary}`}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="grid" x1={0} x2={W} y1={y(top * f)} y2={y(top * f)} />
            <text class="axis" x={-6} y={y(top * f) + 4} text-anchor="end">{format(top * f)}</text>
          </g>
        ))}
        <text class="axis" x={W} y={H + 18} text-anchor="end">now</text>
        <text class="axis" x={0} y={H + 18}>2 min ago</text>
        {series.map(([key, , tone]) => {
          const offset = KEEP - rates.length;
          const points = rates.map((r, i) => `${x(i + offset).toFixed(1)},${y(r[key]).toFixed(1)}`).join(' ');
          return rates.length > 0 && <polyline key={key} class={`line ${tone}`} points={points} />;
        })}
      </svg>
      {rates.length === 0 && <p class="muted">Measuring… the first rate comes after two samples.</p>}
    </Section>
  );
}

function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  return [1, 2, 5, 10].map((m) => m * power).find((c) => c >= value)!;
}

function format(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en') : value.toFixed(value >= 10 ? 0 : 1);
}
