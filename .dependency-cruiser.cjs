/**
 * Import cycles, type-only imports included: eslint-plugin-import-x's no-cycle (4.18) skips every
 * `import type`, so a cycle made of type imports (two modules that each describe the other) passes it.
 * dependency-cruiser reads TypeScript before compilation (`tsPreCompilationDeps`), so it sees them; `npm run
 * lint` runs it over every room.
 * @type {import('dependency-cruiser').IConfiguration}
 */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Dependencies point one way: split the shared part into a module both import (types included).',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules|bench/\\.venv|test/\\.venv|bench/work)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.json'] },
  },
};
