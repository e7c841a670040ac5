/**
 * `npm test`: starts ONE real Temporal dev server (free ports, a fresh temp dir, Web UI on) for the whole
 * run, runs every compiled test file with node's test runner against it, and stops the server at the end.
 *   node dist/scripts/run-tests.js [substring …]   only the test files whose path contains one of them
 * INFERCTL_TEST_CONCURRENCY sets how many test files run at once (default 2, for 2-core machines).
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Client, Connection } from '@temporalio/client';

import { findTemporalCli } from '../src/temporal/cli-binary';
import { startDevServer } from '../src/temporal/dev-server';
import { ensureTestTls, testTlsEnv } from '../test/helpers/azure/test-tls';
import { buildKubernetesTools } from '../test/helpers/kubernetes/kubernetes-tools';
import { FIGURES_FILE, writeReliabilityFigures } from './reliability-figures';
import type { ReliabilityReport, ReportRecord } from './reliability-figures';

const TEST_ROOT = path.resolve(__dirname, '..', 'test');
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * Collects every endpoint key the local target writes while the tests run (keys live only as long as
 * their deployment), so that afterwards every workflow history can be searched for them.
 */
class KeyCollector {
  readonly keys = new Set<string>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly localRoot: string) {
    this.timer = setInterval(() => this.scan(), 100);
  }

  private scan(): void {
    let names: string[];
    try {
      names = fs.readdirSync(this.localRoot);
    } catch {
      return;
    }
    for (const name of names) {
      try {
        const key = fs.readFileSync(path.join(this.localRoot, name, 'api-key'), 'utf8').trim();
        if (key) this.keys.add(key);
      } catch {
        // not written yet, or already torn down
      }
    }
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

/** Gathers the fault tests' records into test-artifacts/reliability-report.json and prints the totals. */
function writeReliabilityReport(dir: string, keysChecked: number, secretLeaks: number): ReliabilityReport | undefined {
  let all: ReportRecord[] = [];
  try {
    all = fs.readdirSync(dir).map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as ReportRecord);
  } catch {
    return undefined; // no fault test ran (a filtered run)
  }
  // Figures the tests measured (recordFigure) are reported beside the records, not counted as runs.
  const figures = all.filter((r) => typeof r.figure === 'string');
  const records = all.filter((r) => typeof r.figure !== 'string');
  const sum = (key: string) => records.reduce((n, r) => n + (typeof r[key] === 'number' ? r[key] : 0), 0);
  const totals = {
    faultsInjected: sum('faultsInjected'),
    runsSurvived: records.filter((r) => r.survived === true).length,
    runsUnderFault: records.length,
    inputsTried: sum('inputsTried'),
    inputsRejectedCleanly: sum('inputsRejectedCleanly'),
    rowsLost: sum('rowsLost'),
    rowsDuplicated: sum('rowsDuplicated'),
    resourcesLeaked: sum('resourcesLeaked'),
    endpointKeysChecked: keysChecked,
    secretLeaks,
  };
  // "Attacks tried": per attack (shared-group-teardown, foreign-owner, unencrypted-start, …), tried and refused.
  const attacksTried: Record<string, { tried: number; refused: number }> = {};
  for (const r of records) {
    if (typeof r.attack !== 'string') continue;
    const a = (attacksTried[r.attack] ??= { tried: 0, refused: 0 });
    a.tried += typeof r.attacksTried === 'number' ? r.attacksTried : 0;
    a.refused += typeof r.attacksRefused === 'number' ? r.attacksRefused : 0;
  }
  const out = path.resolve(REPO_ROOT, 'test-artifacts', 'reliability-report.json');
  const report = { date: new Date().toISOString(), totals, attacksTried, records, figures };
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, JSON.stringify(report, null, 2) + '\n');
  console.log(`reliability: ${JSON.stringify(totals)} (test-artifacts/reliability-report.json)`);
  return report;
}

/**
 * Every workflow run in the namespace, listed raw: `client.workflow.list()` decodes each run's memo, which
 * fails for runs whose memo the payload codec encrypted (the cost ledger's), and the check needs only ids.
 */
async function* workflowRuns(connection: Connection, namespace: string) {
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await connection.workflowService.listWorkflowExecutions({ namespace, pageSize: 1000, nextPageToken });
    for (const e of page.executions ?? []) yield { workflowId: e.execution!.workflowId!, runId: e.execution!.runId! };
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken);
}

/** Every workflow history of the run, searched for every key seen; returns how many histories leak one. */
async function checkSecretHygiene(address: string, namespace: string, keys: Set<string>): Promise<number> {
  const connection = await Connection.connect({ address });
  try {
    const client = new Client({ connection, namespace });
    let histories = 0;
    let leaks = 0;
    for await (const wf of workflowRuns(connection, namespace)) {
      const history = JSON.stringify(await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory());
      histories++;
      const leaked = [...keys].filter((k) => history.includes(k));
      if (leaked.length > 0) {
        leaks++;
        console.error(
          `SECRET LEAK: workflow ${wf.workflowId} (run ${wf.runId}) history contains ${leaked.length} endpoint key(s)`,
        );
      }
    }
    console.log(
      `secret hygiene: ${keys.size} endpoint keys searched for in ${histories} workflow histories: ${leaks} leak(s)`,
    );
    return leaks;
  } finally {
    await connection.close();
  }
}

function testFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) =>
      e.isDirectory() ? testFiles(path.join(dir, e.name)) : e.name.endsWith('.test.js') ? [path.join(dir, e.name)] : [],
    )
    .sort();
}

/** Under an older `node` (the machine's, not the project's), runs again on the Node that `npm ci` installed. */
function onProjectNode(): number | undefined {
  if (Number(process.versions.node.split('.')[0]) >= 22) return undefined;
  const own = path.resolve(__dirname, '..', '..', 'node_modules', 'node', 'bin', 'node');
  if (!fs.existsSync(own)) {
    console.error(
      `Node ${process.versions.node} is too old for the tests (need 22+): run \`npm ci\`, then \`npm test\`.`,
    );
    return 2;
  }
  return spawnSync(own, [__filename, ...process.argv.slice(2)], { stdio: 'inherit' }).status ?? 1;
}

async function main(): Promise<number> {
  const handedOver = onProjectNode();
  if (handedOver !== undefined) return handedOver;
  const filters = process.argv.slice(2);
  const files = testFiles(TEST_ROOT).filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)));
  if (files.length === 0) {
    console.error(`No test files match ${filters.join(', ')}`);
    return 1;
  }
  const cli = await findTemporalCli({ build: true, log: (l) => console.error(l) });
  // The aks tests run a real Kubernetes control plane; its binaries are built once into the cache.
  if (files.some((f) => f.includes(`${path.sep}aks`))) await buildKubernetesTools((l) => console.error(l));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-test-'));
  // One certificate for the run's local HTTPS endpoints (ARM, kube-apiserver), trusted by every test process.
  const tls = ensureTestTls(path.join(tmp, 'tls'));
  const started = Date.now();
  const server = await startDevServer({ dataDir: path.join(tmp, 'temporal'), cliPath: cli });
  console.log(
    `Temporal dev server ${server.address} (Web UI ${server.uiUrl}) up in ${Date.now() - started} ms; data in ${tmp}`,
  );

  const stopAll = async () => {
    await server.stop();
    if (!process.env.INFERCTL_KEEP_TEST_DATA) fs.rmSync(tmp, { recursive: true, force: true });
  };
  const child = spawn(
    process.execPath,
    ['--test', `--test-concurrency=${process.env.INFERCTL_TEST_CONCURRENCY ?? '2'}`, '--test-reporter=spec', ...files],
    {
      stdio: 'inherit',
      env: {
        ...process.env,
        TEMPORAL_ADDRESS: server.address,
        TEMPORAL_NAMESPACE: server.namespace,
        INFERCTL_UI_URL: server.uiUrl,
        INFERCTL_HOME: path.join(tmp, 'home'),
        TEMPORAL_CLI_PATH: cli,
        INFERCTL_RELIABILITY_DIR: path.join(tmp, 'reliability'),
        ...testTlsEnv(tls, path.join(tmp, 'tls')),
      },
    },
  );
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      child.kill(signal);
    });
  }
  const home = path.join(tmp, 'home');
  const keys = new KeyCollector(path.join(home, 'local'));
  const code = await new Promise<number>((resolve) => child.once('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
  keys.stop();
  let leaks = 0;
  try {
    leaks = await checkSecretHygiene(server.address, server.namespace, keys.keys);
    const report = writeReliabilityReport(path.join(tmp, 'reliability'), keys.keys.size, leaks);
    // Only a full run speaks for the whole suite; a filtered one leaves the committed page as it is.
    if (report && filters.length === 0) {
      await writeReliabilityFigures(REPO_ROOT, report);
      console.log(`reliability figures written to ${FIGURES_FILE} (commit it)`);
    }
  } finally {
    await stopAll();
  }
  return code !== 0 ? code : leaks > 0 ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
