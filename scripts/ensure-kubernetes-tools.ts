/** Builds the Kubernetes test binaries into the cache when they are missing (used by .ci/run); prints their directory. */
import { buildKubernetesTools } from '../test/helpers/kubernetes/kubernetes-tools';

buildKubernetesTools((line) => console.error(line)).then(
  (bin) => console.log(bin),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
