// Devices of an account (api.md §2); their access lists are in access-lists.ts. A device read
// shows its access_lists when set; a replace without them keeps them.

import { collectionRoutes } from './crud.ts';
import * as devices from '../../services/devices.ts';
import { DeviceSchema, DEFAULT_LIMITS } from '../../services/schemas.ts';

export const routes = collectionRoutes({
  base: '/v2/accounts/:account_id/devices',
  idParam: 'device_id',
  noun: 'device',
  schema: DeviceSchema(DEFAULT_LIMITS.maxCidrs),
  present: devices.presentDevice,
  create: (ctx, actor, p, body) => devices.createDevice(ctx, actor, p.account_id!, body),
  list: (ctx, actor, p) => devices.listDevices(ctx, actor, p.account_id!),
  get: (ctx, actor, p) => devices.getDevice(ctx, actor, p.account_id!, p.device_id!),
  update: (ctx, actor, p, body, options) => devices.updateDevice(ctx, actor, p.account_id!, p.device_id!, body, options),
  remove: (ctx, actor, p) => devices.deleteDevice(ctx, actor, p.account_id!, p.device_id!),
});
