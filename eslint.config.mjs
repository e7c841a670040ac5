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
      '.dependency-cruiser.cjs',
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
      // No runtime cycle. It skips type-only imports (import-x 4.18 has no option to follow them), so `npm run
      // lint` also runs dependency-cruiser (.dependency-cruiser.cjs), which sees those too.
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
              target: [
                './src/targets/**',
                './src/server/**',
                './src/inference-protocol/**',
                './src/scoring/**',
                './src/batch/**',
                './src/storage/**',
                './src/preprocess/**',
                './src/model/**',
              ],
              from: ['./workflows', './activities', './worker'],
              message: 'Targets and the inference code sit below activities and workflows.',
            },
            {
              target: './activities/**',
              from: ['./workflows', './worker'],
              message: 'Activities sit below workflows.',
            },
            {
              target: './src/preprocess/**',
              from: './src',
              except: ['./preprocess', './shared', './errors.ts', './model/metadata.ts'],
              message:
                'Preprocessing (spec, image pipeline, which spec a model gets) depends only on src/shared, src/errors.ts ' +
                'and the model metadata keys (src/model/metadata.ts).',
            },
            {
              target: './src/inference-protocol/**',
              from: './src/server',
              except: ['./http-io.ts', './dynamic-batcher.ts'],
              message:
                'The Open Inference Protocol uses only the HTTP helpers of src/server (http-io, dynamic-batcher); ' +
                'the server mounts the protocol, not the other way round.',
            },
            {
              target: './src/inference-protocol/client/**',
              from: ['./src/inference-protocol/server', './src/server', './src/scoring'],
              message:
                'The protocol client side (the smoke check) shares only the wire format (tensors.ts) with the server side.',
            },
            {
              target: './src/inference-protocol/tensors.ts',
              from: ['./src/inference-protocol/server', './src/inference-protocol/client'],
              message: 'tensors.ts is the wire format both sides share: it imports neither side.',
            },
            {
              target: './src/storage/**',
              from: [
                './src/targets',
                './src/server',
                './src/inference-protocol',
                './src/scoring',
                './src/preprocess',
                './src/model',
                './src/temporal',
              ],
              message: 'Blob Storage is an adapter: it knows the batch output format (src/batch), nothing above it.',
            },
            {
              target: ['./src/scoring/**', './src/preprocess/**', './src/model/**', './src/inference-protocol/**'],
              from: './src/storage',
              message: 'Scoring, preprocessing, models and the protocol do not know where bytes live (src/storage).',
            },
            {
              target: './src/azure/**',
              from: './src',
              except: ['./azure'],
              message: 'src/azure (the process-wide Azure credential) depends on nothing else in src.',
            },
            {
              target: [
                './src/!(targets|storage|azure)/**',
                './src/targets/!(aks)/**',
                './workflows/**',
                './activities/**',
                './worker/**',
              ],
              from: './src/azure',
              message: 'Only the AKS target and Blob Storage sign in to Azure (src/azure/credential.ts).',
            },
            {
              target: './src/model/**',
              from: './src/demo',
              message: 'src/model does not depend on the demo.',
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
  // One entry per AKS capability: an activity reaches src/targets/aks/ through its one facade (deploy through
  // the Target interface, which worker/control.ts fills with AksTarget; the GPU pool through aks-gpu-pool.ts;
  // the janitor through aks-janitor.ts), never through the modules behind it.
  ...[
    { files: ['activities/**/*.ts'], facade: undefined },
    { files: ['activities/gpu-pool.ts'], facade: 'aks-gpu-pool' },
    { files: ['activities/janitor.ts'], facade: 'aks-janitor' },
  ].map(({ files, facade }) => ({
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: ['**/targets/aks/*', ...(facade ? [`!../src/targets/aks/${facade}`] : [])],
              message: facade
                ? `This activity reaches AKS only through its facade, src/targets/aks/${facade}.ts.`
                : 'Activities reach AKS through a facade: the Target interface (deploy), aks-gpu-pool.ts or ' +
                  'aks-janitor.ts, each from its own activity file (see docs/architecture.md).',
            },
          ],
        },
      ],
    },
  })),
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
              group: [
                '../activities/*',
                '../src/*',
                '!../src/shared',
                '!../src/shared/*',
                '../../activities/*',
                '../../src/*',
                '!../../src/shared',
                '!../../src/shared/*',
              ],
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
      // A workflow reads as its steps on one screen: helpers live at module level.
      'max-lines-per-function': ['error', { max: 80, skipBlankLines: true, skipComments: true }],
    },
  },
  prettier,
);
