/**
 * Proof in a real browser: run one deploy and one batch job with the inferctl CLI, then open the
 * Temporal Web UI in headless Chromium (Debian's, driven by playwright-core) and check that each
 * workflow shows its summary, details, current details and search attributes. Screenshots go to
 * test-artifacts/; with INFERCTL_UPDATE_SCREENSHOTS=1 they also refresh docs/ for the README.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';

import { writeSampleImages } from '../../src/demo/sample-images';
import { demoAssets, startControlWorker, startGpuWorker, uniqueName } from '../helpers/workers';
import type { WorkerProcess } from '../helpers/workers';
import { runInferctl } from '../helpers/cli';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// Chromium's own background traffic is refused on a closed network; keep it quiet and local.
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const haveChromium = fs.existsSync(CHROMIUM);
// CI installs Chromium (.ci/run); only a developer machine without it may skip this test.
const skip = !haveChromium && !process.env.CI ? `no Chromium at ${CHROMIUM} (apt-get install chromium)` : false;

const inferctl = (args: string[]) => runInferctl(args);

describe('the Temporal Web UI tells the story', { skip }, () => {
  const controlQueue = uniqueName('ui-control');
  const gpuQueue = uniqueName('ui-gpu');
  const deployName = uniqueName('colours');
  const scoreName = uniqueName('nightly');
  const workers: WorkerProcess[] = [];
  let browser: Browser;
  let page: Page;
  const ui = process.env.INFERCTL_UI_URL!;

  before(async () => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    workers.push(await startControlWorker(controlQueue), await startGpuWorker(gpuQueue));
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  });
  after(async () => {
    await browser?.close();
    for (const w of workers) await w.stop();
  });

  async function shot(name: string): Promise<void> {
    const file = path.join(ARTIFACTS, `${name}.png`);
    await page.screenshot({ path: file });
    if (process.env.INFERCTL_UPDATE_SCREENSHOTS) fs.copyFileSync(file, path.join(ROOT, 'docs', `${name}.png`));
  }

  async function openTab(workflowId: string, tab: string): Promise<void> {
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    await page.getByText(tab, { exact: true }).first().click();
    await page.locator('main').waitFor();
  }

  /** The page's text including its frames (the UI renders markdown summaries in sandboxed iframes). */
  async function pageText(): Promise<string> {
    const parts = await Promise.all(
      page.frames().map((f) =>
        f
          .locator('body')
          .innerText()
          .catch(() => ''),
      ),
    );
    return parts.join('\n');
  }

  /** Waits until the page (frames included) shows text matching `pattern`; returns all of it. */
  async function waitForText(pattern: RegExp, timeoutMs = 30_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    let text = '';
    while (Date.now() < deadline) {
      text = await pageText();
      if (pattern.test(text)) return text;
      await page.waitForTimeout(250);
    }
    assert.match(text, pattern);
    return text;
  }

  test('a finished deploy and a finished batch job explain themselves', async () => {
    const assets = await demoAssets();
    const red = assets.samples.find((s) => s.label === 'red')!;
    const deployed = await inferctl([
      'deploy',
      '--model',
      assets.modelPath,
      '--name',
      deployName,
      '--replicas',
      '2',
      '--ttl',
      '2s',
      '--smoke-sample',
      red.path,
      '--expect-label',
      'red',
      '--follow',
      '--task-queue',
      controlQueue,
    ]);
    assert.equal(deployed.code, 0, deployed.stderr);
    const input = fs.mkdtempSync(path.join(os.tmpdir(), 'inferctl-ui-'));
    await writeSampleImages(input, 24);
    const scored = await inferctl([
      'score',
      '--model',
      assets.modelPath,
      '--input',
      input,
      '--output',
      path.join(input, 'out'),
      '--name',
      scoreName,
      '--shard-size',
      '6',
      '--task-queue',
      controlQueue,
      '--gpu-queue',
      gpuQueue,
    ]);
    assert.equal(scored.code, 0, scored.stderr);

    // The list finds both, by their readable ids.
    await page.goto(`${ui}/namespaces/default/workflows`);
    await page.getByText(`deploy-${deployName}`).first().waitFor({ timeout: 30_000 });
    await page.getByText(`score-${scoreName}`).first().waitFor({ timeout: 30_000 });
    await shot('web-ui-workflows');

    // The deploy: its summary, details and current details (from the running worker), then its search attributes.
    await openTab(`deploy-${deployName}`, 'User Metadata');
    await waitForText(
      new RegExp(`Deploy tiny-cnn\\.onnx as .${deployName}. on local \\(2 replica\\(s\\), TTL 2\\.0s\\)`),
    );
    await waitForText(/Smoke sample:.*red-0\.jpg \(expect .red.\)/);
    await waitForText(/Wait until every replica is ready/); // activity summaries
    await waitForText(/Stage: done/); // current details, answered by the running worker
    await waitForText(/Smoke answer: red/);
    await shot('web-ui-deploy');
    await openTab(`deploy-${deployName}`, 'Search Attributes');
    const deployAttrs = await waitForText(/InferctlKind/);
    for (const expected of [
      '"InferctlKind": "deploy"',
      `"DeploymentName": "${deployName}"`,
      '"Stage": "done"',
      '"Target": "local"',
      '"ModelName": "tiny-cnn.onnx"',
    ]) {
      assert.ok(deployAttrs.includes(expected), `deploy search attributes show ${expected}`);
    }

    // The batch job: summary, progress as current details, counts as search attributes.
    await openTab(`score-${scoreName}`, 'User Metadata');
    await waitForText(/Score inferctl-ui-\w+ with tiny-cnn\.onnx/);
    await waitForText(/Score one shard/);
    await waitForText(/Items: 24 \/ 24 \(100\.0%\), 0 failed/);
    await shot('web-ui-batch');
    await openTab(`score-${scoreName}`, 'Search Attributes');
    const batchAttrs = await waitForText(/InferctlKind/);
    for (const expected of [
      '"InferctlKind": "batch-score"',
      '"ItemsDone": 24',
      '"ItemsTotal": 24',
      '"Stage": "done"',
    ]) {
      assert.ok(batchAttrs.includes(expected), `batch search attributes show ${expected}`);
    }
    fs.rmSync(input, { recursive: true, force: true });
  });
});
