/**
 * The janitor workflow: lists AKS resources tagged `inferctl-owner` and inferctl's namespaces in users'
 * clusters, keeps those whose owning workflow runs and those of another installation (reported as skipped),
 * and the scoring images no Deployment runs, and deletes the rest (namespaces, clusters, resource groups, images). `inferctl janitor` runs it once;
 * `inferctl janitor --every 1h` puts it on a Temporal Schedule.
 */
import { proxyActivities, setWorkflowOptions } from '@temporalio/workflow';

import type { createJanitorActivities } from '../activities/janitor';
import { resourceLabel } from '../src/shared/janitor-types';
import type { JanitorInput, JanitorReport } from '../src/shared/janitor-types';

type JanitorActivities = ReturnType<typeof createJanitorActivities>;

// Auto-upgrade: a sweep lasts minutes and holds no state worth pinning; a scheduled one runs on the current version.
setWorkflowOptions({ versioningBehavior: 'AUTO_UPGRADE' }, janitor);
export async function janitor(input: JanitorInput = {}): Promise<JanitorReport> {
  const { listOwnedResources } = proxyActivities<JanitorActivities>({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30s',
    retry: { maximumAttempts: 5 },
    summary: 'List resources tagged inferctl-owner',
  });
  const { deleteOrphan } = proxyActivities<JanitorActivities>({
    startToCloseTimeout: '45 minutes',
    heartbeatTimeout: '30s',
    retry: { initialInterval: '5s', maximumInterval: '2 minutes', maximumAttempts: 20 },
    summary: 'Delete an orphaned resource',
  });

  const owned = await listOwnedResources();
  const skipped = owned.filter((r) => r.skipReason);
  const orphans = owned.filter((r) => !r.skipReason && r.ownerStatus !== 'RUNNING');
  const deleted: string[] = [];
  if (!input.dryRun) {
    // Namespaces, then clusters: a resource group goes with everything in it, so it is the last resort.
    // Images last: what the deleted namespaces and clusters ran is unused from then on (the next run takes it).
    // A batch job's GPU pool goes after its namespace (its pods), as the job's own teardown removes them.
    // An AcrPull grant whose cluster is gone goes after the clusters (no new kind appears in older histories).
    for (const kind of ['namespace', 'agent pool', 'cluster', 'role assignment', 'resource group', 'image'] as const) {
      for (const orphan of orphans.filter((o) => o.kind === kind)) {
        if (await deleteOrphan(orphan)) deleted.push(resourceLabel(orphan));
      }
    }
  }
  return { dryRun: Boolean(input.dryRun), checked: owned.length, orphans, skipped, deleted };
}
