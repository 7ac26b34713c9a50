// Devices of an account (api.md §2): `sip.username` unique within the account. A device body may
// carry `access_lists` (Monster UI posts back the document it fetched): validated as in §4 and
// applied; a body without it keeps the device's list.

import type { AccessList } from '../core/acl.ts';
import type { DeviceRow, Json } from '../store/port.ts';
import { UniqueViolationError } from '../store/port.ts';
import type { Actor } from './actor.ts';
import { assertRevision, extraFields, findAccount } from './accounts.ts';
import { checkAccessListContent, normaliseAccessList, presentAccessList } from './access-lists.ts';
import { recordAudit } from './audit.ts';
import type { ServiceContext } from './context.ts';
import { commit } from './context.ts';
import { FieldErrorList, invalid, notFound } from './errors.ts';
import { newId, nextRevision, now } from './identity.ts';
import { deviceSchema, validate, type DeviceBody } from './schemas.ts';


export function presentDevice(d: DeviceRow): Json {
  const sip = { ...((d.extra.sip as Json | undefined) ?? {}), username: d.sipUsername };
  const doc: Json = { ...d.extra, id: d.id, name: d.name, sip, enabled: d.enabled, created: d.created, modified: d.modified };
  if (d.accessList) doc.access_lists = presentAccessList(d.accessList);
  return doc;
}

/** The audit's view of a device: its SIP password is a secret. */
function auditDevice(d: DeviceRow): Json {
  const doc = presentDevice(d);
  const sip = { ...(doc.sip as Json) };
  delete sip.password;
  return { ...doc, sip };
}

const usernameTaken = (username: string) => invalid({ 'sip.username': { unique: { message: 'SIP username is already in use in this account', value: username } } });

function parseDevice(ctx: ServiceContext, body: Json): { valid: DeviceBody; accessList: AccessList | undefined } {
  const errors = new FieldErrorList();
  if (validate(deviceSchema(ctx.limits), body, errors) && body.access_lists !== undefined) {
    checkAccessListContent(body.access_lists as AccessList, errors, 'access_lists.');
  }
  errors.throwIfAny();
  const valid = body as DeviceBody;
  return { valid, accessList: valid.access_lists === undefined ? undefined : normaliseAccessList(valid.access_lists) };
}

export async function createDevice(ctx: ServiceContext, actor: Actor, accountId: string, body: Json): Promise<DeviceRow> {
  await findAccount(ctx, actor, accountId, 'write');
  const { valid, accessList } = parseDevice(ctx, body);
  return commit(ctx, async (tx) => {
    if (await tx.getDeviceBySipUsername(accountId, valid.sip.username)) throw usernameTaken(valid.sip.username);
    const at = now();
    const row: DeviceRow = {
      id: newId(),
      accountId,
      name: valid.name,
      sipUsername: valid.sip.username,
      enabled: valid.enabled ?? true,
      accessList: accessList ?? null,
      extra: extraFields(body, ['name', 'enabled']),
      revision: nextRevision(),
      created: at,
      modified: at,
    };
    try {
      await tx.insertDevice(row);
    } catch (error) {
      if (error instanceof UniqueViolationError) throw usernameTaken(valid.sip.username);
      throw error;
    }
    await tx.recordChange('account', accountId, at);
    await recordAudit(tx, actor, { accountId, action: 'create', resource: 'devices', resourceId: row.id, after: auditDevice(row) });
    return row;
  });
}

export async function listDevices(ctx: ServiceContext, actor: Actor, accountId: string): Promise<DeviceRow[]> {
  await findAccount(ctx, actor, accountId, 'read');
  return ctx.store.read.listDevices(accountId);
}

export async function getDevice(ctx: ServiceContext, actor: Actor, accountId: string, deviceId: string): Promise<DeviceRow> {
  await findAccount(ctx, actor, accountId, 'read');
  const device = await ctx.store.read.getDevice(deviceId);
  if (!device || device.accountId !== accountId) throw notFound(deviceId);
  return device;
}

export async function updateDevice(ctx: ServiceContext, actor: Actor, accountId: string, deviceId: string, body: Json, options: { merge: boolean; expectedRevision?: string }): Promise<DeviceRow> {
  const current = await getDevice(ctx, actor, accountId, deviceId);
  await findAccount(ctx, actor, accountId, 'write');
  const merged = options.merge ? { ...presentDevice(current), ...body } : body;
  const { valid, accessList } = parseDevice(ctx, merged);
  return commit(ctx, async (tx) => {
    const before = await tx.getDevice(deviceId);
    if (!before || before.accountId !== accountId) throw notFound(deviceId);
    assertRevision(before.revision, options.expectedRevision);
    if (valid.sip.username !== before.sipUsername && (await tx.getDeviceBySipUsername(accountId, valid.sip.username))) throw usernameTaken(valid.sip.username);
    const extra = extraFields(body, ['name', 'enabled']);
    const after: DeviceRow = {
      ...before,
      name: valid.name,
      sipUsername: valid.sip.username,
      enabled: valid.enabled ?? before.enabled,
      accessList: accessList === undefined ? before.accessList : accessList,
      extra: options.merge ? { ...before.extra, ...extra } : extra,
      revision: nextRevision(before.revision),
      modified: now(),
    };
    await tx.updateDevice(after);
    await tx.recordChange('account', accountId, after.modified);
    await recordAudit(tx, actor, { accountId, action: 'update', resource: 'devices', resourceId: deviceId, before: auditDevice(before), after: auditDevice(after) });
    return after;
  });
}

export async function deleteDevice(ctx: ServiceContext, actor: Actor, accountId: string, deviceId: string): Promise<DeviceRow> {
  await getDevice(ctx, actor, accountId, deviceId);
  await findAccount(ctx, actor, accountId, 'write');
  return commit(ctx, async (tx) => {
    const before = await tx.getDevice(deviceId);
    if (!before || before.accountId !== accountId) throw notFound(deviceId);
    await tx.deleteDevice(deviceId);
    await tx.recordChange('account', accountId, now());
    await recordAudit(tx, actor, { accountId, action: 'delete', resource: 'devices', resourceId: deviceId, before: auditDevice(before) });
    return before;
  });
}
