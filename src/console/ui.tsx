// Small pieces every page uses: loading data, and showing KAZOO's errors in words.

import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from './api.ts';

/** `data: {"cidrs.2": {"format": {"message": "…"}}}` → {"cidrs.2": ["…"]} (api.md §1). */
export function fieldErrors(error: unknown): Record<string, string[]> {
  if (!(error instanceof ApiError) || error.status !== 400) return {};
  const fields: Record<string, string[]> = {};
  for (const [field, rules] of Object.entries(error.data)) {
    if (rules === null || typeof rules !== 'object') continue;
    fields[field] = Object.values(rules as Record<string, { message?: string }>).map((rule) => rule?.message ?? String(rule));
  }
  return fields;
}

/** One sentence for an error that is not about a field. */
export function describe(error: unknown): string {
  if (!(error instanceof ApiError)) return error instanceof Error ? error.message : String(error);
  const detail = error.data.cause ?? error.data.message;
  if (error.status === 401) return 'The account name, username or password is not right.';
  if (error.status === 403) return 'You may not do that in this account (403 forbidden).';
  if (error.status === 409) return `Conflict: ${String(detail ?? error.message)}.`;
  if (error.status === 400) {
    const all = Object.entries(fieldErrors(error)).map(([field, messages]) => `${field}: ${messages.join('; ')}`);
    if (all.length > 0) return all.join(' · ');
  }
  return `${error.message}${detail ? `: ${String(detail)}` : ''} (${error.status})`;
}

/**
 * Fetches on mount and whenever `deps` change; `reload` fetches again. Only the latest fetch's
 * answer is kept, so a slow answer for the account left behind never shows in the one picked.
 */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]) {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const latest = useRef(0);
  const reload = useCallback(() => {
    const call = ++latest.current;
    setError(undefined);
    return load().then(
      (answer) => void (call === latest.current && setData(() => answer)),
      (failure) => void (call === latest.current && setError(failure)),
    );
  }, deps); // the caller names what the load depends on
  useEffect(() => void reload(), [reload]);
  return { data, error, reload };
}

/** Messages under a field, referenced by the field's aria-describedby. */
export function FieldError({ id, messages }: { id: string; messages?: string[] | undefined }) {
  if (!messages || messages.length === 0) return null;
  return (
    <p class="field-error" id={id} role="alert">
      {messages.join(' · ')}
    </p>
  );
}

export function Problem({ error }: { error: unknown }) {
  if (error === undefined) return null;
  return (
    <p class="problem" role="alert">
      {describe(error)}
    </p>
  );
}

export function Section({ title, children }: { title: string; children: ComponentChildren }) {
  return (
    <section class="card" aria-label={title}>
      <h2>{title}</h2>
      {children}
    </section>
  );
}

/** Runs an action, keeping its error (or clearing it) for display. */
export function useAction() {
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);
  const run = async (action: () => Promise<unknown>): Promise<boolean> => {
    setBusy(true);
    setError(undefined);
    try {
      await action();
      return true;
    } catch (e) {
      setError(e);
      return false;
    } finally {
      setBusy(false);
    }
  };
  return { error, busy, run, setError };
}

/** One line of pasted text and what the API answered to it. */
interface LineOutcome {
  line: number;
  text: string;
  refused?: string;
}

/**
 * Sends each non-blank line (but those `skip` names) in its own request, one after the other (the
 * API takes one item per request), keeping each answer: `explain` words a refusal.
 */
async function eachLine(text: string, send: (line: string) => Promise<unknown>, explain: (error: unknown) => string, skip: (line: string, index: number) => boolean): Promise<LineOutcome[]> {
  const outcomes: LineOutcome[] = [];
  for (const [index, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === '' || skip(line, index)) continue;
    try {
      await send(line);
      outcomes.push({ line: index + 1, text: line });
    } catch (error) {
      outcomes.push({ line: index + 1, text: line, refused: explain(error) });
    }
  }
  return outcomes;
}

interface LinesProps {
  title: string;
  /** The text box's label, saying what a line holds. */
  label: string;
  placeholder: string;
  button: string;
  /** The results list's accessible name. */
  results: string;
  /** Offer to load the text from a file too. */
  file?: boolean;
  send: (line: string) => Promise<unknown>;
  explain: (error: unknown) => string;
  skip?: (line: string, index: number) => boolean;
  onDone: () => void;
}

/** A text box of lines sent one by one, and each line's answer beneath it. */
export function Lines({ title, label, placeholder, button, results, file, send, explain, skip = () => false, onDone }: LinesProps) {
  const [text, setText] = useState('');
  const [outcomes, setOutcomes] = useState<LineOutcome[]>([]);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setOutcomes(await eachLine(text, send, explain, skip));
    setBusy(false);
    onDone();
  };
  const refused = outcomes.filter((o) => o.refused).length;
  return (
    <Section title={title}>
      <form onSubmit={submit}>
        {file && (
          <label>
            File
            <input type="file" accept=".csv,text/csv,text/plain" onChange={(e) => void e.currentTarget.files?.[0]?.text().then(setText)} />
          </label>
        )}
        <label>
          {label}
          <textarea rows={4} class="mono" value={text} placeholder={placeholder} onInput={(e) => setText(e.currentTarget.value)} />
        </label>
        <button type="submit" disabled={busy || text.trim() === ''}>{button}</button>
      </form>
      {outcomes.length > 0 && (
        <>
          <p role="status">
            {outcomes.length - refused} added, {refused} refused.
          </p>
          <ul class="outcomes" aria-label={results}>
            {outcomes.map((o) => (
              <li key={o.line} class={o.refused ? 'refused' : 'ok'}>
                line {o.line}: <span class="mono">{o.text}</span> — {o.refused ?? 'added'}
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}
