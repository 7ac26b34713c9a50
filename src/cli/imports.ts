// `trunks import` and `access-lists import` (issue 23): a file's entries written all or nothing,
// or with --dry-run checked and reported without writing. Each input format is one function
// from the file's text to its rows (`ENTRY_READERS`); a problem is reported by the line it is on.

import type { Command } from 'commander';
import { Option } from 'commander';
import { readFileSync } from 'node:fs';
import type { Services } from '../main.ts';
import * as accessLists from '../services/access-lists.ts';
import { SYSTEM_ACTOR } from '../services/actor.ts';
import { Failure, invalid, type FieldErrors } from '../services/errors.ts';
import * as trunks from '../services/trunks.ts';
import type { AccessList } from '../core/acl.ts';

/** One entry of an import file, with the line it came from. */
export interface ImportRow {
  line: number;
  ipAddress: string;
  description?: string;
}

export type EntryReader = (text: string) => ImportRow[];

/** CSV `ip_address,description` (description optional, may hold commas); a header line and blank lines are skipped. */
export function readCsvEntries(text: string): ImportRow[] {
  return text
    .split(/\r?\n/)
    .map((raw, i) => ({ line: i + 1, raw: raw.trim() }))
    .filter(({ raw, line }) => raw !== '' && !raw.startsWith('#') && !(line === 1 && /^ip_address\s*(,|$)/i.test(raw)))
    .map(({ raw, line }) => {
      const comma = raw.indexOf(',');
      if (comma < 0) return { line, ipAddress: raw };
      return { line, ipAddress: raw.slice(0, comma).trim(), description: raw.slice(comma + 1).trim() };
    });
}

/** The formats `--format` takes. */
export const ENTRY_READERS: Record<string, EntryReader> = { csv: readCsvEntries };

/** A failure whose fields name items (`3.ip_address`, `cidrs.3`) renamed by their file lines. */
function byLine(error: unknown, rows: readonly ImportRow[], item: RegExp): unknown {
  if (!(error instanceof Failure) || error.kind !== 'validation' || !error.details.fields) return error;
  const fields: FieldErrors = {};
  for (const [field, rules] of Object.entries(error.details.fields)) {
    const match = item.exec(field);
    const row = match ? rows[Number(match[1])] : undefined;
    const part = match?.[2] ? `, ${match[2].slice(1)}` : '';
    fields[row ? `line ${row.line}${part}` : field] = rules;
  }
  return invalid(fields);
}

type Helpers = {
  withSettings(command: Command): Command;
  withServices(command: Command, fn: (services: Services) => Promise<void>): Promise<void>;
};

function readRows(file: string, format: string): ImportRow[] {
  const reader = ENTRY_READERS[format];
  if (!reader) throw new Error(`--format takes one of: ${Object.keys(ENTRY_READERS).join(', ')}`);
  return reader(readFileSync(file, 'utf8'));
}

const formatOption = () => new Option('--format <format>', 'the file format').choices(Object.keys(ENTRY_READERS)).default('csv');

export function addImportVerbs(root: Command, { withSettings, withServices }: Helpers): void {
  const trunkVerbs = root.command('trunks').description("Maintain trunks' IP ACL entries");
  withSettings(
    trunkVerbs
      .command('import')
      .description("Create every entry of a file on a trunk, all or nothing (CSV: ip_address,description)")
      .argument('<file>')
      .requiredOption('--account <id>', 'the account')
      .requiredOption('--trunk <id>', 'the trunk')
      .option('--dry-run', 'check everything and report, writing nothing')
      .addOption(formatOption()),
  ).action(async (file: string, options: { account: string; trunk: string; dryRun?: boolean; format: string }, command: Command) => {
    const rows = readRows(file, options.format);
    await withServices(command, async ({ ctx }) => {
      const items = rows.map((r) => (r.description === undefined ? { ip_address: r.ipAddress } : { ip_address: r.ipAddress, description: r.description }));
      const created = await trunks.createIpAcls(ctx, SYSTEM_ACTOR, options.account, options.trunk, items, { dryRun: options.dryRun === true }).catch((e: unknown) => Promise.reject(byLine(e, rows, /^(\d+)(\..*)?$/)));
      console.log(options.dryRun ? `dry run: all ${created.length} entries are valid; nothing was written` : `imported ${created.length} entries`);
    });
  });

  const listVerbs = root.command('access-lists').description("Maintain accounts' and devices' access lists");
  withSettings(
    listVerbs
      .command('import')
      .description("Set the CIDRs of an account's (or a device's) access list from a file, one per line (CSV: first column)")
      .argument('<file>')
      .requiredOption('--account <id>', 'the account')
      .option('--device <id>', 'the device (else the account itself)')
      .addOption(new Option('--order <order>', "the list's order (default: the list's own, else allow,deny)").choices(['allow,deny', 'deny,allow']))
      .option('--dry-run', 'check everything and report, writing nothing')
      .addOption(formatOption()),
  ).action(async (file: string, options: { account: string; device?: string; order?: AccessList['order']; dryRun?: boolean; format: string }, command: Command) => {
    const rows = readRows(file, options.format);
    await withServices(command, async ({ ctx }) => {
      const owner = options.device === undefined ? { accountId: options.account } : { accountId: options.account, deviceId: options.device };
      const current = await accessLists.getAccessList(ctx, SYSTEM_ACTOR, owner);
      const body: AccessList = { order: options.order ?? current?.order ?? 'allow,deny', cidrs: rows.map((r) => r.ipAddress) };
      if (current?.user_agent !== undefined) body.user_agent = current.user_agent;
      const held = current?.cidrs.length ?? 0;
      try {
        if (options.dryRun) accessLists.parseAccessList(ctx, body);
        else await accessLists.setAccessList(ctx, SYSTEM_ACTOR, owner, body);
      } catch (error) {
        throw byLine(error, rows, /^cidrs\.(\d+)()$/);
      }
      console.log(options.dryRun ? `dry run: all ${rows.length} CIDRs are valid (the list holds ${held} now); nothing was written` : `set ${rows.length} CIDRs (order ${body.order}); the list held ${held}`);
    });
  });
}
