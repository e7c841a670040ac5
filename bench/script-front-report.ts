/**
 * bench:serve's script section in markdown: per script (script-front-cases.ts) and concurrency, the three
 * paths' figures, the targets (front ≥ 0.95× direct throughput, < 2 ms added at p50) met or not, and, where
 * the throughput target is missed at concurrency 1, what the measured figures say about why.
 */
import type { ScriptBenchCase } from './script-front-cases';
import type { ScriptCell } from './script-front-bench';

const round2 = (n: number) => Math.round(n * 100) / 100;

/** The sentence for one script at one concurrency: added latency, throughput ratio, each target met or not. */
function verdict(cells: ScriptCell[], script: string, concurrency: number): string[] {
  const at = (p: ScriptCell['path']) =>
    cells.find((c) => c.script === script && c.concurrency === concurrency && c.path === p);
  const front = at('front');
  const direct = at('direct');
  if (!front || !direct) return [];
  const ratio = round2(front.requestsPerSecond / direct.requestsPerSecond);
  const addedP50 = round2(front.p50Ms - direct.p50Ms);
  const addedP99 = round2(front.p99Ms - direct.p99Ms);
  const unix = at('direct-unix');
  const hop = unix ? round2(front.requestsPerSecond / unix.requestsPerSecond) : undefined;
  const met = addedP50 < 2 && ratio >= 0.95;
  const lines = [
    `- **${script}, concurrency ${concurrency}: ${met ? 'meets the goal' : 'does not meet the goal'}.** ` +
      `The front adds ${addedP50} ms at p50 (${round2((addedP50 / direct.p50Ms) * 100)} % of the request’s own ` +
      `${direct.p50Ms} ms; target < 2: ${addedP50 < 2 ? 'met' : 'not met'}) and ${addedP99} ms ` +
      `at p99; throughput ${ratio}× direct (target ≥ 0.95: ${ratio >= 0.95 ? 'met' : 'not met'})` +
      `${hop === undefined ? '' : `; ${hop}× the same Python server reached through its socket`}.`,
  ];
  if (Math.min(front.requests, direct.requests) < 200) {
    lines.push(
      `  From ${Math.min(front.requests, direct.requests)} requests per path or more: differences of a few per ` +
        `cent of the request’s own time are within this cell’s noise (a longer run: --seconds).`,
    );
  }
  if (ratio < 0.95 && concurrency === 1) {
    // At concurrency 1 the client sends its next request only after the answer: each request takes 1 / (req/s),
    // so the hop is the difference of those times and the ratio is direct / (direct + hop), exactly.
    const own = round2(1000 / direct.requestsPerSecond);
    const hop = round2(1000 / front.requestsPerSecond - own);
    lines.push(
      `  Why: at concurrency 1 a client sends its next request only once it has the answer, so each request ` +
        `takes 1 / throughput and the front’s hop is paid in full on every one: the request’s own time is ` +
        `${own} ms (direct), the hop ${hop} ms on average (${addedP50} ms at p50; the front’s process used ` +
        `${front.frontCpuMsPerRequest} ms of CPU per request), and ${own} / (${own} + ${hop}) = ${ratio}. ` +
        `0.95× would need a hop under ${round2(own / 19)} ms, a nineteenth of the request’s own time: less than ` +
        `one more loopback connection, HTTP parse and write each way cost. A script doing real work makes the ` +
        `same hop a small share of its request (the ResNet-50 cells).`,
    );
  }
  return lines;
}

/** The script section: one table for every script and path, then each script's verdicts. */
export function scriptMarkdown(cells: ScriptCell[], cases: ScriptBenchCase[]): string[] {
  if (cells.length === 0) return [];
  const lines = [
    '',
    '## Scoring scripts: inferctl’s front vs azureml-inference-server-http reached directly',
    '',
    'Each script under azureml-inference-server-http 1.5.1, each path served by one sync gunicorn worker ' +
      '(the front’s default and azmlinfsrv’s). front: client → front (TCP) → its Python server (Unix socket); ' +
      'direct: client → a Python server started with the same command on a loopback port, as azmlinfsrv ' +
      'serves; direct-unix: client → the front’s own Python server through its socket (the hop’s own cost). ' +
      'The same client code for all; the paths alternate in short slices within each concurrency. CPU ms per ' +
      'request from /proc. The scripts:',
    '',
    ...cases
      .filter((c) => cells.some((cell) => cell.script === c.name))
      .map((c) => `- ${c.name}: ${c.about} (slices of ${c.sliceSeconds} s, ${c.rounds} per path and concurrency).`),
    '',
    '| script | concurrency | path | requests | req/s | p50 ms | p99 ms | errors | front CPU ms/req | Python CPU ms/req |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...cells.map(
      (c) =>
        `| ${c.script} | ${c.concurrency} | ${c.path} | ${c.requests} | ${c.requestsPerSecond} | ${c.p50Ms} | ${c.p99Ms} | ${c.errors} | ${c.frontCpuMsPerRequest} | ${c.pythonCpuMsPerRequest} |`,
    ),
    '',
    'Goal (issue #25): throughput ≥ 0.95× direct and < 2 ms added at p50.',
    '',
  ];
  for (const script of new Set(cells.map((c) => c.script))) {
    for (const concurrency of new Set(cells.map((c) => c.concurrency)))
      lines.push(...verdict(cells, script, concurrency));
  }
  return lines;
}
