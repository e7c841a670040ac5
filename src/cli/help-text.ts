/** Help text shown after the options: the connection settings (every command) and the aks settings. */
import { AKS_ENVIRONMENT } from '../targets/aks/aks-config';

export const ENV_HELP = `
Temporal connection (client and workers alike), from the SDK's environment configuration:
  TEMPORAL_ADDRESS     host:port of the frontend (default localhost:7233, as started by \`inferctl dev\`)
  TEMPORAL_NAMESPACE   namespace (default "default")
  TEMPORAL_API_KEY, TEMPORAL_TLS_*, TEMPORAL_PROFILE, TEMPORAL_CONFIG_FILE   for Temporal Cloud or TLS clusters
  INFERCTL_UI_URL      base URL of the Temporal Web UI used in printed links (default http://localhost:8233)
  INFERCTL_HOME        where local deployments keep their state (default ~/.inferctl)
  INFERCTL_PRICE_TABLE a price table (JSON, docs/costs.md) when --price-table is not given`;

export const AKS_HELP = `
The aks target (the control worker's environment, not this command's, except for --dry-run):
${AKS_ENVIRONMENT.map(([name, what]) => `  ${name.padEnd(28)} ${what}`).join('\n')}
  Azure sign-in: DefaultAzureCredential (az login, a service principal in AZURE_CLIENT_ID/SECRET/TENANT_ID,
  or a managed/workload identity). GPU clusters bill by the hour: see "Deploy to AKS" in the README.
HTTPS: a public aks endpoint serves HTTPS with a certificate made for it at provision (a one-use CA, kept
  in the Kubernetes TLS Secret <name>-tls) for https://inferctl-<name>-<hash>.<region>.cloudapp.azure.com,
  the Azure DNS name of its public IP. The CLI prints the CA's SHA-256 fingerprint; --tls-ca-out writes the
  CA for clients (curl --cacert ca.pem). Bring your own with --tls-cert/--tls-key (files on the worker) or
  --tls-secret (with --cluster). --internal: an internal load balancer (plain HTTP inside the VNet unless
  given a certificate). Plain HTTP on a public IP only with --insecure-http.`;
