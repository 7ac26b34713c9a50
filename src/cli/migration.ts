// The `import` verbs' flags and report (api.md §9): which trunk or account each group, tag or
// list goes to, and what was (or would be) created, refused and skipped.

import type { ImportItem, ImportReport, KamailioMapping, Trunk } from '../services/imports.ts';

function trunkOf(flag: string, value: string): Trunk {
  const [accountId, trunkId, more] = value.split(':');
  if (!accountId || !trunkId || more !== undefined) throw new Error(`${flag}: '${value}' is not ACCOUNT_ID:TRUNK_ID`);
  return { accountId, trunkId };
}

/** `KEY=VALUE` pairs of a repeatable flag. */
function pairs(flag: string, values: readonly string[]): [string, string][] {
  return values.map((text) => {
    const at = text.indexOf('=');
    if (at <= 0) throw new Error(`${flag}: '${text}' is not KEY=VALUE`);
    return [text.slice(0, at), text.slice(at + 1)];
  });
}

/** `--map GROUP=ACCOUNT:TRUNK` and `--tag TAG=ACCOUNT:TRUNK`. */
export function kamailioMapping(options: { map?: string[]; tag?: string[] }): KamailioMapping {
  const groups = new Map<number, Trunk>();
  for (const [group, trunk] of pairs('--map', options.map ?? [])) {
    if (!/^[1-9][0-9]*$/.test(group)) throw new Error(`--map: group '${group}' is not a whole number`);
    groups.set(Number(group), trunkOf('--map', trunk));
  }
  const tags = new Map(pairs('--tag', options.tag ?? []).map(([tag, trunk]) => [tag, trunkOf('--tag', trunk)] as const));
  return { groups, tags };
}

/** `--list NAME=ACCOUNT_ID`. */
export function listMapping(options: { list?: string[] }): Map<string, string> {
  return new Map(pairs('--list', options.list ?? []));
}

/** commander's collector for a repeatable flag. */
export const collect = (value: string, previous: string[]) => [...previous, value];

const line = (item: ImportItem) => `  ${item.source}: ${item.what}${item.target ? ` → ${item.target}` : ''}${item.reason ? `: ${item.reason}` : ''}`;

export function formatReport(report: ImportReport, dryRun: boolean): string {
  const out: string[] = [];
  const created = report.applied ? 'created' : 'would create';
  out.push(`${created} ${report.created.length}${report.created.length > 0 ? ':' : ''}`, ...report.created.map(line));
  if (report.refused.length > 0) out.push(`refused ${report.refused.length}:`, ...report.refused.map(line));
  if (report.skipped.length > 0) out.push(`skipped ${report.skipped.length}:`, ...report.skipped.map(line));
  for (const note of report.notes) out.push(`note: ${note}`);
  if (!report.applied) out.push(dryRun ? 'nothing written (dry run)' : `nothing written: ${report.refused.length} refused (all or nothing)`);
  return out.join('\n');
}
