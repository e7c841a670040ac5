/**
 * bench:serve's two scoring scripts, each measured behind inferctl's front and reached directly
 * (script-front-bench.ts):
 *   trivial         the Azure ML v2-style fixture (test/fixtures/scripts/v2): JSON in and out, under 1 ms of
 *                   work, so the front's fixed hop is as large a share of a request as it can be;
 *   howto-resnet50  the how-to's script shape (bench/serve-script/score.py): `@rawhttp` run(request)
 *                   takes a POSTed JPEG, Pillow decodes it and resizes it to 224x224, onnxruntime (Python)
 *                   scores the ResNet-50-shaped model found by Model.get_model_path('resnet50'), JSON back.
 * Each script's environment is built from its own requirements file by the project, as a user's would be.
 */
import path from 'node:path';

import type { ScriptSpec } from '../src/shared/target-types';

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'test', 'fixtures', 'scripts');
const HOWTO = path.join(ROOT, 'bench', 'serve-script');

export interface ScriptBenchCase {
  name: 'trivial' | 'howto-resnet50';
  /** One sentence for the report. */
  about: string;
  script: ScriptSpec;
  modelPath: string;
  /** What the clients POST to /score, in turn. */
  bodies: Array<{ body: Buffer; contentType: string }>;
  /** Per concurrency: the paths alternate in slices of `sliceSeconds`, `rounds` slices per path. */
  plan: (concurrency: number) => { sliceSeconds: number; rounds: number };
  /** One sentence for the report: the plan. */
  planAbout: string;
}

/** The ResNet-50 case's slices of 2 s per path at concurrency 1 (half as many of 4 s at 8): 8 at --seconds 5. */
const resnetRounds = (rounds: number) => 2 * Math.max(1, Math.round(rounds * 0.8));

/**
 * The two cases; `rounds` is bench:serve's --seconds (default 5). The trivial script answers about a thousand
 * requests a second: slices of 1 s, `rounds` per path, thousands of requests per path. The ResNet-50 one
 * answers about 18 a second on two cores, so it runs 16 s per path at each concurrency at the default (about
 * 290 requests per path, 2 minutes 40 s for its five paths and two concurrencies): at concurrency 1 in
 * slices of 2 s; at concurrency 8, where each slice starts by filling the queue and ends by draining it (a
 * request waits about 400 ms there), in half as many slices of 4 s.
 */
export function scriptBenchCases(opts: { rounds: number; resnet50: string; jpegs: Buffer[] }): ScriptBenchCase[] {
  return [
    {
      name: 'trivial',
      about:
        'the v2-style fixture (test/fixtures/scripts/v2): `run(raw_data)` on a small JSON body, under 1 ms of work',
      script: {
        entryScript: path.join(FIXTURES, 'v2', 'score.py'),
        environmentFile: path.join(FIXTURES, 'v2', 'requirements.txt'),
      },
      modelPath: path.join(FIXTURES, 'v2-model', 'colours'),
      bodies: [0, 1, 2].map((index) => ({
        body: Buffer.from(JSON.stringify({ index })),
        contentType: 'application/json',
      })),
      plan: () => ({ sliceSeconds: 1, rounds: opts.rounds }),
      planAbout: `slices of 1 s, ${opts.rounds} per path and concurrency`,
    },
    {
      name: 'howto-resnet50',
      about:
        'the how-to’s shape (bench/serve-script/score.py): `@rawhttp run(request)` on a POSTed ' +
        '256x256 JPEG, Pillow decode and resize to 224, onnxruntime (Python) on the ResNet-50-shaped model ' +
        'from `Model.get_model_path`, JSON top-5 back',
      script: {
        entryScript: path.join(HOWTO, 'score.py'),
        environmentFile: path.join(HOWTO, 'requirements.txt'),
        modelName: 'resnet50',
      },
      modelPath: opts.resnet50,
      bodies: opts.jpegs.map((body) => ({ body, contentType: 'image/jpeg' })),
      plan: (concurrency) =>
        concurrency === 1
          ? { sliceSeconds: 2, rounds: resnetRounds(opts.rounds) }
          : { sliceSeconds: 4, rounds: resnetRounds(opts.rounds) / 2 },
      planAbout: `at concurrency 1 slices of 2 s, ${resnetRounds(opts.rounds)} per path; at 8 slices of 4 s, ${resnetRounds(opts.rounds) / 2} per path`,
    },
  ];
}
