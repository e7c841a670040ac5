// ESLint flat config. Workflows get the Temporal determinism rules: no Node built-ins, no SDKs,
// no wall clock or environment; everything else gets the type-aware TypeScript rules.
import tseslint from 'typescript-eslint';
import importX from 'eslint-plugin-import-x';
import prettier from 'eslint-config-prettier';
import { builtinModules } from 'node:module';

const nodeBuiltins = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'bench/.venv/**', 'bench/work/**', 'bin/**', '*.mjs'] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    // The node resolver, as an object: it follows package "exports" (the Azure SDK and the Kubernetes
    // client are exports-only ESM/CJS packages).
    settings: { 'import-x/resolver-next': [importX.createNodeResolver()] },
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
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
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
