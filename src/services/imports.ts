// Migration from the SBCs' own files (api.md §9): a Kamailio address file becomes trunk entries,
// FreeSWITCH acl.conf lists become account access lists. Every item is checked by the same rules
// as the API's writes (trunks.ts, access-lists.ts), all in one transaction: either everything is
// created or nothing is, and a dry run reports what would be created and what is refused, and why.

import type { AccessList } from '../core/acl.ts';
import { accessListOf, parseAclConf } from '../core/freeswitch-acl.ts';
import { formatCidr, isHostCidr } from '../core/ip.ts';
import { parseKamailioAddress, type KamailioAddressLine } from '../core/kamailio-address.ts';
import type { Repository } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { findAccount } from './accounts.ts';
import { parseAccessList, writeAccessList } from './access-lists.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { Failure, invalid } from './errors.ts';
import { accountListName, TRUNKS_LIST } from './exports.ts';
import { insertIpAcl, parseIpAcl } from './trunks.ts';

export interface Trunk {
  accountId: string;
  trunkId: string;
}

export interface ImportItem {
  /** Where it comes from: `line 3`, `list carriers`. */
  source: string;
  /** What it is: `203.0.113.0/24`, `allow,deny 3 cidrs`. */
  what: string;
  /** Where it goes: `ACCOUNT:TRUNK`, `ACCOUNT`. */
  target?: string;
  reason?: string;
}

export interface ImportReport {
  created: ImportItem[];
  refused: ImportItem[];
  /** Not taken, on purpose (an unmapped FreeSWITCH list); no reason to refuse the rest. */
  skipped: ImportItem[];
  /** Said for information: what FreeSWITCH itself ignores, for instance. */
  notes: string[];
  /** True when the changes were committed (not a dry run, nothing refused). */
  applied: boolean;
}

/** A Failure's fields, as one line. */
function reasonOf(error: unknown): string {
  if (!(error instanceof Failure)) throw error;
  const fields = Object.values(error.details.fields ?? {}).flatMap((rules) => Object.values(rules).map((r) => r.message));
  return [...(fields.length > 0 ? fields : [error.message]), ...(error.details.cause ? [error.details.cause] : [])].join('; ');
}

/** Thrown inside the transaction to roll it back (a dry run, or something refused). */
class RolledBack extends Error {}

/**
 * Runs `write` for every item in one transaction; rolls back on a dry run or when anything was
 * refused (then `created` says what would have been).
 */
async function allOrNothing<T>(ctx: ServiceContext, report: ImportReport, dryRun: boolean, items: T[], write: (tx: Repository, item: T) => Promise<void>): Promise<ImportReport> {
  try {
    await commit(ctx, async (tx) => {
      for (const item of items) await write(tx, item);
      if (dryRun || report.refused.length > 0) throw new RolledBack();
    });
    report.applied = true;
  } catch (error) {
    if (!(error instanceof RolledBack)) throw error;
  }
  return report;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const ACCOUNT_ID = /^[0-9a-f]{32}$/;

/** `ACCOUNT_ID:TRUNK_ID`, as ipwarden writes tags; null for any other text. */
export function trunkOfTag(tag: string | undefined): Trunk | null {
  const [accountId, trunkId, more] = (tag ?? '').split(':');
  return more === undefined && ACCOUNT_ID.test(accountId ?? '') && UUID.test(trunkId ?? '') ? { accountId: accountId!, trunkId: trunkId! } : null;
}

export interface KamailioMapping {
  /** `--map GROUP=ACCOUNT:TRUNK` */
  groups: Map<number, Trunk>;
  /** `--tag TAG=ACCOUNT:TRUNK` (wins over the group) */
  tags: Map<string, Trunk>;
}

function kamailioTarget(record: KamailioAddressLine, mapping: KamailioMapping): Trunk | string {
  if (record.port !== 0) return `port ${record.port}: ipwarden's trunk entries match every source port`;
  const target = (record.tag !== undefined ? mapping.tags.get(record.tag) : undefined) ?? mapping.groups.get(record.group) ?? trunkOfTag(record.tag);
  if (target) return target;
  return `no trunk for group ${record.group}${record.tag === undefined ? '' : ` / tag ${record.tag}`}: give --map ${record.group}=ACCOUNT_ID:TRUNK_ID${record.tag === undefined ? '' : ` or --tag ${record.tag}=ACCOUNT_ID:TRUNK_ID`}`;
}

/** An address file's records as trunk entries (api.md §9), all or none. */
export async function importKamailioAddress(ctx: ServiceContext, actor: Actor, text: string, mapping: KamailioMapping, options: { dryRun: boolean }): Promise<ImportReport> {
  const report: ImportReport = { created: [], refused: [], skipped: [], notes: [], applied: false };
  const file = parseKamailioAddress(text);
  for (const error of file.errors) report.refused.push({ source: `line ${error.line}`, what: error.text.trim(), reason: error.reason });
  const writable = new Map<string, string | null>();
  const ready: { item: ImportItem; target: Trunk; parsed: ReturnType<typeof parseIpAcl> }[] = [];
  for (const record of file.records) {
    const address = isHostCidr(record.cidr) ? formatCidr(record.cidr).split('/')[0]! : formatCidr(record.cidr);
    const item: ImportItem = { source: `line ${record.line}`, what: address };
    const target = kamailioTarget(record, mapping);
    if (typeof target === 'string') {
      report.refused.push({ ...item, reason: target });
      continue;
    }
    item.target = `${target.accountId}:${target.trunkId}`;
    if (!writable.has(target.accountId)) writable.set(target.accountId, await findAccount(ctx, actor, target.accountId, 'write').then(() => null, reasonOf));
    const refusal = writable.get(target.accountId);
    try {
      if (refusal) throw new Failure('forbidden', refusal);
      const description = `from the Kamailio address file, line ${record.line}${record.tag === undefined ? '' : ` (tag ${record.tag})`}`;
      ready.push({ item, target, parsed: parseIpAcl(ctx, actor, { ip_address: address, description }) });
    } catch (error) {
      report.refused.push({ ...item, reason: reasonOf(error) });
    }
  }
  // Each trunk's blocks, so a record already there (a second run of the same import) is skipped.
  const present = new Map<string, Set<string>>();
  return allOrNothing(ctx, report, options.dryRun, ready, async (tx, { item, target, parsed }) => {
    let blocks = present.get(target.trunkId);
    if (!blocks) present.set(target.trunkId, (blocks = new Set((await tx.listIpAcls({ trunkId: target.trunkId })).map((r) => r.ipAddress))));
    if (blocks.has(parsed.address.text)) {
      report.skipped.push({ ...item, reason: 'already an entry of this trunk' });
      return;
    }
    try {
      await insertIpAcl(tx, ctx, actor, target.accountId, target.trunkId, parsed);
      blocks.add(parsed.address.text);
      report.created.push(item);
    } catch (error) {
      report.refused.push({ ...item, reason: reasonOf(error) });
    }
  });
}

/** acl.conf's lists as account access lists (api.md §9), all or none. */
export async function importFreeswitchAcl(ctx: ServiceContext, actor: Actor, xml: string, mapping: Map<string, string>, options: { dryRun: boolean }): Promise<ImportReport> {
  const report: ImportReport = { created: [], refused: [], skipped: [], notes: [], applied: false };
  let lists;
  try {
    lists = parseAclConf(xml);
  } catch (error) {
    throw invalid({ file: { format: { message: (error as Error).message } } });
  }
  const ready: { item: ImportItem; accountId: string; list: AccessList }[] = [];
  const taken = new Map<string, string>();
  for (const parsed of lists) {
    const item: ImportItem = { source: `list ${parsed.name}`, what: `default ${parsed.default}, ${parsed.nodes.length} nodes` };
    const prefix = accountListName('');
    const named = parsed.name.startsWith(prefix) ? parsed.name.slice(prefix.length) : '';
    const accountId = mapping.get(parsed.name) ?? (ACCOUNT_ID.test(named) ? named : undefined);
    if (accountId === undefined) {
      const why = parsed.name === TRUNKS_LIST ? 'trunk entries come from Kamailio address files (import kamailio-address), not from acl.conf' : `no account given: --list ${parsed.name}=ACCOUNT_ID`;
      report.skipped.push({ ...item, reason: why });
      continue;
    }
    item.target = accountId;
    const converted = accessListOf(parsed);
    try {
      if (!converted.ok) throw new Failure('validation', converted.reason);
      if (taken.has(accountId)) throw new Failure('conflict', `account ${accountId} already takes list ${taken.get(accountId)}`);
      await findAccount(ctx, actor, accountId, 'write');
      const list = parseAccessList(ctx, converted.list);
      taken.set(accountId, parsed.name);
      item.what = `${list.order}, ${list.cidrs.length} cidrs`;
      for (const ignored of converted.ignored) report.notes.push(`list ${parsed.name}: ignored ${ignored}`);
      ready.push({ item, accountId, list });
    } catch (error) {
      report.refused.push({ ...item, reason: reasonOf(error) });
    }
  }
  if (ready.length === 0 && report.refused.length === 0) report.notes.push('no list was mapped to an account');
  return allOrNothing(ctx, report, options.dryRun, ready, async (tx, { item, accountId, list }) => {
    await writeAccessList(tx, actor, { accountId }, list);
    report.created.push(item);
  });
}
