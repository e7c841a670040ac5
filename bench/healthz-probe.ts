/**
 * A /healthz prober in a process of its own, forked by serve-bench.ts for each cell: it GETs
 * `<url>/healthz` every `intervalMs` until told 'stop', then sends back every latency in ms. Probing from
 * the process that also drives autocannon would add that process's own event-loop lag to the figure; from
 * here, what is measured is the replica's answer (and the machine's scheduling, which the report states).
 *
 *   fork(dist/bench/healthz-probe.js, [url, intervalMs]) → message { latencies: number[], failures: number }
 */
const [url, intervalArg] = process.argv.slice(2);
if (!url || !process.send) {
  console.error('usage: forked with fork(healthz-probe.js, [replicaUrl, intervalMs])');
  process.exit(2);
}
const intervalMs = Number(intervalArg ?? 100);
let running = true;
process.on('message', (message) => {
  if (message === 'stop') running = false;
});

void (async () => {
  const latencies: number[] = [];
  let failures = 0;
  while (running) {
    const started = performance.now();
    try {
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      if (res.ok) latencies.push(performance.now() - started);
      else failures++;
    } catch {
      failures++;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  process.send!({ latencies, failures }, () => process.disconnect());
})();
