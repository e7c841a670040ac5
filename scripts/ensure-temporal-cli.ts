/** Prints the Temporal CLI's path, building it with Go first when none is installed (used by .ci/run). */
import { findTemporalCli } from '../src/temporal/cli-binary';

findTemporalCli({ build: true, log: (line) => console.error(line) }).then(
  (cli) => console.log(cli),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
