// Users of an account (api.md §2). The password is write-only.

import { collectionRoutes } from './crud.ts';
import { UserSchema } from '../../services/schemas.ts';
import * as users from '../../services/users.ts';

export const routes = collectionRoutes({
  base: '/v2/accounts/:account_id/users',
  idParam: 'user_id',
  noun: 'user',
  schema: UserSchema,
  present: users.presentUser,
  create: (ctx, actor, p, body) => users.createUser(ctx, actor, p.account_id!, body),
  list: (ctx, actor, p) => users.listUsers(ctx, actor, p.account_id!),
  get: (ctx, actor, p) => users.getUser(ctx, actor, p.account_id!, p.user_id!),
  update: (ctx, actor, p, body, options) => users.updateUser(ctx, actor, p.account_id!, p.user_id!, body, options),
  remove: (ctx, actor, p) => users.deleteUser(ctx, actor, p.account_id!, p.user_id!),
});
