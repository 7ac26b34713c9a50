// The layers of shared/design/style.md, checked by `npm run lint:deps` (and so by CI):
// `cli, main → api, edge → services → store, core`, and core imports nothing of ours. Type-only
// imports count: a type is a dependency too.

/** A path pattern for these folders or files under src/. */
const under = (...names) => `^src/(${names.join('|')})`;

/** `name`: forbidden from `from` to any of `to`. */
const forbid = (name, comment, from, to) => ({ name, comment, severity: 'error', from: { path: from }, to: { path: to } });

module.exports = {
  forbidden: [
    {
      name: 'no-cycles',
      comment: 'Dependencies flow one way (style.md): a cycle means two modules are one, or a rule sits in the wrong one.',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    forbid('core-is-pure', 'core/ is values in, values out: it imports nothing of ours.', under('core/'), '^src/(?!core/)'),
    {
      name: 'core-has-no-io',
      comment: 'core/ has no fs, net, clock, env or logger: no Node built-in module.',
      severity: 'error',
      from: { path: under('core/') },
      to: { dependencyTypes: ['core'] },
    },
    forbid('store-below-services', 'store/ is persistence only: it knows no rule, route or packet.', under('store/'), under('services/', 'api/', 'edge/', 'cli/', 'sbc/', 'console/')),
    forbid('services-below-api-and-edge', 'services/ are shared by the API, the edge and the CLI, so they import none of them.', under('services/'), under('api/', 'edge/', 'cli/', 'sbc/', 'console/')),
    forbid('api-through-services', 'api/ is HTTP only: what it needs of the store, the services hand out.', under('api/'), under('store/', 'edge/', 'cli/', 'sbc/')),
    forbid('edge-through-services', 'edge/ reads the decision index through services/decision-types.ts, never the store or the API.', under('edge/'), under('store/', 'api/', 'cli/', 'sbc/')),
    forbid('sbc-is-an-adapter', 'sbc/ writes what main.ts hands it to an SBC: it reads no store and calls no service.', under('sbc/'), under('store/', 'services/', 'api/', 'edge/', 'cli/')),
    forbid('cli-through-services', 'cli/ acts through the services and main.ts, never the store, the API or the edge directly.', under('cli/'), under('store/', 'api/', 'edge/', 'sbc/')),
    forbid('console-stands-alone', 'console/ is the browser app: it talks to the API over HTTP only.', under('console/'), '^src/(?!console/)'),
    {
      name: 'composition-roots-on-top',
      comment: 'main.ts and edge-worker.ts wire everything; only the CLI (and the worker) start them.',
      severity: 'error',
      from: { path: '^src/', pathNot: under('cli/', 'edge-worker\\.ts$') },
      to: { path: under('main\\.ts$', 'edge-worker\\.ts$') },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^src/console/.*\\.(css|html)$' },
  },
};
