// ESLint flat config. Workflows get the Temporal determinism rules: no Node built-ins, no SDKs,
// no wall clock or environment; everything else gets the type-aware TypeScript rules.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'bench/.venv/**',
      'test/.venv/**',
      'test/.script-envs/**',
      'bench/work/**',
      'bin/**',
      '*.mjs',
    ],
  },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    // The node resolver, as an object: it follows package "exports" (the Azure SDK and the Kubernetes
    // client are exports-only ESM/CJS packages).
    settings: {
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js', '.json', '.node'] })],
      // Parse TypeScript dependencies too, so that no-cycle follows imports through .ts files.
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': [
        'error',
        {
          allowForKnownSafeCalls: [
            { from: 'package', package: 'node:test', name: ['describe', 'test', 'it', 'before', 'after', 'suite'] },
          ],
        },
      ],
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'import-x/no-cycle': 'error',
      // Dependencies point down: CLI → client → workflow → activity → target. Each zone is a room that
      // must not import from the rooms listed in `from`.
      'import-x/no-restricted-paths': [
        'error',
        {
          zones: [
            {
              target: ['./src/!(cli)/**', './workflows/**', './activities/**', './worker/**'],
              from: './src/cli',
              message: 'Only the CLI is presentation: shared helpers live in src/shared/.',
            },
            {
              target: './src/shared/**',
              from: './src',
              except: ['./shared', './errors.ts'],
              message: 'src/shared is the contract: it depends on nothing below it.',
            },
            {
              target: ['./src/targets/**', './src/server/**', './src/scoring/**', './src/batch/**'],
              from: ['./workflows', './activities', './worker'],
              message: 'Targets and the inference code sit below activities and workflows.',
            },
            {
              target: './activities/**',
              from: ['./workflows', './worker'],
              message: 'Activities sit below workflows.',
            },
            {
              target: './src/model/**',
              from: ['./src/images', './src/demo'],
              message: 'src/model depends on neither images nor demo.',
            },
            {
              target: ['./src/!(demo)/**', './workflows/**', './activities/**', './worker/**'],
              from: './src/demo',
              message: 'Demo and test fixtures are used by scripts, benchmarks and tests, not by the product.',
            },
          ],
        },
      ],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // One concept per file: split a file before it grows past a screenful of screens.
    files: [
      'src/**/*.ts',
      'workflows/**/*.ts',
      'activities/**/*.ts',
      'worker/**/*.ts',
      'scripts/**/*.ts',
      'bench/**/*.ts',
    ],
    rules: { 'max-lines': ['error', { max: 400 }] },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflows are deterministic: no Node built-ins.' })),
          patterns: [
            {
              group: ['@azure/*', 'onnxruntime-node', 'sharp', '@kubernetes/*'],
              message: 'Workflows call SDKs only through activities.',
            },
            {
              group: ['../activities/*', '../src/*', '!../src/shared', '!../src/shared/*'],
              allowTypeImports: true,
              message:
                'Workflows import activities and shared code as types only; workflow-safe values live in src/shared/.',
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'process', message: 'No process.env in workflows: pass config as input.' },
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'setInterval', message: 'Use sleep() from @temporalio/workflow.' },
        { name: 'console', message: 'Use log from @temporalio/workflow.' },
      ],
    },
  },
  prettier,
);
