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
  /** The paths alternate in slices of this many seconds, `rounds` times per concurrency. */
  sliceSeconds: number;
  rounds: number;
}

/**
 * The two cases, `rounds` rounds each (bench:serve's --seconds). The trivial script's slices are 1 s; the
 * ResNet-50 one answers a few requests a second on two cores, so its slices are 2 s: fewer requests, in about
 * a minute at the default 5 rounds.
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
      sliceSeconds: 1,
      rounds: opts.rounds,
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
      sliceSeconds: 2,
      rounds: opts.rounds,
    },
  ];
}
