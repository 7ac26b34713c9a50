// Feeding the SBCs operators already run (api.md §9): the active trunk entries as Kamailio's
// permissions address file, and the access lists and trunk entries as FreeSWITCH's acl.conf.
// Superduper only: these documents name every tenant.

import { aclConfDocument, NOT_FOUND_DOCUMENT, networkListOf, trunkNetworkList, type NetworkList } from '../core/freeswitch-acl.ts';
import { parseCidr } from '../core/ip.ts';
import { formatKamailioAddress, type KamailioAddress } from '../core/kamailio-address.ts';
import type { IpAclRow, Store } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { requireSuperduper } from './actor.ts';
import type { ServiceContext } from './context.ts';

/** The tag a Kamailio route script splits to set X-Account-ID (and X-Trunk-ID). */
const kamailioTag = (row: Pick<IpAclRow, 'accountId' | 'trunkId'>) => `${row.accountId}:${row.trunkId}`;

function kamailioRecordsOf(rows: readonly IpAclRow[], group: number): KamailioAddress[] {
  return rows.flatMap((row) => {
    const parsed = parseCidr(row.ipAddress);
    return parsed.ok ? [{ group, cidr: parsed.cidr, port: 0, tag: kamailioTag(row) }] : [];
  });
}

/** The address file's text for every active trunk entry, read from the store. */
export async function kamailioAddressFile(store: Store, group: number): Promise<string> {
  return formatKamailioAddress(kamailioRecordsOf(await store.read.listActiveIpAcls(), group));
}

export async function exportKamailioAddress(ctx: ServiceContext, actor: Actor, group: number): Promise<string> {
  requireSuperduper(actor);
  return kamailioAddressFile(ctx.store, group);
}

export const TRUNKS_LIST = 'ipwarden-trunks';
export const accountListName = (accountId: string) => `ipwarden-${accountId}`;

/**
 * What mod_xml_curl asks for a configuration section: acl.conf is ours, anything else is answered
 * "not found" so that FreeSWITCH falls back to its own files. Superduper only, whatever it asks.
 */
export async function freeswitchConfiguration(ctx: ServiceContext, actor: Actor, section: string | null, keyValue: string | null): Promise<string> {
  requireSuperduper(actor);
  return section === 'configuration' && keyValue === 'acl.conf' ? exportFreeswitchAcl(ctx, actor) : NOT_FOUND_DOCUMENT;
}

/** One list per account with an access list, then every active trunk entry (default deny). */
export async function exportFreeswitchAcl(ctx: ServiceContext, actor: Actor): Promise<string> {
  requireSuperduper(actor);
  const repo = ctx.store.read;
  const [accounts, devices, entries] = await Promise.all([repo.listAccounts(), repo.listAllDevices(), repo.listActiveIpAcls()]);
  const lists: NetworkList[] = [];
  for (const account of accounts) {
    if (account.accessList === null) continue;
    const list = networkListOf(accountListName(account.id), account.accessList);
    const own = devices.filter((d) => d.accountId === account.id && d.accessList !== null).map((d) => d.id);
    if (own.length > 0) {
      list.notes.push(`the lists of devices ${own.join(', ')} are not here: FreeSWITCH network lists have no per-device rules; this is the account's list alone`);
    }
    lists.push(list);
  }
  lists.push(trunkNetworkList(TRUNKS_LIST, entries.map((e) => e.ipAddress)));
  return aclConfDocument(lists);
}
