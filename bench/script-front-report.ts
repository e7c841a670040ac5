/**
 * bench:serve's script section in markdown: per script (script-front-cases.ts) and concurrency, the four
 * paths' figures, the targets (front ≥ 0.95× direct throughput, < 2 ms added at p50) met, not met or within the
 * cell's noise (95 % intervals over rounds), the floor of any front (the byte relay) from the same slices, and
 * what the figures say about why: at concurrency 1 the hop paid on every request, at higher concurrency the
 * service time the front adds to each request of a saturated worker, times the concurrency.
 */
import type { ScriptBenchCase } from './script-front-cases';
import type { ScriptCell } from './script-front-bench';

const round2 = (n: number) => Math.round(n * 100) / 100;

/** "met", "not met", or "within the noise" where the 95 % interval straddles the target. */
function decided(low: number, high: number, meets: (n: number) => boolean): string {
  if (meets(low) && meets(high)) return 'met';
  if (!meets(low) && !meets(high)) return 'not met';
  return 'not decided: the interval straddles it';
}

/** The per-request time a path adds at concurrency 1, from throughput: each request takes 1 / (req/s). */
const perRequestMs = (cell: ScriptCell) => 1000 / cell.requestsPerSecond;

/** The lines for one script at one concurrency: the goal, the floor of any front, and why where it is missed. */
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
  const relay = at('relay');
  const hop = unix ? round2(front.requestsPerSecond / unix.requestsPerSecond) : undefined;
  const ci = front.vsDirect;
  const p50Verdict = ci
    ? decided(ci.addedP50Ms.low, ci.addedP50Ms.high, (n) => n < 2)
    : addedP50 < 2
      ? 'met'
      : 'not met';
  const ratioVerdict = ci ? decided(ci.ratio.low, ci.ratio.high, (n) => n >= 0.95) : ratio >= 0.95 ? 'met' : 'not met';
  const headline =
    p50Verdict === 'met' && ratioVerdict === 'met'
      ? 'meets the goal'
      : p50Verdict === 'not met' || ratioVerdict === 'not met'
        ? 'does not meet the goal'
        : 'within this run’s noise of the goal';
  const range = (i: { low: number; high: number }) => `95 % interval ${i.low} to ${i.high}`;
  // The front's own timers (the metrics' event-loop-delay sampling) run whatever the path: its CPU while the
  // direct path ran, per second, is taken off its CPU per request before comparing it with a relay's.
  const idleMsPerSecond = direct.frontCpuMsPerRequest * direct.requestsPerSecond;
  const frontActive = round2(front.frontCpuMsPerRequest - idleMsPerSecond / front.requestsPerSecond);
  const lines = [
    `- **${script}, concurrency ${concurrency}: ${headline}.** ` +
      `The front adds ${addedP50} ms at p50 (${ci ? `${range(ci.addedP50Ms)}; ` : ''}` +
      `${round2((addedP50 / direct.p50Ms) * 100)} % of the request’s own ${direct.p50Ms} ms; target < 2: ` +
      `${p50Verdict}) and ${addedP99} ms at p99; throughput ${ratio}× direct ` +
      `(${ci ? `${range(ci.ratio)}; ` : ''}target ≥ 0.95: ${ratioVerdict})` +
      `${hop === undefined ? '' : `; ${hop}× the same Python server reached through its socket`}.` +
      `${ci ? ` Intervals: a block bootstrap over the ${ci.rounds} rounds of ${front.sliceSeconds} s slices (${front.requests} requests on the front, ${direct.requests} direct).` : ''}`,
  ];
  const httpRelay = at('http-relay');
  if (relay?.vsDirect && httpRelay?.vsDirect) {
    const floors = [relay, httpRelay];
    const best = Math.max(...floors.map((f) => f.vsDirect!.ratio.high));
    const bestPoint = Math.max(...floors.map((f) => f.vsDirect!.ratio.estimate));
    const floorLine = (name: string, cell: ScriptCell) =>
      `${name} ${cell.vsDirect!.ratio.estimate}× direct (${range(cell.vsDirect!.ratio)}), ` +
      `${cell.vsDirect!.addedP50Ms.estimate} ms added at p50 (${range(cell.vsDirect!.addedP50Ms)}), ` +
      `${cell.relayCpuMsPerRequest} ms of its CPU per request`;
    lines.push(
      `  The floor of any front on this hop, from the same slices: ` +
        `${floorLine('a byte relay in Node (no HTTP parsing, no key; its client reconnects for every request, as on direct)', relay)}; ` +
        `${floorLine('a bare node:http proxy (keep-alive to the client, a connection per request upstream, as the front; no key, limits or counters)', httpRelay)}. ` +
        (best < 0.95
          ? `So no proxy in Node reaches 0.95× in this cell on this machine: the better floor keeps ${bestPoint}× (at most ${best} in its interval). `
          : Math.max(...floors.map((f) => f.vsDirect!.ratio.low)) >= 0.95
            ? `So 0.95× is reachable by a proxy in Node here. `
            : `Whether a proxy in Node can reach 0.95× here is within this cell’s noise. `) +
        `The front above the bare proxy (its key check, limits and counters): ` +
        `${round2(front.requestsPerSecond / httpRelay.requestsPerSecond)}× its throughput, ` +
        `${round2(front.p50Ms - httpRelay.p50Ms)} ms at p50, ${round2(perRequestMs(front) - perRequestMs(httpRelay))} ms ` +
        `per request (1 / throughput), ${round2(frontActive - httpRelay.relayCpuMsPerRequest)} ms of CPU per request ` +
        `(the front’s ${front.frontCpuMsPerRequest} ms less its timers’ ${round2(idleMsPerSecond)} ms per second, ` +
        `measured while direct ran: ${frontActive} ms); the bare proxy above the byte relay (HTTP parse and write each way, less the client's ` +
        `reconnects): ${round2(httpRelay.relayCpuMsPerRequest - relay.relayCpuMsPerRequest)} ms of CPU per request.`,
    );
  }
  if (ratio < 0.95 && concurrency === 1) {
    // At concurrency 1 the client sends its next request only after the answer: each request takes 1 / (req/s),
    // so the hop is the difference of those times and the ratio is direct / (direct + hop), exactly.
    const own = round2(perRequestMs(direct));
    const hopMs = round2(perRequestMs(front) - own);
    lines.push(
      `  Why: at concurrency 1 a client sends its next request only once it has the answer, so each request ` +
        `takes 1 / throughput and the front’s hop is paid in full on every one: the request’s own time is ` +
        `${own} ms (direct), the hop ${hopMs} ms on average (${addedP50} ms at p50; the front’s process used ` +
        `${front.frontCpuMsPerRequest} ms of CPU per request), and ${own} / (${own} + ${hopMs}) = ${ratio}. ` +
        `0.95× would need a hop under ${round2(own / 19)} ms, a nineteenth of the request’s own time.`,
    );
  }
  const niced = at('front-nice');
  if (niced?.vsDirect) {
    lines.push(
      `  Experiment (--front-nice, not the product): the same front with its main thread niced during its own ` +
        `slices, the Python server at 0: ${niced.vsDirect.ratio.estimate}× direct (${range(niced.vsDirect.ratio)}), ` +
        `${niced.vsDirect.addedP50Ms.estimate} ms added at p50 (${range(niced.vsDirect.addedP50Ms)}), ` +
        `${round2(perRequestMs(niced) - perRequestMs(direct))} ms added per request (1 / throughput), run() ` +
        `${niced.runP50Ms} ms at p50, the front's CPU ${niced.frontCpuMsPerRequest} ms per request.`,
    );
  }
  if (concurrency > 1) {
    // Little's law on a closed loop: c requests always in the system, so the mean time in it is c / throughput.
    // With one sync worker always busy, the added p50 is c times the added service time per request.
    const littleFront = round2((concurrency * 1000) / front.requestsPerSecond);
    const littleDirect = round2((concurrency * 1000) / direct.requestsPerSecond);
    const addedService = round2(perRequestMs(front) - perRequestMs(direct));
    lines.push(
      `  At concurrency ${concurrency}, with ${concurrency} requests always in flight and one sync worker ` +
        `serving them one at a time, a request waits behind the others and takes c / throughput on average ` +
        `(Little’s law): ${littleFront} ms through the front, ${littleDirect} ms direct (measured p50 ` +
        `${front.p50Ms} and ${direct.p50Ms}). The added latency is therefore c × the service time the front ` +
        `adds to each request: ${addedService} ms per request (1 / throughput, front − direct) × ` +
        `${concurrency} = ${round2(addedService * concurrency)} ms. The Python side’s own run() took ` +
        `${front.runP50Ms} ms at p50 behind the front and ${direct.runP50Ms} ms direct ` +
        `(${round2(front.runP50Ms - direct.runP50Ms)} ms more; mean ${round2(front.runMeanMs - direct.runMeanMs)} ms ` +
        `more), its CPU ${front.pythonCpuMsPerRequest} against ${direct.pythonCpuMsPerRequest} ms per request, ` +
        `while the front’s process used ${front.frontCpuMsPerRequest} ms per request on the same two cores. ` +
        `< 2 ms at p50 needs an added service time under ${round2(2 / concurrency)} ms per request` +
        `${relay ? `; the byte relay adds ${round2(perRequestMs(relay) - perRequestMs(direct))} ms` : ''}` +
        `${httpRelay ? `, the bare proxy ${round2(perRequestMs(httpRelay) - perRequestMs(direct))} ms` : ''}.`,
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
      'serves; direct-unix: client → the front’s own Python server through its socket (the hop’s own cost); ' +
      'relay: client → a byte relay in Node (loopback TCP joined to that socket, no HTTP parsing, no key) → the ' +
      'same Python server; http-relay: client → a bare node:http proxy (keep-alive to the client, a connection ' +
      'per request to that socket, no key, limits or counters) → the same Python server: the two floors of any ' +
      'front on this hop. The same client code for all; the paths alternate ' +
      'in short slices within each concurrency, the order rotating each round. CPU ms per request from /proc; ' +
      'run() ms: the Python side’s own time per request (the x-ms-run-fn-exec-ms header). The scripts:',
    '',
    ...cases
      .filter((c) => cells.some((cell) => cell.script === c.name))
      .map((c) => `- ${c.name}: ${c.about} (${c.planAbout}).`),
    '',
    '| script | concurrency | path | requests | req/s | p50 ms | p99 ms | errors | front CPU ms/req | relay CPU ms/req | Python CPU ms/req | run() p50 ms |',
    '| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...cells.map(
      (c) =>
        `| ${c.script} | ${c.concurrency} | ${c.path} | ${c.requests} | ${c.requestsPerSecond} | ${c.p50Ms} | ${c.p99Ms} | ${c.errors} | ${c.frontCpuMsPerRequest} | ${c.relayCpuMsPerRequest} | ${c.pythonCpuMsPerRequest} | ${c.runP50Ms} |`,
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
