/**
 * What test/docs/doc-commands.test.ts substitutes in the docs' command lines, and what each line must print:
 * the promise its own comment or the page's prose makes. A line without a promise here must exit 0.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

/** Text replaced in every command before it runs; `<fixtures>` is the fixtures directory (the cwd). */
export const SUBSTITUTIONS: ReadonlyArray<{ from: string; to: string; why: string }> = [
  { from: '~/.inferctl/', to: '<fixtures>/.inferctl/', why: 'the demo assets, made there for the test' },
  { from: '/data/', to: '<fixtures>/data/', why: "the schedule example's input and output directories" },
  { from: '--bake 5m', to: '--bake 3s', why: 'a rollout bake the test can wait for' },
];

export interface DocPromise {
  /** The page the line is on. */
  file: string;
  /** Matches the command as the docs show it. */
  match: RegExp;
  /** What the docs say it does, in a few words. */
  why: string;
  /** Expected exit code (default 0). */
  code?: number;
  /** Lines its output must hold. */
  stdout?: RegExp[];
  /** Any further check of its output and of the files it wrote. */
  check?: (stdout: string, fixtures: string) => void;
}

/** What one line printed that a later line of the same example must repeat (the endpoint a scale keeps). */
const seen: { endpoint?: string } = {};

export const PROMISES: readonly DocPromise[] = [
  {
    file: 'docs/aks.md',
    match: /--dry-run$/,
    why: 'what it would create, and the cost per hour and for the TTL; creates nothing',
    stdout: [/^Dry run: nothing is created\./m, /AKS cluster: inferctl-model/, /\$[\d.]+\/h/, /for the TTL \(1h0m\)/],
  },
  {
    file: 'docs/aks.md',
    match: /--dry-run --json$/,
    why: 'the ARM requests and manifests in full',
    check: (stdout) => {
      const doc = JSON.parse(stdout) as { armRequests?: unknown[]; kubernetesObjects?: Array<{ kind?: string }> };
      assert.ok((doc.armRequests ?? []).length > 0, 'armRequests in full');
      assert.ok(
        (doc.kubernetesObjects ?? []).some((o) => o.kind === 'Deployment'),
        'the Deployment manifest in full',
      );
    },
  },
  {
    file: 'docs/batch-scoring.md',
    match: /--dry-run --expected-hours 2/,
    why: 'what it would send and create, and what its GPUs cost; creates nothing',
    stdout: [/^Dry run: nothing is created\./m, /GPU pool: \w+ on cluster ml-aks/, /for 2 h of job\s+\$[\d.]+/],
  },
  {
    file: 'docs/batch-scripts.md',
    match: /--dry-run --expected-hours 2 .*--entry-script \.\/src\/batch_score\.py/,
    why: "the script worker image's Dockerfile, the requests and the pool's cost; creates nothing",
    stdout: [
      /^Dry run: nothing is created\./m,
      /the scoring script's worker image on python:3\.\d+-slim-bookworm/,
      /note: the environment is CPU-only/,
      /^ {4}COPY bundle \/var\/azureml-app$/m,
      /for 2 h of job\s+\$[\d.]+/,
    ],
  },
  {
    file: 'docs/coming-from-azure-ml-v1.md',
    match: /--model \.\/resnet50 --dry-run$/,
    why: 'what it would build locally: the environment, the app folder and the model under azureml-models/',
    stdout: [
      /^Dry run: scoring script score\.py as "resnet50" on local; nothing is created\./m,
      /AZUREML_MODEL_DIR <bundle>\/app\/azureml-models\/resnet50\/1; the model at .*\/resnet50\/1\/resnet50$/m,
    ],
  },
  {
    file: 'docs/coming-from-azure-ml-v1.md',
    match: /--model \.\/resnet50 --target aks --dry-run --json$/,
    why: "the script image's Dockerfile, in full",
    check: (stdout) => {
      const doc = JSON.parse(stdout) as { target?: string; image?: { dockerfile?: string } };
      assert.equal(doc.target, 'aks');
      assert.match(doc.image?.dockerfile ?? '', /^COPY bundle \/var\/azureml-app$/m, 'the bundle goes into the image');
    },
  },
  {
    file: 'docs/batch-scoring.md',
    match: /inferctl score --model model\.onnx --input \.\/images --output \.\/out/,
    why: 'predictions.jsonl, errors.jsonl and summary.json in --output',
    stdout: [/^Scored (\d+) of \1 inputs \(0 failed\)/m, /^Predictions: .*out\/predictions\.jsonl$/m],
    check: (_stdout, fixtures) => {
      const out = path.join(fixtures, 'out');
      const rows = fs.readFileSync(path.join(out, 'predictions.jsonl'), 'utf8').trim().split('\n');
      const images = fs.readdirSync(path.join(fixtures, 'images')).length;
      assert.equal(rows.length, images, 'one row per input image');
      fs.accessSync(path.join(out, 'errors.jsonl'));
      fs.accessSync(path.join(out, 'summary.json'));
    },
  },
  {
    file: 'docs/deploying.md',
    match: /inferctl deploy .*--name colours --replicas 2 --ttl 30m/,
    why: 'deploys, smoke-queries and prints the endpoint; a 30m TTL',
    stdout: [
      /✔ smokeQuery/,
      /^Smoke answer: red /m,
      /^Endpoint: POST http:\/\/127\.0\.0\.1:\d+\/score/m,
      /It ends when its TTL ends at /,
    ],
  },
  {
    file: 'docs/deploying.md',
    match: /inferctl teardown colours$/,
    why: 'prints what was removed',
    stdout: [/^Torn down: \d+ resource\(s\) removed\./m],
  },
  {
    file: 'docs/long-lived-endpoints.md',
    match: /--ttl none --idle-ttl 30m/,
    why: '--ttl none serves until inferctl teardown (the idle TTL alone ends it)',
    stdout: [/✔ smokeQuery/, /^Smoke answer: red /m, /It ends after 30m0s without a scoring request \(no TTL\)/],
    check: (stdout) => {
      seen.endpoint = /^Endpoint: POST (http:\/\/\S+)\/score/m.exec(stdout)?.[1];
      assert.ok(seen.endpoint, 'the endpoint is printed');
    },
  },
  {
    file: 'docs/long-lived-endpoints.md',
    match: /inferctl scale colours --replicas 3$/,
    why: 'returns when all 3 are ready; same endpoint',
    stdout: [/^colours serves 3 replica\(s\) \(was 1\), all ready behind /m],
    check: (stdout) => assert.ok(seen.endpoint && stdout.includes(seen.endpoint), `the same endpoint ${seen.endpoint}`),
  },
  {
    file: 'docs/long-lived-endpoints.md',
    match: /inferctl rollout colours --model v2\.onnx/,
    why: "the rollout's outcome",
    stdout: [/^colours now serves v2\.onnx \(sha256:[0-9a-f]+\)/m],
  },
  {
    file: 'docs/long-lived-endpoints.md',
    match: /inferctl status colours$/,
    why: 'when and why it ends, the versions served',
    stdout: [
      /stage serving/,
      /ends after 30m0s without a scoring request \(no TTL\)/,
      /version tiny-cnn\.onnx sha256:[0-9a-f]+: from .* until .* \(replaced by .*v2\.onnx\)/,
      /version v2\.onnx sha256:[0-9a-f]+: from .* serving/,
    ],
  },
  {
    file: 'docs/open-inference-protocol.md',
    match: /inferctl deploy --model tabular\.onnx/,
    why: 'V2 only, with its smoke answer and endpoint',
    stdout: [
      /✔ validate \(\d+m?s\): V2 only \(not an image classifier\)/,
      /^Smoke answer \(V2\): sum FP32 \[1, 3\] \(max difference 0\)/m,
      /^Endpoint: POST http:\/\/127\.0\.0\.1:\d+\/v2\/models\/tabular\/infer {2}\(Open Inference Protocol only/m,
    ],
  },
  {
    file: 'docs/schedules.md',
    match: /inferctl schedule trigger nightly$/,
    why: 'one run now',
    stdout: [/triggered: a run starts now/],
  },
  {
    file: 'docs/schedules.md',
    match: /inferctl schedule backfill nightly/,
    why: 'the slots in the range (three daily ones here)',
    stdout: [/Backfilling 3 slot\(s\) of "nightly": 2026-11-20T\S+, 2026-11-21T\S+, 2026-11-22T/],
  },
  {
    file: 'docs/schedules.md',
    match: /inferctl schedule delete nightly$/,
    why: 'runs it started are not affected',
    stdout: [/deleted \(runs it started are not affected\)/],
  },
  {
    file: 'docs/schedules.md',
    match: /inferctl schedule list$/,
    why: 'every schedule, paused or not, next run',
    stdout: [/^nightly\s+active\s+next \d{4}-/m],
  },
  {
    file: 'docs/schedules.md',
    match: /inferctl schedule describe nightly$/,
    why: 'next runs; recent runs and their results',
    stdout: [/^nightly: active/m, /next runs: \d{4}-/],
  },
];

/** The promise for a command of `file`, if any. */
export function promiseFor(file: string, command: string): DocPromise | undefined {
  return PROMISES.find((p) => p.file === file && p.match.test(command));
}
